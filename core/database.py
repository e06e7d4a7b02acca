from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
from sqlalchemy import exc, make_url
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
        # asyncpg waits 60 s by default for a server that does not answer; every
        # operation would hang that long during an outage.
        "timeout": settings.database_connect_timeout_s,
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
        pool_timeout=settings.database_pool_timeout_s,
        pool_pre_ping=False,
        connect_args=connect_args,
        # Parameters hold personal data (reporters' names, phones, e-mail); errors and
        # logs show the statement only (see core/log_redaction.py).
        hide_parameters=True,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# What the database says when it cannot serve anyone right now, as opposed to a
# refusal of one statement (a statement timeout, 57014, is not among them).
_UNAVAILABLE = (
    OSError,  # refused, reset, unreachable, and connect timeouts (TimeoutError)
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.exceptions.AdminShutdownError,  # 57P01
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
    exc.TimeoutError,  # no pooled connection within the pool timeout
    exc.DisconnectionError,
)


def database_unavailable(error: BaseException | None) -> bool:
    """Whether an error means the database is unreachable rather than that one
    operation failed: the caller should retry later, it is not a bug."""
    for cause in _causes(error):
        if isinstance(cause, exc.DBAPIError) and cause.connection_invalidated:
            return True  # SQLAlchemy's dialect recognised a lost connection
        if isinstance(cause, _UNAVAILABLE):
            return True
    return False


def _causes(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        original = error.orig if isinstance(error, exc.DBAPIError) else None
        error = original or error.__cause__ or error.__context__
