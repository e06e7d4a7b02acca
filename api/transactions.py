from __future__ import annotations

from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension

from api.live import CASE_EVENTS_CHANNEL
from domain.events import wrote_events
from schema.context import Context


class TransactionPerOperation(SchemaExtension):
    """One database transaction per GraphQL operation.

    It commits only when the whole operation succeeded; on any error (even a
    partial one) everything the operation wrote is rolled back, so a caller never
    sees half of a mutation applied. Domain code flushes, never commits. Live
    feeds are woken only after the commit, so rolled-back events are never seen.
    """

    async def on_operation(self) -> AsyncIterator[None]:
        context: Context = self.execution_context.context
        try:
            yield
        finally:
            session = context.take_session()
            if session is not None:
                try:
                    result = self.execution_context.result
                    if result is not None and not result.errors and session.in_transaction():
                        await session.commit()
                        if wrote_events(session):
                            await context.request.app.state.pubsub.publish(CASE_EVENTS_CHANNEL)
                    else:
                        await session.rollback()
                finally:
                    await session.close()
