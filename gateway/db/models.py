"""The gateway's tables. Migrations in ``migrations/versions`` must build exactly these
(``tests/domain/test_migrations.py`` compares them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
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
    """A data space: SenSeeAct's project, CSPro's data source. Only its members (and admins)
    reach it, or every authenticated user when it is ``open``."""

    __tablename__ = "projects"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    open: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProjectMember(SQLModel, table=True):
    """A user who may use a project (SenSeeAct: "users need to have access to the project")."""

    __tablename__ = "project_members"
    __table_args__ = (Index(None, "user_id"),)  # the projects of one caller

    project_id: int = Field(
        sa_column=Column(Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    )
    user_id: str = Field(primary_key=True, max_length=255)
    added_by: str = Field(max_length=255)
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
    conflict_policy: str = Field(
        default="LAST_WRITER_WINS",
        max_length=32,
        sa_column_kwargs={"server_default": "LAST_WRITER_WINS"},
    )
    # [start, end] field names: overlapping records of two devices are SESSION_OVERLAP.
    overlap: list[str] | None = Field(default=None, sa_type=JSONDocument)
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


# Log positions and record ids: BIGINT on PostgreSQL; on SQLite a plain INTEGER primary key,
# which is the rowid alias that autoincrements.
LogId = BigInteger().with_variant(Integer(), "sqlite")


def _table_fk() -> Any:
    return Field(
        sa_column=Column(
            Integer, ForeignKey("project_tables.id", ondelete="CASCADE"), nullable=False
        )
    )


class Action(SQLModel, table=True):
    """One entry of the append-only log of database actions.

    Its log position is ``(xid, id)``. On PostgreSQL ``xid`` is the writing transaction's id
    (a server default of ``pg_current_xact_id()``, set by the migration) so that readers can
    stay below the oldest transaction still running; on SQLite it is 0 and ``id`` alone is in
    commit order because writers hold the database lock from BEGIN IMMEDIATE to COMMIT.
    """

    __tablename__ = "actions"
    __table_args__ = (
        # An action's identity: a retried batch finds its actions here. The table (which
        # determines the project) leads, so that a lookup by identity can only use this index
        # whatever the statistics (the log's other index also starts with project and user).
        UniqueConstraint("table_id", "user_id", "record_id", "time", "action_order", "project_id"),
        Index(None, "project_id", "user_id", "xid", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(LogId, primary_key=True))
    xid: int = Field(
        default=None, sa_column=Column(BigInteger, nullable=False, server_default=FetchedValue())
    )
    project_id: int = _project_fk()
    table_id: int = _table_fk()
    user_id: str = Field(max_length=255)
    action: str = Field(max_length=6)
    record_id: str = Field(max_length=32)
    json_data: str | None = Field(default=None, sa_type=Text)
    sample_time: int | None = Field(default=None, sa_type=BigInteger)
    time: int = Field(sa_type=BigInteger)
    action_order: int
    source: str | None = Field(default=None, max_length=32)
    author: str | None = Field(default=None, max_length=255)
    device_id: str | None = Field(default=None, max_length=255)
    # The user who wrote it (the caller of the write, not necessarily the data's user): what
    # SenSeeAct's includeOwn leaves out for a reader without a deviceId. None before 0013.
    written_by: str | None = Field(default=None, max_length=255)
    # A last-writer-wins loser: kept in the log (for review and idempotency), not applied to its
    # record and skipped by readers.
    superseded: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    stored_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Record(SQLModel, table=True):
    """The current state of one record, materialized from its actions."""

    __tablename__ = "records"
    __table_args__ = (
        # The table leads, as in the log's identity (see Action).
        UniqueConstraint("table_id", "user_id", "record_id", "project_id"),
        Index(None, "project_id", "user_id", "table_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(LogId, primary_key=True))
    project_id: int = _project_fk()
    table_id: int = _table_fk()
    user_id: str = Field(max_length=255)
    record_id: str = Field(max_length=32)
    record_key: str = Field(max_length=255)
    data: dict[str, Any] | None = Field(default=None, sa_type=JSONDocument)
    deleted: bool = False
    position: int = Field(sa_type=BigInteger, description="id of the action that last changed it")
    # With ``position``, the log position of the last change (see Action); set by the database.
    xid: int = Field(
        default=None, sa_column=Column(BigInteger, nullable=False, server_default=FetchedValue())
    )
    device_id: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WriteProgress(SQLModel, table=True):
    """The (time, order) of the latest action written per user, table and device (an empty
    ``device_id`` for actions written without one); SenSeeAct's get-progress for all devices is
    the latest over these rows."""

    __tablename__ = "write_progress"

    project_id: int = Field(
        sa_column=Column(Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    )
    user_id: str = Field(primary_key=True, max_length=255)
    table_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("project_tables.id", ondelete="CASCADE"), primary_key=True
        )
    )
    device_id: str = Field(primary_key=True, max_length=255)
    time: int = Field(sa_type=BigInteger)
    action_order: int


class PushRegistration(SQLModel, table=True):
    """A device token to wake a device when matching tables of its user change (SenSeeAct's
    register-push); one per project, user and device."""

    __tablename__ = "push_registrations"

    project_id: int = Field(
        sa_column=Column(Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    )
    user_id: str = Field(primary_key=True, max_length=255)
    device_id: str = Field(primary_key=True, max_length=255)
    token: str = Field(sa_type=Text)
    include_tables: list[str] | None = Field(default=None, sa_type=JSONDocument)
    exclude_tables: list[str] | None = Field(default=None, sa_type=JSONDocument)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Device(SQLModel, table=True):
    """A sync client of one user's data in a project, identified by (project, owner, deviceId):
    the same deviceId under another user is another device. Every name it has been seen under
    (CSPro: a server whose URL changed has both), its type and version, first and last seen."""

    __tablename__ = "devices"

    project_id: int = Field(
        sa_column=Column(Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    )
    owner_id: str = Field(primary_key=True, max_length=255)
    device_id: str = Field(primary_key=True, max_length=255)
    names: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    device_type: str | None = Field(default=None, max_length=100)
    version: str | None = Field(default=None, max_length=100)
    pending_up: int | None = Field(default=None, description="changes the device says wait")
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncEvent(SQLModel, table=True):
    """One put or get between a device and the gateway (or another service), CSPro's history."""

    __tablename__ = "sync_events"
    # A device is (project, user, deviceId): its history is found by all three.
    __table_args__ = (Index(None, "project_id", "user_id", "device_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(LogId, primary_key=True))
    project_id: int = _project_fk()
    device_id: str = Field(max_length=255)
    device_name: str = Field(max_length=255)
    username: str = Field(max_length=255, description="who synced")
    user_id: str = Field(max_length=255, description="whose data: the device's owner")
    direction: str = Field(max_length=3)
    universe: str = Field(default="", sa_type=Text)
    partial: bool = False
    time: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeliveredProgress(SQLModel, table=True):
    """What a device (of ``user_id``) has received of one table: where its reads (or its
    acknowledgement) left it in the log. Records changed after it, by another device, are
    pending towards it."""

    __tablename__ = "delivered_progress"

    project_id: int = Field(
        sa_column=Column(Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    )
    user_id: str = Field(primary_key=True, max_length=255)
    device_id: str = Field(primary_key=True, max_length=255)
    table_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("project_tables.id", ondelete="CASCADE"), primary_key=True
        )
    )
    xid: int = Field(sa_type=BigInteger)
    position: int = Field(sa_type=BigInteger)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Conflict(SQLModel, table=True):
    """Two devices changed the same record without seeing each other's change. ``winner`` and
    ``loser`` hold each side's version: ``{deviceId, action, time, order, position, data}``."""

    __tablename__ = "conflicts"
    __table_args__ = (
        Index(None, "project_id", "status", "id"),
        Index(None, "project_id", "user_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(LogId, primary_key=True))
    project_id: int = _project_fk()
    table_id: int = _table_fk()
    user_id: str = Field(max_length=255)
    record_id: str = Field(max_length=32)
    record_key: str = Field(max_length=255)
    kind: str = Field(max_length=32)
    policy: str = Field(max_length=32)
    status: str = Field(default="OPEN", max_length=16)
    winner: dict[str, Any] = Field(sa_type=JSONDocument)
    loser: dict[str, Any] = Field(sa_type=JSONDocument)
    detected_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolution: str | None = Field(default=None, max_length=32)
    resolved_by: str | None = Field(default=None, max_length=255)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Sync(SQLModel, table=True):
    """Census's sync: a named, configured exchange between a project and one device (each
    device has at most one, created on its first use) or one external job (no ``device_id``).
    ``owner_id`` is the user whose data it syncs, and the owner of its device."""

    __tablename__ = "syncs"
    __table_args__ = (
        # One sync per device, which is (project, owner, deviceId). NULLs are distinct on both
        # databases: any number of external jobs per project and owner.
        UniqueConstraint("project_id", "owner_id", "device_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = _project_fk()
    name: str = Field(max_length=255)
    device_id: str | None = Field(default=None, max_length=255)
    direction: str = Field(max_length=8)
    include_tables: list[str] | None = Field(default=None, sa_type=JSONDocument)
    exclude_tables: list[str] | None = Field(default=None, sa_type=JSONDocument)
    owner_id: str = Field(max_length=255)
    created_by: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncRun(SQLModel, table=True):
    """One execution of a sync, with Census's counters, status, error and trigger."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        Index(None, "sync_id", "created_at", "id"),  # syncRuns, in creation order
        Index(None, "project_id", "status", "created_at", "id"),  # a project's runs by status
        Index(None, "status", "updated_at"),  # the sweeper's stale WORKING runs; live re-reads
        Index(None, "completed_at"),  # pruning finished runs past their retention
    )

    id: int | None = Field(default=None, sa_column=Column(LogId, primary_key=True))
    sync_id: int = Field(
        sa_column=Column(Integer, ForeignKey("syncs.id", ondelete="CASCADE"), nullable=False)
    )
    project_id: int = _project_fk()
    status: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    scheduled_execution_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error_code: str | None = Field(default=None, max_length=100)
    error_message: str | None = Field(default=None, sa_type=Text)
    error_detail: str | None = Field(default=None, sa_type=Text)
    source_record_count: int = Field(default=0, sa_type=BigInteger)
    records_failed: int = Field(default=0, sa_type=BigInteger)
    source_record_updates: int = Field(default=0, sa_type=BigInteger)
    source_record_deletes: int = Field(default=0, sa_type=BigInteger)
    source_record_invalids: int = Field(default=0, sa_type=BigInteger)
    records_invalid: int = Field(default=0, sa_type=BigInteger)
    records_processed: int = Field(default=0, sa_type=BigInteger)
    records_updated: int = Field(default=0, sa_type=BigInteger)
    full_sync: bool = False
    trigger_ui_tag: str = Field(max_length=100)
    trigger_ui_detail: str | None = Field(default=None, sa_type=Text)
    canceled: bool = False
    current_step: str | None = Field(default=None, max_length=200)
    # The replica streaming a live subscription's run (None: any other run): failed with
    # REPLICA_LOST when that replica stops beating (gateway/replicas.py).
    replica_id: str | None = Field(default=None, max_length=64, index=True)


class Replica(SQLModel, table=True):
    """A running gateway process and its last heartbeat (gateway/replicas.py)."""

    __tablename__ = "replicas"

    id: str = Field(primary_key=True, max_length=64)
    started_at: datetime = Field(sa_type=UTCDateTime)
    beat_at: datetime = Field(sa_type=UTCDateTime, index=True)
