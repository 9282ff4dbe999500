"""Runtime configuration, read from ``GATEWAY_*`` environment variables and ``.env``."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./gateway.db"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SettingsError(ValueError):
    """The settings cannot run the gateway as asked (e.g. production without a JWT key)."""


class LogFormat(StrEnum):
    JSON = "json"  # one JSON object per line (for log collectors)
    TEXT = "text"  # readable lines


class PushMode(StrEnum):
    OFF = "off"
    WEBHOOK = "webhook"  # POST SenSeeAct's message to GATEWAY_PUSH_ENDPOINT
    FCM = "fcm"  # Firebase Cloud Messaging HTTP v1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    migrate_on_start: bool = True

    # HS256 with a shared secret, or RS256 with a public key (PEM). The private key is only
    # needed by `gateway token` when tokens are RS256.
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_private_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_default_ttl_seconds: int = Field(default=3600, gt=0)

    # The sync log.
    max_write_batch: int = Field(default=10_000, gt=0, description="actions per writeActions")
    max_read_batch: int = Field(default=1_000, gt=0, description="actions per read, at most")
    # A transaction left open holds back every reader of the log (see gateway/sync/horizon.py);
    # PostgreSQL ends one of the gateway's own that idles this long.
    pg_idle_in_transaction_timeout_ms: int = Field(default=60_000, gt=0)
    # Each replica's PostgreSQL connections (SQLite: ignored). A replica holds up to
    # db_pool_size + db_max_overflow of them, plus one LISTEN connection on the postgres bus:
    # size PostgreSQL's max_connections for every replica at once. An overflow connection is
    # closed as soon as it is returned: with more requests at once than the pool, each one
    # opened a connection (a new server process) and closed it, halving one-row lookups at 16
    # concurrent requests; the pool is the larger part for that reason.
    db_pool_size: int = Field(default=20, gt=0, description="connections kept open")
    db_max_overflow: int = Field(
        default=10, ge=0, description="connections opened beyond the pool under load, then closed"
    )
    db_pool_timeout_seconds: float = Field(
        default=30.0, gt=0, description="a request waiting this long for a connection fails"
    )

    # Operation limits, checked before an operation runs (gateway/graphql/limits.py).
    max_query_tokens: int = Field(default=2_000, gt=0, description="lexical tokens")
    max_query_depth: int = Field(default=15, gt=0, description="nested selections")
    max_query_aliases: int = Field(default=15, ge=0, description="aliased fields")
    max_root_fields: int = Field(default=20, gt=0, description="fields at an operation's root")
    max_node_ids: int = Field(default=100, gt=0, description="ids one nodes(ids:) looks up")
    max_query_cost: int = Field(
        default=250_000, gt=0, description="estimated fields to resolve, lists counted in full"
    )
    max_query_cost_anonymous: int = Field(
        default=2_000, gt=0, description="the same budget for callers without a token"
    )
    # Runtime budgets of one request.
    request_timeout_seconds: float = Field(
        default=30.0, gt=0, description="a query or mutation still running then is stopped"
    )
    max_response_bytes: int = Field(
        default=32 * 1024 * 1024, gt=0, description="record data one answer may carry"
    )
    # Stored data, the same on both databases.
    max_record_bytes: int = Field(
        default=256 * 1024, gt=0, description="an action's jsonData, in UTF-8 bytes"
    )
    max_json_depth: int = Field(default=32, gt=0, description="nesting of an action's jsonData")

    # Live subscriptions.
    live_poll_seconds: float = Field(
        default=30.0,
        gt=0,
        description="each project re-checks for what its caught-up subscriptions may have "
        "missed (a lost wake-up, a changed access) at least this often",
    )
    senseeact_watch_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="how long SenSeeAct's POST /sync/project/{project}/watch waits for new "
        "actions before it answers TIMEOUT",
    )
    bus: str = Field(
        default="postgres",
        description="how replicas wake each other's subscribers: postgres (LISTEN/NOTIFY on "
        "the database) or a NATS URL (nats://host:4222); wake-ups only, the log stays in the "
        "database, so a lost message costs a delay (up to GATEWAY_LIVE_POLL_SECONDS)",
    )
    bus_coalesce_ms: float = Field(
        default=5.0,
        ge=0,
        description="wake-ups arriving within this many milliseconds of one another wake a "
        "subscriber once; 0: each one at once",
    )
    max_subscriptions_per_connection: int = Field(default=50, gt=0)
    live_history_seconds: float = Field(
        default=60.0, ge=0, description="a subscription adds at most one GET per this interval"
    )
    ws_connection_init_timeout_seconds: float = Field(
        default=10.0, gt=0, description="close (4408) a WebSocket that sends no connection_init"
    )

    # Persisted operations (gateway/graphql/persisted.py).
    persisted_queries_max_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="documents kept for automatic persisted queries, least recently used "
        "dropped first",
    )
    trusted_documents: str | None = Field(
        default=None,
        description="a JSON manifest of hash -> document: only these operations run",
    )

    # Device health (RegardingWork's status).
    device_stale_seconds: float = Field(
        default=3600.0, gt=0, description="behind and not synced for this long: STALE"
    )
    device_offline_seconds: float = Field(
        default=86400.0, gt=0, description="not seen for this long: OFFLINE"
    )
    support_contact: str | None = Field(
        default=None, description="who to ask about conflicts, shown in syncStatus"
    )

    # The reference APIs' REST paths (gateway/rest/).
    rest_default_project: str | None = Field(
        default=None,
        description="the project of RegardingWork's /api/sync/status when the request names "
        "none (X-Project header); omitted: the caller's only project",
    )
    rest_basic_auth_file: str | None = Field(
        default=None,
        description="enables HTTP basic auth on Census's paths: a file of "
        "'username:role:sha256:<hex>' or 'username:role:pbkdf2_sha256:<iterations>:<salt>:<hex>' "
        "lines (never a plaintext password)",
    )
    rest_max_list_items: int = Field(
        default=10_000, gt=0, description="items one REST answer lists (CSPro's whole arrays)"
    )

    # Sync runs (Census).
    sync_run_timeout_seconds: float = Field(
        default=3600.0, gt=0, description="a WORKING run not updated for this long is FAILED"
    )
    sync_run_retention_days: float = Field(
        default=30.0, ge=0, description="finished runs are deleted this long after; 0 keeps them"
    )

    # Replicas (gateway/sync/replicas.py) and their graceful drain (gateway/drain.py).
    drain_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="after SIGTERM, /readyz answers 503 at once while requests are still "
        "served this long (for load balancers to notice); then WebSockets close with 1001 "
        "(going away) and the process ends once in-flight requests finished",
    )
    replica_beat_seconds: float = Field(
        default=5.0, gt=0, description="each replica records its heartbeat this often"
    )
    replica_lost_seconds: float = Field(
        default=60.0,
        gt=0,
        description="a replica without a heartbeat for this long is lost: the others fail "
        "its live sync runs with REPLICA_LOST",
    )

    # Push wake-ups for sleeping devices.
    push_mode: PushMode = PushMode.OFF
    push_endpoint: str | None = Field(
        default=None, description="webhook URL; for FCM, a base URL other than Google's"
    )
    push_fcm_project_id: str | None = None
    push_fcm_credentials_file: str | None = Field(
        default=None, description="a Google service-account JSON file"
    )
    push_fcm_access_token: str | None = Field(
        default=None, description="a fixed OAuth access token instead of a service account"
    )
    push_coalesce_seconds: float = Field(default=2.0, ge=0)
    push_max_attempts: int = Field(default=5, gt=0)
    push_retry_base_seconds: float = Field(default=0.5, gt=0)

    # Browsers (see gateway/http_security.py). Introspection and GraphiQL: None follows the
    # environment (on in development, off in production).
    introspection: bool | None = Field(
        default=None, description="__schema/__type queries (and name suggestions in errors)"
    )
    graphiql: bool | None = Field(default=None, description="the GraphiQL IDE at GET /graphql")
    dashboard: bool = Field(default=True, description="the operators' live dashboard at /dashboard")
    cors_origins: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        default=None,
        description="comma-separated origins allowed to call from browsers (CORS and WebSocket "
        "Origin); unset: localhost origins in development, none in production",
    )
    cors_allow_credentials: bool = False
    hsts_seconds: int = Field(
        default=31_536_000, ge=0, description="Strict-Transport-Security max-age; 0: none"
    )

    # Transport limits (gateway/http_limits.py, gateway/transport.py): what one client may
    # hold of the server before any GraphQL runs. 10 MiB takes a full writeActions batch
    # (GATEWAY_MAX_WRITE_BATCH, 10,000) of actions of up to about 1 KiB each.
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0, description="request body (413)")
    max_header_bytes: int = Field(default=64 * 1024, gt=0, description="request head (431)")
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="a request head must arrive within this (408)"
    )
    body_timeout_seconds: float = Field(
        default=60.0, gt=0, description="a request body must arrive within this (408)"
    )
    max_connections: int = Field(
        default=2048, gt=0, description="open HTTP and WebSocket connections (503 beyond)"
    )
    ws_max_message_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="one WebSocket message (close 1009)"
    )
    # permessage-deflate keeps a compressor per connection (about 40 KiB each): a server of
    # mostly idle subscriptions pays that for every one of them.
    ws_compression: bool = Field(
        default=False, description="offer permessage-deflate on WebSockets"
    )
    rate_limit_per_second: float = Field(
        default=50.0, ge=0, description="requests per user or anonymous address; 0: no limit"
    )
    rate_limit_burst: int = Field(default=200, gt=0, description="requests above the rate")

    # Operating (gateway/observability/).
    metrics: bool = Field(default=True, description="Prometheus metrics at GET /metrics")
    metrics_token: str | None = Field(
        default=None,
        description="if set, /metrics answers only scrapes sending 'Authorization: Bearer <it>'",
    )
    metrics_cache_seconds: float = Field(
        default=15.0,
        ge=0,
        description="the gauges read from the database (devices, runs, the read horizon) are "
        "read at most this often, however often /metrics is scraped",
    )
    metrics_max_operation_names: int = Field(
        default=100,
        ge=0,
        description="distinct operation names labelled in metrics; later ones count as 'other'",
    )
    metrics_lag_sample_seconds: float = Field(
        default=1.0,
        ge=0,
        description="the write-to-delivery lag is measured at most this often per replica "
        "(one indexed lookup each)",
    )
    log_format: LogFormat | None = Field(
        default=None, description="json or text; unset: json in production, text in development"
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return tuple(normalize_origin(str(v)) for v in value if str(v).strip())
        return value

    @field_validator("rest_basic_auth_file")
    @classmethod
    def _readable_users(cls, value: str | None) -> str | None:
        """A basic-auth file that cannot be read or parsed stops the start, not a request."""
        if value is None:
            return None
        from gateway.rest.basic import parse  # the file's format lives with its reader

        try:
            with open(value, encoding="utf-8") as file:
                parse(file.read())
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        return value

    @field_validator("bus")
    @classmethod
    def _known_bus(cls, value: str) -> str:
        value = value.strip()
        if value.lower() == "postgres":
            return "postgres"
        if value.startswith(("nats://", "tls://")) and urlsplit(value).hostname:
            return value
        raise ValueError("GATEWAY_BUS must be 'postgres' or a NATS URL such as nats://host:4222")

    @model_validator(mode="after")
    def _no_credentials_for_everyone(self) -> Settings:
        if self.cors_allow_credentials and "*" in (self.cors_origins or ()):
            # Every site could then act with the visitor's credentials.
            raise ValueError("GATEWAY_CORS_ALLOW_CREDENTIALS=true needs a list of origins, not *")
        return self

    @model_validator(mode="after")
    def _push_is_configured(self) -> Settings:
        if self.push_mode is PushMode.WEBHOOK and not self.push_endpoint:
            raise ValueError("GATEWAY_PUSH_MODE=webhook needs GATEWAY_PUSH_ENDPOINT")
        if self.push_mode is PushMode.FCM and not (
            self.push_fcm_project_id
            and (self.push_fcm_credentials_file or self.push_fcm_access_token)
        ):
            raise ValueError(
                "GATEWAY_PUSH_MODE=fcm needs GATEWAY_PUSH_FCM_PROJECT_ID and "
                "GATEWAY_PUSH_FCM_CREDENTIALS_FILE (or GATEWAY_PUSH_FCM_ACCESS_TOKEN)"
            )
        return self

    @model_validator(mode="after")
    def _one_jwt_algorithm(self) -> Settings:
        if self.jwt_secret and self.jwt_public_key:
            raise ValueError("set GATEWAY_JWT_SECRET or GATEWAY_JWT_PUBLIC_KEY, not both")
        if self.jwt_secret is not None and len(self.jwt_secret) < 32:
            # PyJWT warns on short HMAC keys; a short secret is guessable offline.
            raise ValueError("GATEWAY_JWT_SECRET must be at least 32 characters")
        return self

    @property
    def introspection_enabled(self) -> bool:
        return self._by_environment(self.introspection)

    @property
    def graphiql_enabled(self) -> bool:
        return self._by_environment(self.graphiql)

    def _by_environment(self, value: bool | None) -> bool:
        return self.environment is Environment.DEVELOPMENT if value is None else value

    @property
    def has_jwt_key(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key)

    @cached_property
    def normalized_database_url(self) -> str:
        return normalize_database_url(self.database_url)

    def check_can_serve(self) -> None:
        if self.environment is Environment.PRODUCTION and not self.has_jwt_key:
            raise SettingsError(
                "refusing to start in production without a JWT key: "
                "set GATEWAY_JWT_SECRET (HS256) or GATEWAY_JWT_PUBLIC_KEY (RS256)"
            )


def normalize_database_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``, ``sqlite:///``) and
    pick the async driver the gateway runs on."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SettingsError(f"not a database URL: {url!r}")
    match scheme:
        case "postgres" | "postgresql" | "postgresql+asyncpg":
            return f"postgresql+asyncpg://{rest}"
        case "sqlite" | "sqlite+aiosqlite":
            return f"sqlite+aiosqlite://{rest}"
    raise SettingsError(
        f"unsupported database URL scheme {scheme!r}: use sqlite+aiosqlite:// or "
        "postgresql+asyncpg://"
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(text: str) -> str:
    """An origin as browsers send it (``https://app.example.org``, ``http://localhost:5173``):
    lower case, no trailing slash, no default port. ``*`` stands for every origin."""
    text = text.strip().rstrip("/").lower()
    if text == "*":
        return text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not an origin: {text!r}") from exc
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.username
        or (parts.path or parts.query or parts.fragment)
    ):
        raise ValueError(
            f"not an origin: {text!r} (expected scheme://host[:port], e.g. https://app.example.org)"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"
