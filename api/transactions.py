from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg
from graphql import GraphQLError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import INTERNAL_MESSAGE, RESULT_TYPES, unavailable_error
from core.database import database_unavailable
from domain.access_log import record_access
from domain.events import wrote_events
from live.feed import CASE_EVENTS_CHANNEL
from schema.context import Context, Operation

logger = logging.getLogger("patriot.transactions")


async def finish_operation(operation: Operation, result: object) -> None:
    """One database transaction per GraphQL operation, over HTTP and websockets
    alike: the operations of one socket run concurrently, each in its own
    transaction, exactly as separate HTTP requests would.

    It commits only when the whole operation succeeded; on any error (even a
    partial one) everything the operation wrote is rolled back, so a caller never
    sees half of a mutation applied, and an answered mutation is a committed
    one. Domain code flushes, never commits. Live feeds are woken only after the
    commit, so rolled-back events are never seen. Which reporters the answer
    shows is recorded in the same transaction (in one of its own when the rest is
    rolled back but a partial answer still shows them). A failed commit turns the
    result into the masked internal error. A second call finds nothing to do."""
    if not isinstance(result, RESULT_TYPES):
        result = None
    session = operation.finish()
    if session is None:
        return  # the operation never touched the database, or has ended
    sightings = operation.reporter_sightings
    record_apart = False
    try:
        if result is not None and not result.errors and session.in_transaction():
            try:
                if sightings:
                    await _record_sightings(session, operation)
                await session.commit()
            except (SQLAlchemyError, OSError) as error:
                result.data = None
                if database_unavailable(error):
                    # Whether the commit reached the server is unknown: a retry
                    # is safe (idempotency keys, refused repeated transitions).
                    logger.warning("commit failed: database unavailable (%s)", type(error).__name__)
                    retry_after_s = operation.context.settings.unavailable_retry_after_s
                    result.errors = [unavailable_error(retry_after_s)]
                else:
                    logger.exception("commit failed")
                    result.errors = [
                        GraphQLError(INTERNAL_MESSAGE, extensions={"code": "INTERNAL"})
                    ]
                await _discard(session)
                return
            if wrote_events(session):
                await _wake_live_feeds(operation.context)
        else:
            await _discard(session)
            # A partial answer may still show reporters: that is recorded anyway.
            record_apart = bool(sightings) and result is not None and result.data is not None
    finally:
        await session.close()
    if record_apart and result is not None:
        try:
            async with operation.context.session_factory() as apart, apart.begin():
                await _record_sightings(apart, operation)
        except (OSError, SQLAlchemyError, asyncpg.PostgresError):
            # Not shown unless recorded.
            logger.exception("could not record who saw personal data")
            result.data = None


async def _record_sightings(session: AsyncSession, operation: Operation) -> None:
    await record_access(
        session=session,
        principal=operation.context.principal,
        sightings=operation.reporter_sightings,
        at=datetime.now(UTC),
    )


async def _discard(session: AsyncSession) -> None:
    try:
        await session.rollback()
    except (SQLAlchemyError, OSError):
        # A resolver cancelled mid-query (a sibling field failed and graphql-core
        # cancelled the rest) leaves its connection closed: nothing to roll back.
        await session.invalidate()


async def _wake_live_feeds(context: Context) -> None:
    try:
        await context.services.pubsub.publish(CASE_EVENTS_CHANNEL)
    except (OSError, SQLAlchemyError, asyncpg.PostgresError):
        # The change is committed; readers also poll, so they catch up within a second.
        logger.warning("could not wake the live feeds", exc_info=True)
