from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, PostgresDsn, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


DEVELOPMENT_SECRET_PREFIX = "development-only-"


class Settings(BaseSettings):
    """Every knob of the service, read from `PATRIOT_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="PATRIOT_", env_file=None, extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    database_url: PostgresDsn = Field(
        description="SQLAlchemy URL with the asyncpg driver, e.g. postgresql+asyncpg://u@h:5432/db",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_statement_timeout_ms: int = Field(default=15_000, ge=100)
    # A database outage is answered 503 with Retry-After (SERVICE_UNAVAILABLE)
    # instead of making every caller wait for it.
    database_connect_timeout_s: float = Field(default=5.0, gt=0, le=120)
    database_pool_timeout_s: float = Field(default=10.0, gt=0, le=120)
    unavailable_retry_after_s: int = Field(default=5, ge=1, le=3_600)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # A GPS fix or a simplified boundary may put a genuine Bekasi report a few
    # metres outside every polygon; within this distance it is still routed.
    snap_tolerance_m: float = Field(default=50.0, ge=0, le=5_000)

    # Each process keeps the active boundary set in memory for the common lookup
    # (geo/boundary_index.py); PostGIS answers the rest and stays the source of truth.
    boundary_index: bool = True
    boundary_index_check_s: float = Field(
        default=10.0,
        gt=0,
        description="How often each process checks which boundary set is active, in case "
        "it missed the notification of an activation.",
    )

    shared_data_dir: Path | None = Field(
        default=None,
        description="Folder holding the official kelurahan.geojson and kecamatan.geojson.",
    )

    # Case lifecycle (service levels in working days, WIB).
    reopen_window_working_days: int = Field(default=10, ge=1, le=60)
    auto_close_working_days: int = Field(default=10, ge=1, le=60)
    duplicate_window_days: int = Field(default=14, ge=1, le=365)
    poc_escalation_after_hours: float = Field(
        default=24.0, gt=0, description="How long after its due time an open case goes to the POC."
    )
    sweep_interval_s: float = Field(
        default=60.0, gt=0, description="How often each process sweeps for overdue cases."
    )
    sweeper_enabled: bool = True

    # Personal data (UU No. 27/2022): how long reporters' details and the record of
    # who saw them are kept. Reporter details of a case whose status is final
    # (CLOSED, REJECTED, DUPLICATE) and that has not changed for this long are
    # erased by the sweeper.
    reporter_retention_days: int = Field(default=365, ge=1, le=36_500)
    personal_data_access_retention_days: int = Field(
        default=730,
        ge=1,
        le=36_500,
        description="How long the record of who saw reporters' details is kept.",
    )
    retention_batch_size: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Cases erased, or access records pruned, per sweep and process.",
    )

    # Live feeds: "postgres" (LISTEN/NOTIFY, shared by every process on the database)
    # or "memory" (one process only, for tests).
    pubsub_url: str = Field(default="postgres://", pattern=r"^(postgres|memory)://")
    live_counts_min_interval_s: float = Field(default=0.3, ge=0.05, le=10)
    freeze_settled_sockets: bool = Field(
        default=True,
        description="Keep websocket connections that settled out of full garbage "
        "collections (api/long_lived.py).",
    )
    live_poll_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often each process reads the event log without being woken up.",
    )

    # Staff tokens (JWT). The algorithm is pinned; HS* use the secret, RS*/ES*/EdDSA
    # the public key.
    jwt_algorithm: str = Field(default="HS256", pattern=r"^(HS256|HS384|HS512|RS256|ES256|EdDSA)$")
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str = "patriot"
    jwt_audience: str = "patriot-api"
    jwt_leeway_s: int = Field(default=30, ge=0, le=300)
    # Revoking a partner key takes effect within this many seconds.
    partner_key_cache_s: float = Field(default=30.0, ge=0, le=600)

    # Abuse limits (api/document_limits.py, api/query_cost.py).
    max_query_depth: int = Field(default=10, ge=2, le=50)
    max_aliases: int = Field(default=15, ge=0, le=1_000)
    max_tokens: int = Field(default=2_000, ge=100, le=100_000)
    max_query_cost: int = Field(
        default=5_000, ge=10, description="Estimated cost of one operation; see api/query_cost.py."
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1_024)
    max_response_bytes: int = Field(
        default=4_194_304,
        ge=65_536,
        description="Largest encoded answer of one operation (HTTP body or websocket "
        "payload); a larger one is replaced by the error RESPONSE_TOO_LARGE.",
    )
    # Far below PostgreSQL's 32,767 parameters of one statement, which a list
    # filter of more values would overflow.
    max_list_items: int = Field(
        default=1_000, ge=10, le=10_000, description="Items of any list argument or variable."
    )
    mutation_rate_per_minute: float = Field(
        default=120, gt=0, description="Mutations per caller (API key, token or IP) and process."
    )
    mutation_burst: int = Field(default=30, ge=1)
    # Connections (api/__main__.py, api/http_guard.py, api/sockets.py).
    http_header_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Time to send a request's line and headers."
    )
    http_body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3_600,
        description="Time to send a request's body, once its headers are in.",
    )
    http_max_header_bytes: int = Field(default=32_768, ge=1_024, le=1_048_576)
    http_keep_alive_s: int = Field(
        default=5, ge=1, le=300, description="How long an idle connection is kept open."
    )
    max_connections: int = Field(
        default=20_000,
        ge=10,
        description="Open connections (websockets included) and running "
        "requests of a process; requests beyond are answered 503.",
    )
    websocket_init_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Time for a websocket to send connection_init."
    )
    websockets_per_principal: int = Field(
        default=20,
        ge=1,
        description="Open websockets of one caller (partner or staff subject) per process.",
    )
    websocket_max_operations: int = Field(
        default=100, ge=1, le=10_000, description="Operations running at once on one websocket."
    )
    # Exact origins such as "https://poc.bekasikota.go.id", as a JSON list. Empty:
    # no cross-origin browser requests; websockets from the same origin or from
    # non-browser clients (no Origin header) are always allowed.
    cors_origins: list[str] = Field(default_factory=list)
    websocket_origins: list[str] = Field(default_factory=list)
    introspection: bool | None = Field(
        default=None, description="Allow introspection; defaults to on outside production."
    )

    poc_tile_url: str | None = Field(
        default=None,
        description="Map tiles for the /poc screen, e.g. https://tiles.example/{z}/{x}/{y}.png; "
        "none by default: the screen draws the kelurahan boundaries only.",
    )
    graphiql: bool | None = Field(
        default=None, description="Serve GraphiQL; defaults to on outside production."
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check_database_driver(self) -> Settings:
        if self.database_url.scheme != "postgresql+asyncpg":
            raise ValueError(
                "PATRIOT_DATABASE_URL must use the asyncpg driver: postgresql+asyncpg://..."
            )
        return self

    @model_validator(mode="after")
    def _check_token_keys(self) -> Settings:
        if self.jwt_algorithm.startswith("HS"):
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if self.environment is Environment.PRODUCTION and (
                len(secret) < 32 or secret.startswith(DEVELOPMENT_SECRET_PREFIX)
            ):
                raise ValueError(
                    "PATRIOT_JWT_SECRET must be set to a random value of at least 32 "
                    "characters in production"
                )
        elif not self.jwt_public_key:
            raise ValueError(f"PATRIOT_JWT_PUBLIC_KEY is required for {self.jwt_algorithm}")
        return self

    @property
    def token_secret(self) -> str:
        """The HMAC secret; outside production a fixed development one is allowed."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return f"{DEVELOPMENT_SECRET_PREFIX}do-not-use-in-production-0000"

    @property
    def introspection_enabled(self) -> bool:
        if self.introspection is None:
            return self.environment is not Environment.PRODUCTION
        return self.introspection

    @property
    def field_suggestions_enabled(self) -> bool:
        # With introspection off, "Did you mean ...?" hints would leak the schema.
        return self.environment is not Environment.PRODUCTION and self.introspection_enabled

    @property
    def graphiql_enabled(self) -> bool:
        if self.graphiql is None:
            return self.environment is not Environment.PRODUCTION
        return self.graphiql

    @property
    def sqlalchemy_url(self) -> str:
        return str(self.database_url)
