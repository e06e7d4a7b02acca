"""Sockets following `caseEvents` with the same document, variables and access
scope share one execution: each event is resolved and serialized once per
group, and every socket of the group is sent the same payload behind its own
operation id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
)
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLError,
)
from starlette.websockets import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected as StarletteWebSocketDisconnected
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.schema import StreamResult
from strawberry.types.execution import ExecutionResult, PreExecutionError

from domain.event_feed import (
    FeedPosition,
)
from live.eager import run_eagerly
from live.feed import LISTENER_QUEUE_SIZE, LiveFeed
from live.sharing import FeedRoot, ShareKey

logger = logging.getLogger("patriot.live")

# A socket with this many frames of its group still unsent leaves the group and
# continues on its own from the last frame it was sent, like a fallen-behind listener.
MEMBER_BACKLOG = LISTENER_QUEUE_SIZE


@dataclass(frozen=True)
class End:
    """How a group's stream ended, for each member to tell its client."""

    type: str  # "complete" or "error"
    errors: list[Any] | None = None


# What ends a member's time in its group: the group ended (End), the socket fell
# behind (resume alone after this position) or the socket is gone (None).
Outcome = End | FeedPosition | None

# Starlette's WebSocketDisconnected: sending on a socket we closed (its token expired).
SOCKET_GONE = (WebSocketDisconnect, WebSocketDisconnected, StarletteWebSocketDisconnected)

# JSON as the view encodes it: text or bytes, sent as text or binary frames
# (see Strawberry's ASGIWebSocketAdapter.send_json).
Encoded = str | bytes


class Batch:
    """Results of a group that were ready together, each with the event it is about."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[FeedPosition | None, Encoded]]) -> None:
        self.items = items


class Member:
    """One socket's subscription in a group.

    Frames go straight to the socket, without a task switch: a socket takes a
    frame at once unless its connection stopped draining. Only then do frames
    wait here, in order, until MEMBER_BACKLOG of them make it leave the group.
    """

    __slots__ = (
        "_after",
        "_backlog",
        "_behind",
        "_end",
        "_prefix",
        "_sending",
        "_socket",
        "last",
        "outcome",
    )

    def __init__(self, *, socket: WebSocket, prefix: Encoded, after: FeedPosition) -> None:
        self._socket = socket
        self._prefix = prefix  # the frame up to the payload: its own operation id
        # Events up to `after` were committed before it subscribed; None once
        # the group's stream has passed it.
        self._after: FeedPosition | None = after
        self.last = after  # the last event the socket took
        self._backlog: deque[tuple[FeedPosition | None, Encoded]] = deque()
        self._sending: asyncio.Task[None] | None = None
        self._behind = False
        self._end: End | None = None
        self.outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    def deliver(self, batch: Batch) -> bool:
        """Sends a batch of the group's payloads; False when the member must leave."""
        if self.outcome.done() or self._behind:
            return False
        items = batch.items
        if self._after is not None:
            items = self._unseen(items)
        if not items:
            return True
        return all(self._deliver_one(position, payload) for position, payload in items)

    def _unseen(
        self, items: list[tuple[FeedPosition | None, Encoded]]
    ) -> list[tuple[FeedPosition | None, Encoded]]:
        unseen = []
        for position, payload in items:
            if self._after is not None and position is not None:
                if position <= self._after:
                    continue
                self._after = None
            unseen.append((position, payload))
        return unseen

    def _deliver_one(self, position: FeedPosition | None, payload: Encoded) -> bool:
        frame = _splice(self._prefix, payload)
        if self._sending is not None:
            if len(self._backlog) >= MEMBER_BACKLOG:
                self._behind = True  # resolved once the backlog is sent
                return False
            self._backlog.append((position, frame))
            return True
        try:
            unfinished = run_eagerly(self._send(frame))
        except SOCKET_GONE:
            self._resolve(None)
            return False
        except Exception:  # one socket's failure ends its subscription, not the group
            logger.exception("sending to a subscriber failed")
            self._resolve(End("complete"))
            return False
        if unfinished is None:
            self._took(position)
        else:
            self._sending = asyncio.create_task(self._drain(unfinished, position))
        return True

    def finish(self, end: End) -> None:
        if self._sending is None:
            self._resolve(end)
        else:
            self._end = end  # after the backlog

    def close(self) -> None:
        if self._sending is not None:
            self._sending.cancel()
        self._resolve(None)

    def _send(self, frame: Encoded) -> Coroutine[Any, None, None]:
        # Starlette's send itself, not a coroutine of ours around send_text: the
        # fewer coroutines per socket and event, the cheaper the fan-out. It
        # raises WebSocketDisconnected once we closed the socket ourselves.
        return self._socket.send(_send_message(frame))

    async def _drain(self, unfinished: Awaitable[None], position: FeedPosition | None) -> None:
        try:
            await unfinished
            self._took(position)
            while self._backlog:
                position, frame = self._backlog.popleft()
                await self._send(frame)
                self._took(position)
        except SOCKET_GONE:
            self._resolve(None)
            return
        except Exception:
            logger.exception("sending to a subscriber failed")
            self._resolve(End("complete"))
            return
        finally:
            self._sending = None
        if self._behind:
            self._resolve(self.last)
        elif self._end is not None:
            self._resolve(self._end)

    def _took(self, position: FeedPosition | None) -> None:
        if position is not None:
            self.last = position

    def _resolve(self, outcome: Outcome) -> None:
        if not self.outcome.done():
            self.outcome.set_result(outcome)


