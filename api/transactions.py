from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import asyncpg
from graphql import GraphQLError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import StreamExecutionResult
from strawberry.types.graphql import OperationType

from api.errors import INTERNAL_MESSAGE, OperationResult
from domain.access_log import record_access
from domain.events import wrote_events
from live.feed import CASE_EVENTS_CHANNEL
from schema.context import Context, Operation

logger = logging.getLogger("patriot.transactions")


class TransactionPerOperation(SchemaExtension):
    """One database session and transaction per GraphQL operation, over HTTP and
    websockets alike: the operations of one socket run concurrently, each in its
    own transaction, exactly as separate HTTP requests would.

    It commits only when the whole operation succeeded; on any error (even a
    partial one) everything the operation wrote is rolled back, so a caller never
    sees half of a mutation applied, and an answered mutation is a committed
    one. Domain code flushes, never commits. Live feeds are woken only after the
    commit, so rolled-back events are never seen. Which reporters the answer
    shows is recorded in the same transaction (in one of its own when the rest is
    rolled back but a partial answer still shows them). A failed commit turns the
    result into the masked internal error.
    """

    def __init__(self) -> None:
        self.operation: Operation | None = None

    async def on_operation(self) -> AsyncIterator[None]:
        # The connection's context (a websocket's is shared by all its
        # operations) is copied for this operation; execution reads it after
        # this point, so the resolvers see the copy and its own session.
        context: Context = self.execution_context.context.for_operation()
        self.execution_context.context = context
        self.operation = operation = context.operation
        try:
            yield
        finally:
            await _finish(operation, self.execution_context.result)

    def on_execute(self) -> Iterator[None]:
        # A subscription lives as long as its socket: each of its reads gets a
        # short session instead of holding one pooled connection all that time.
        if self.operation is not None and self._is_subscription():
            self.operation.short_sessions = True
        yield

    async def on_stream_result(self, result: StreamExecutionResult) -> AsyncIterator[None]:
        # Over a websocket a query or mutation is answered by this result: it is
        # committed before the answer leaves, never after.
        if self.operation is not None and not self._is_subscription():
            await _finish(self.operation, result if isinstance(result, OperationResult) else None)
        yield

    def _is_subscription(self) -> bool:
        try:
            return self.execution_context.operation_type is OperationType.SUBSCRIPTION
        except RuntimeError:
            return False  # the document did not parse


async def _finish(operation: Operation, result: OperationResult | None) -> None:
    """Commits the operation's session if the result is a success, otherwise
    rolls it back; a second call finds nothing left to do."""
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
            except SQLAlchemyError:
                logger.exception("commit failed")
                result.data = None
                result.errors = [GraphQLError(INTERNAL_MESSAGE, extensions={"code": "INTERNAL"})]
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
    except SQLAlchemyError:
        # A resolver cancelled mid-query (a sibling field failed and graphql-core
        # cancelled the rest) leaves its connection closed: nothing to roll back.
        await session.invalidate()


async def _wake_live_feeds(context: Context) -> None:
    try:
        await context.services.pubsub.publish(CASE_EVENTS_CHANNEL)
    except (OSError, SQLAlchemyError, asyncpg.PostgresError):
        # The change is committed; readers also poll, so they catch up within a second.
        logger.warning("could not wake the live feeds", exc_info=True)
