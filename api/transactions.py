from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import asyncpg
from graphql import GraphQLError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import StreamExecutionResult
from strawberry.types.graphql import OperationType

from api.errors import INTERNAL_MESSAGE, OperationResult, unavailable_error
from core.database import database_unavailable
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
    commit, so rolled-back events are never seen. A failed commit turns the
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
    try:
        if result is not None and not result.errors and session.in_transaction():
            try:
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
    finally:
        await session.close()


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
