from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, PostgresDsn, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Every knob of the service, read from `PATRIOT_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="PATRIOT_", env_file=None, extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    database_url: PostgresDsn = Field(
        description="SQLAlchemy URL with the asyncpg driver, e.g. postgresql+asyncpg://u@h:5432/db",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_statement_timeout_ms: int = Field(default=15_000, ge=100)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # A GPS fix or a simplified boundary may put a genuine Bekasi report a few
    # metres outside every polygon; within this distance it is still routed.
    snap_tolerance_m: float = Field(default=50.0, ge=0, le=5_000)

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

    # Live feeds: "postgres" (LISTEN/NOTIFY, shared by every process on the database)
    # or "memory" (one process only, for tests).
    pubsub_url: str = Field(default="postgres://", pattern=r"^(postgres|memory)://")
    live_counts_min_interval_s: float = Field(default=0.3, ge=0.05, le=10)

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

    @property
    def graphiql_enabled(self) -> bool:
        if self.graphiql is None:
            return self.environment is not Environment.PRODUCTION
        return self.graphiql

    @property
    def sqlalchemy_url(self) -> str:
        return str(self.database_url)
