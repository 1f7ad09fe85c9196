"""Alembic environment: runs migrations against the URL set by node.storage.db.alembic_config."""

from __future__ import annotations

from alembic import context

from node.storage.db import make_engine
from node.storage.models import Base, load_all_models

load_all_models()
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            if connection.in_transaction():
                connection.commit()
    finally:
        engine.dispose()


run_migrations_online()