def next_prefix(encoded_id: Encoded) -> Encoded:
    """A `next` frame up to its payload: the rest is the group's payload and "}"."""
    if isinstance(encoded_id, bytes):
        return b'{"id":' + encoded_id + b',"type":"next","payload":'
    return '{"id":' + encoded_id + ',"type":"next","payload":'


def _send_message(frame: Encoded) -> dict[str, Any]:
    """The ASGI message of a text or binary frame."""
    if isinstance(frame, str):
        return {"type": "websocket.send", "text": frame}
    return {"type": "websocket.send", "bytes": frame}


def _splice(prefix: Encoded, payload: Encoded) -> Encoded:
    if isinstance(prefix, str) and isinstance(payload, str):
        return prefix + payload + "}"
    if isinstance(prefix, bytes) and isinstance(payload, bytes):
        return prefix + payload + b"}"
    raise TypeError("a frame's parts must be all text or all bytes")


StreamStarter = Callable[[FeedRoot], Awaitable[StreamResult]]
# Members served between two yields to the event loop, so that one event for
# thousands of sockets does not hold up everything else the process does.
SEND_SLICE = 256


class Group:
    """One execution of a subscription, its results sent to every member."""

    def __init__(
        self,
        key: ShareKey,
        *,
        start_stream: StreamStarter,
        encode: Callable[[object], Encoded],
        resume_after: FeedPosition,
        on_end: Callable[[Group], None],
    ) -> None:
        self.key = key
        self.members: set[Member] = set()
        self.executions = 0  # results computed: one per event, whatever the members
        self._start_stream: StreamStarter | None = start_stream
        self._encode = encode
        # The founder subscribed at `resume_after`; the execution starts a moment
        # later and first replays anything committed in between.
        self._root = FeedRoot(resume_after=resume_after)
        self._on_end = on_end
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shared-subscription")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def wait_stopped(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        end = End("complete")
        try:
            assert self._start_stream is not None
            source = await self._start_stream(self._root)
            self._start_stream = None  # it holds the founder's handler
            async with (
                contextlib.aclosing(source),
                contextlib.aclosing(_ready_together(source, self._root)) as batches,
            ):
                first = True
                async for results in batches:
                    if first and isinstance(results[0][1], PreExecutionError):
                        errors = results[0][1].errors or ()
                        end = End("error", [e.formatted for e in errors])
                        return
                    first = False
                    items: list[tuple[FeedPosition | None, Encoded]] = []
                    for position, result in results:
                        if not isinstance(result, ExecutionResult):
                            error = GraphQLError(
                                "Incremental delivery is not supported over graphql-transport-ws"
                            )
                            end = End("error", [error.formatted])
                            return
                        items.append((position, self._encode(_payload(result))))
                    self.executions += len(items)
                    await self._send(Batch(items))
                    if not self.members:
                        return
        except Exception:  # the members are told, as Strawberry tells a failed operation
            logger.exception("shared subscription failed")
        finally:
            self._on_end(self)
            for member in self.members:
                member.finish(end)

    async def _send(self, batch: Batch) -> None:
        for index, member in enumerate(tuple(self.members), start=1):
            if not member.deliver(batch):
                self.members.discard(member)
            if index % SEND_SLICE == 0:
                await asyncio.sleep(0)


