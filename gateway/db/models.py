"""The gateway's tables. Migrations in ``migrations/versions`` must build exactly these
(``tests/test_migrations.py`` compares them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.db.types import JSONDocument, UTCDateTime, utcnow

# Stable constraint names, so migrations can refer to them on both databases.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def _project_fk() -> Any:
    return Field(
        sa_column=Column(Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    )


class Project(SQLModel, table=True):
    """A data space: SenSeeAct's project, CSPro's data source."""

    __tablename__ = "projects"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProjectTable(SQLModel, table=True):
    """A declared table of a project. ``fields`` holds ``{name, type, required}`` objects."""

    __tablename__ = "project_tables"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = _project_fk()
    name: str = Field(max_length=64)
    key_field: str | None = Field(default=None, max_length=64)
    fields: list[dict[str, Any]] = Field(sa_type=JSONDocument)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class User(SQLModel, table=True):
    """A user as last seen in a valid token. Identities live in the token issuer; this row
    records that the user exists for the gateway and with which role it was last seen."""

    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=255)
    role: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AccessGrant(SQLModel, table=True):
    """``user_id`` lets ``grantee_id`` (a professional) access their data in one project."""

    __tablename__ = "access_grants"
    __table_args__ = (
        UniqueConstraint("project_id", "user_id", "grantee_id"),
        Index(None, "grantee_id", "project_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = _project_fk()
    user_id: str = Field(max_length=255)
    grantee_id: str = Field(max_length=255)
    granted_by: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
