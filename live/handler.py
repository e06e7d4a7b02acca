"""graphql-transport-ws with shared `caseEvents` executions (live/groups.py)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from starlette.websockets import WebSocket
from strawberry.schema.schema import StreamResult
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)

from domain.event_feed import (
    FeedPosition,
)
from live.audit import record_subscriber
from live.groups import SOCKET_GONE, End, Outcome, StreamStarter, next_prefix
from live.sharing import FeedRoot, ShareKey, share_key
from schema.context import Context

logger = logging.getLogger("patriot.live")


class SharedSubscriptionsHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with `caseEvents` subscriptions that can share
    (see share_key) run once per group instead of once per socket.

    A member's `next` frames are the group's serialized payload behind its own
    operation id; everything else (other operations, `complete`, errors, the
    protocol's rules) is Strawberry's. A member that falls behind continues
    alone from the last event it was sent, so it misses nothing.
    """

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        key = share_key(
            query=operation.query,
            variables=operation.variables,
            operation_name=operation.operation_name,
            principal=self.context.principal,
        )
        if key is None:
            await super().run_operation(operation)
            return
        try:
            outcome = await self._run_member(operation, key)
            if isinstance(outcome, End):
                await operation.send_operation_message(_end_message(operation.id, outcome))
            elif isinstance(outcome, FeedPosition):
                await self._run_alone(operation, FeedRoot(resume_after=outcome))
        except SOCKET_GONE:
            return  # its handler cleans up
        except Exception as error:  # as Strawberry's own run_operation does
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def _run_member(self, operation: Operation[Context, None], key: ShareKey) -> Outcome:
        socket = self.context.request
        assert isinstance(socket, WebSocket)
        # The group's execution runs for its founder only: each member is recorded here.
        await record_subscriber(
            session_factory=self.context.session_factory,
            principal=self.context.principal,
            query=operation.query,
        )
        shared = self.context.services.shared_subscriptions
        group, member = shared.join(
            key,
            socket=socket,
            # The frame Strawberry would send, spliced rather than serialized again.
            prefix=next_prefix(self.view.encode_json(operation.id)),
            start_stream=self._stream_starter(operation),
            encode=self.view.encode_json,
        )
        try:
            return await member.outcome
        finally:
            shared.leave(group, member)

    async def _run_alone(self, operation: Operation[Context, None], root: FeedRoot) -> None:
        source = await self.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=self.context,
            root_value=root,
            operation_name=operation.operation_name,
        )
        async with contextlib.aclosing(source):
            await self._send_result_stream(operation, source)
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    def _stream_starter(self, operation: Operation[Context, None]) -> StreamStarter:
        # The group's own context: it outlives the socket that founded it and
        # carries no credentials, only the principal every member shares.
        founder = self.context
        context = Context(
            request=founder.request,
            response=None,
            settings=founder.settings,
            session_factory=founder.session_factory,
            services=founder.services,
            principal=founder.principal,
        )
        schema = self.schema

        async def start(root: FeedRoot) -> StreamResult:
            return await schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                root_value=root,
                operation_name=operation.operation_name,
            )

        return start


def _end_message(operation_id: str, end: End) -> Any:
    if end.type == "error":
        return {"id": operation_id, "type": "error", "payload": end.errors or []}
    return {"id": operation_id, "type": "complete"}


# What SharedSubscriptionsHandler relies on of Strawberry's graphql-transport-ws
# handler beyond its documented use: the one place Patriot reaches below a
# library's public API (for the fan-out speed, bench/README.md "Live fan-out").
# Strawberry is pinned exactly in pyproject.toml; after an upgrade that changed
# any of these, the server serves every subscription with Strawberry's own
# handler (no sharing: correct, slower) and says so.
RELIED_ON = ("run_operation", "_send_result_stream", "handle_task_exception", "operations")


def sharing_supported(handler: type[Any] = BaseGraphQLTransportWSHandler) -> bool:
    return all(
        hasattr(handler, name) or name in handler.__init__.__code__.co_names for name in RELIED_ON
    )
