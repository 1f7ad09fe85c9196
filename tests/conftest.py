"""Shared fixtures: node homes, databases on SQLite and PostgreSQL, a federation in one process."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI shares two cores with other work: no per-example deadline, no "too slow" health check.
settings.register_profile("palermo", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("palermo")

PG_ADMIN_URL = os.environ.get("PALERMO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as e:  # any failure means "no server", reported as the skip reason
        return f"PostgreSQL at {PG_ADMIN_URL} did not answer ({type(e).__name__})"


_PG_REASON = _pg_available()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if _PG_REASON:
        pytest.skip(_PG_REASON)
    import psycopg

    name = f"palermo_t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Parametrise a test over both storage backends."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str | None:
    """None (SQLite in the node home) or a throwaway PostgreSQL database."""
    if backend == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def make_home(tmp_path: Path) -> Callable[..., Path]:
    """Create node homes under tmp_path: make_home("nld", "NLD", database_url=None)."""
    from node.services.init import init_home

    def make(
        node_id: str = "nld", country: str = "NLD", *, database_url: str | None = None, port: int = 0
    ) -> Path:
        home = tmp_path / node_id
        init_home(
            home,
            node_id=node_id,
            country=country,
            url=f"http://127.0.0.1:{port or 9}/{node_id}",
            database_url=database_url,
        )
        return home

    return make
