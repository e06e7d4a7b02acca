from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import asyncpg
from graphql import GraphQLError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension

from api.errors import INTERNAL_MESSAGE, OperationResult
from api.live import CASE_EVENTS_CHANNEL
from domain.events import wrote_events
from domain.intake import EACH_STATEMENT_COMMITS
from schema.context import Context

logger = logging.getLogger("patriot.transactions")


class TransactionPerOperation(SchemaExtension):
    """One database transaction per GraphQL operation.

    It commits only when the whole operation succeeded; on any error (even a
    partial one) everything the operation wrote is rolled back, so a caller never
    sees half of a mutation applied. Domain code flushes, never commits. Live
    feeds are woken only after the commit, so rolled-back events are never seen.
    This runs after errors were made public, so it never lets an exception out:
    a failed commit becomes the masked internal error.
    """

    async def on_operation(self) -> AsyncIterator[None]:
        context: Context = self.execution_context.context
        try:
            yield
        finally:
            await finish_transaction(context, self.execution_context.result)


async def finish_transaction(context: Context, result: OperationResult | None) -> None:
    """Commit the operation's session if the result is a success, otherwise roll it back.

    Never raises: a failed commit turns `result` into the masked internal error."""
    session = context.take_session()
    if session is None:
        return  # the operation never touched the database
    try:
        if result is not None and not result.errors and session.in_transaction():
            try:
                await session.commit()
            except SQLAlchemyError:
                logger.exception("commit failed")
                result.data = None
                result.errors = [GraphQLError(INTERNAL_MESSAGE, extensions={"code": "INTERNAL"})]
                await _discard(session)
                return
            if wrote_events(session):
                await _wake_live_feeds(context)
        else:
            await _discard(session)
            # In autocommit what was written stays written (a field whose only
            # write is one statement asks for it: `Context.db`).
            if session.info.get(EACH_STATEMENT_COMMITS) and wrote_events(session):
                await _wake_live_feeds(context)
    finally:
        await session.close()


async def _discard(session: AsyncSession) -> None:
    try:
        await session.rollback()
    except SQLAlchemyError:
        # A resolver cancelled mid-query (a sibling field failed and graphql-core
        # cancelled the rest) leaves its connection closed: nothing to roll back.
        await session.invalidate()


async def _wake_live_feeds(context: Context) -> None:
    try:
        await context.request.app.state.pubsub.publish(CASE_EVENTS_CHANNEL)
    except (OSError, SQLAlchemyError, asyncpg.PostgresError):
        # The change is committed; readers also poll, so they catch up within a second.
        logger.warning("could not wake the live feeds", exc_info=True)
