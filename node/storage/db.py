"""Database engine, transactions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
READ_ONLY = "palermo_read_only"


def dialect_insert(session: Session, table: Any) -> Any:
    """``INSERT`` for ``table`` in the session's dialect, with ``on_conflict_do_nothing`` and
    ``on_conflict_do_update``: the node runs on SQLite or PostgreSQL, and both have them."""
    from sqlalchemy.dialects import postgresql, sqlite

    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(table)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine. SQLite gets WAL, foreign keys, a busy timeout and ``BEGIN IMMEDIATE``.

    ``BEGIN IMMEDIATE`` takes the write lock when a transaction starts, so two processes never
    both read and then both write (SQLite would fail one of them with "database is locked").
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Read-only units of work take no write lock (WAL readers never block the writer).
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


@dataclass
class FirstCommit:
    """A hook the first transaction one thread commits runs just before committing (``done`` after)."""

    hook: Callable[[Session], None]
    done: bool = False


class Database:
    """One node's database: an engine and a session factory."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self._local = threading.local()  # this thread's FirstCommit, if any
        self.engine = make_engine(url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back on any exception."""
        pending: FirstCommit | None = getattr(self._local, "first_commit", None)
        carries = False
        with self._sessions() as session, session.begin():
            yield session
            carries = pending is not None and not pending.done
            if carries:
                assert pending is not None
                pending.hook(session)
        if carries:  # committed: only now did the hook's writes happen
            assert pending is not None
            pending.done = True

    @contextmanager
    def before_first_commit(self, hook: Callable[[Session], None]) -> Iterator[FirstCommit]:
        """Within the block, the first transaction this thread commits also runs ``hook`` first.

        Other threads' transactions are left as they are. The exchange uses it to commit a
        request's log entry with the first work its handler commits (node.services.handlers).
        """
        previous = getattr(self._local, "first_commit", None)
        state = self._local.first_commit = FirstCommit(hook)
        try:
            yield state
        finally:
            self._local.first_commit = previous

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work: a consistent snapshot that takes no write lock on SQLite."""
        with self._read_sessions() as session, session.begin():
            yield session
            session.rollback()

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision`` with Alembic."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
