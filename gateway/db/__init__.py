"""Storage: SQLModel tables, the async engine for SQLite and PostgreSQL, Alembic migrations."""

from gateway.db.engine import Database

__all__ = ["Database"]
