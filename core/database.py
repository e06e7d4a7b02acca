from __future__ import annotations

from typing import Any

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.settings import Settings

# Query parameters by which a database URL asks for (or about) TLS.
_TLS_PARAMETERS = {"ssl", "sslmode", "sslrootcert", "sslcert", "sslkey"}
_LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}


def create_engine(settings: Settings) -> AsyncEngine:
    connect_args: dict[str, Any] = {
        "server_settings": {
            "statement_timeout": str(settings.database_statement_timeout_ms),
            "application_name": "patriot",
        },
    }
    url = make_url(settings.sqlalchemy_url)
    if url.host in _LOCAL_HOSTS and not _TLS_PARAMETERS & set(url.query):
        # asyncpg's default ("prefer") first tries TLS on every new connection,
        # building an SSL context each time, even to a server on this machine.
        connect_args["ssl"] = False
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=settings.database_pool_size,
        # No overflow: under a burst, operations wait for one of the pooled
        # connections; overflow connections were opened and closed again for
        # every burst beyond the pool (10 to 55 per 8 s at 32 concurrent requests).
        max_overflow=0,
        pool_pre_ping=False,
        connect_args=connect_args,
        # Parameters hold personal data (reporters' names, phones, e-mail); errors and
        # logs show the statement only (see core/log_redaction.py).
        hide_parameters=True,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