def _payload(result: ExecutionResult) -> dict[str, object]:
    payload: dict[str, object] = {"data": result.data}
    if result.errors:
        payload["errors"] = [e.formatted for e in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload


# Results sent to the sockets together at most, so that a long replay still
# reaches them in steps.
BATCH_LIMIT = 64
# How long a group holds results for one whose event was already waiting: it
# normally takes a fraction of a millisecond; this only bounds a wrong guess.
NEXT_RESULT_WAIT_S = 0.05


async def _ready_together(
    source: AsyncIterator[Any], root: FeedRoot
) -> AsyncGenerator[list[tuple[FeedPosition | None, Any]], None]:
    """The source's results with the event each is about, in lists: results of
    events that were waiting together (those of one commit, of one read of the
    log) come in one list, so that each socket gets them in one write.

    The next result is computed in a task of its own while a list is sent.
    """
    batch: list[tuple[FeedPosition | None, Any]] = []
    more_ready = False
    pending = asyncio.ensure_future(_next(source))
    try:
        while True:
            if batch and (len(batch) >= BATCH_LIMIT or not await _arrives(pending, more_ready)):
                yield batch
                batch = []
            try:
                result = await pending
            except StopAsyncIteration:
                break
            except Exception:
                if batch:  # what came before the failure still goes out
                    yield batch
                raise
            # Read before the next step starts: the resolver moves them on.
            batch.append((root.position, result))
            more_ready = root.more_ready
            pending = asyncio.ensure_future(_next(source))
        if batch:
            yield batch
    finally:
        # The source must not be running when it is closed after this; a result
        # or failure of its that nobody will send is dropped here.
        pending.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await pending


async def _arrives(pending: asyncio.Future[Any], expected: bool) -> bool:
    """Whether the next result, expected or not, is there soon enough to share a write."""
    if not expected:
        return pending.done()
    done, _ = await asyncio.wait([pending], timeout=NEXT_RESULT_WAIT_S)
    return bool(done)


async def _next(source: AsyncIterator[Any]) -> Any:
    return await anext(source)


class SharedSubscriptions:
    """The groups of one server process, by what their members have in common."""

    def __init__(self, live: LiveFeed) -> None:
        self._live = live
        self._groups: dict[ShareKey, Group] = {}

    @property
    def groups(self) -> list[Group]:
        return list(self._groups.values())

    def join(
        self,
        key: ShareKey,
        *,
        socket: WebSocket,
        prefix: Encoded,
        start_stream: StreamStarter,
        encode: Callable[[object], Encoded],
    ) -> tuple[Group, Member]:
        # No await between reading the position and joining: every event after
        # it reaches the member, none before it.
        member = Member(socket=socket, prefix=prefix, after=self._live.position)
        group = self._groups.get(key)
        if group is None:
            group = Group(
                key,
                start_stream=start_stream,
                encode=encode,
                resume_after=member.last,
                on_end=self._forget,
            )
            self._groups[key] = group
            group.start()
        group.members.add(member)
        return group, member

    def leave(self, group: Group, member: Member) -> None:
        member.close()
        group.members.discard(member)
        if not group.members:
            self._forget(group)
            group.stop()

    def _forget(self, group: Group) -> None:
        if self._groups.get(group.key) is group:
            del self._groups[group.key]

    async def close(self) -> None:
        groups = self.groups
        for group in groups:
            group.stop()
        for group in groups:
            await group.wait_stopped()
