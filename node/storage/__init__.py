"""Storage: SQLAlchemy 2 models, the database engine and Alembic migrations."""
