"""One reader of the event log per server process, fanning events out to the
subscriptions of that process.

Notifications (see api/pubsub.py) only wake the reader; it then reads the log
from its last position. Each subscription has a bounded queue: one that falls
behind is marked and catches up from the database on its own, so a slow or
vanished client never blocks the reader, other clients or the mutations.

Sockets following `caseEvents` with the same document, variables and access
scope share one execution (SharedSubscriptions): each event is resolved and
serialized once per group, and every socket of the group is sent the same frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import types
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
)
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson
from graphql import (
    FieldNode,
    GraphQLError,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    parse,
)
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected as StarletteWebSocketDisconnected
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.schema import StreamResult
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError

from api.pubsub import PubSub
from api.websocket_frames import FRAME_WRITER, FrameWriter, server_frame
from domain.access import Principal
from domain.event_feed import (
    START,
    FeedFilter,
    FeedItem,
    FeedPosition,
    committed_after,
    head,
    read_after,
)

if TYPE_CHECKING:
    from schema.context import Context

logger = logging.getLogger("patriot.live")

CASE_EVENTS_CHANNEL = "case_events"
LISTENER_QUEUE_SIZE = 1_000
READ_BATCH = 500
# Events of a transaction that commits while an older one is still running are
# held back (see domain/event_feed.py); polling picks them up without a wake-up.
POLL_INTERVAL_S = 1.0
# Once the reader saw events held back, it reads again this soon, then twice as
# late each time, up to the poll interval: they go out soon after the older
# transaction ends, not a poll interval later.
HELD_BACK_RETRY_S = 0.02
# A socket with this many frames of its group still unsent leaves the group and
# continues on its own from the last frame it was sent, like a fallen-behind listener.
MEMBER_BACKLOG = LISTENER_QUEUE_SIZE
SHARED_FIELD = "caseEvents"


class FellBehind(Exception):
    """The listener's queue overflowed: re-read from the database."""


@dataclass(eq=False)
class Listener:
    feed_filter: FeedFilter
    start: FeedPosition
    queue: asyncio.Queue[FeedItem] = field(
        default_factory=lambda: asyncio.Queue(maxsize=LISTENER_QUEUE_SIZE)
    )
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False
    wants_items: bool = True  # False: only `changed` matters (live counts)

    def offer(self, item: FeedItem) -> None:
        self.changed.set()
        if not self.wants_items or self.overflowed or not self.feed_filter.matches(item):
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True

    async def next(self) -> FeedItem:
        if self.overflowed:
            raise FellBehind()
        item = await self.queue.get()
        return item

    def has_waiting(self) -> bool:
        """Whether an item is already queued (or the queue overflowed): next() will not wait."""
        return self.overflowed or not self.queue.empty()

    def reset(self) -> None:
        """Forget the queue after falling behind; the caller re-reads the log."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.overflowed = False


class LiveFeed:
    def __init__(
        self,
        *,
        session_factory: Callable[[], AsyncSession],
        pubsub: PubSub,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self._session_factory = session_factory
        self._pubsub = pubsub
        self._poll_interval_s = poll_interval_s
        self._listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.position: FeedPosition = START
        self.shared = SharedSubscriptions(self)

    async def start(self) -> None:
        async with self._session_factory() as session:
            self.position = await head(session=session)
        self._task = asyncio.create_task(self._run(), name="live-feed")
        await self._ready.wait()

    async def stop(self) -> None:
        await self.shared.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def register(self, feed_filter: FeedFilter, *, wants_items: bool = True) -> Listener:
        # No await between reading the position and joining the fan-out: every
        # event after `start` reaches the listener's queue.
        listener = Listener(feed_filter=feed_filter, start=self.position, wants_items=wants_items)
        self._listeners.add(listener)
        return listener

    def unregister(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    async def _run(self) -> None:
        async with self._pubsub.subscribe(CASE_EVENTS_CHANNEL) as wakeups:
            self._ready.set()
            retry_s: float | None = None  # set while events are held back
            while True:
                try:
                    await asyncio.wait_for(wakeups.next(), timeout=retry_s or self._poll_interval_s)
                    wakeups.discard_pending()  # one read serves a burst of commits
                except TimeoutError:
                    if not self._listeners:
                        continue
                try:
                    # Held-back events are worth reading early only for a listener.
                    if await self._drain() and self._listeners:
                        retry_s = min(
                            2 * retry_s if retry_s else HELD_BACK_RETRY_S, self._poll_interval_s
                        )
                    else:
                        retry_s = None
                except Exception:  # the reader must outlive any one failure
                    logger.exception("live feed read failed; retrying")
                    await asyncio.sleep(self._poll_interval_s)

    async def _drain(self) -> bool:
        """Reads and offers every settled event; True if others are held back."""
        while True:
            async with self._session_factory() as session:
                items = await read_after(session=session, after=self.position, limit=READ_BATCH)
                last = items[-1].position if items else self.position
                waiting = len(items) < READ_BATCH and await committed_after(
                    session=session, after=last
                )
            for item in items:
                self.position = item.position
                for listener in tuple(self._listeners):
                    listener.offer(item)
            if len(items) < READ_BATCH:
                return waiting


# ---------------------------------------------------------------------------
# Shared executions
# ---------------------------------------------------------------------------


@dataclass
class FeedRoot:
    """Root value of a `caseEvents` execution started by this module, not by a client.

    The resolver starts after `resume_after` (as it does after an `after`
    cursor) and writes into `position` the event of every update it yields, so
    that a shared execution knows which event each of its results is about,
    and in `more_ready` whether the next event was already waiting then: a
    group holds that result's frames for the next one, to write them together.
    """

    resume_after: FeedPosition | None = None
    position: FeedPosition | None = None
    more_ready: bool = False


@dataclass(frozen=True)
class ShareKey:
    """What makes two subscriptions receive identical results."""

    query: str
    operation_name: str | None
    variables: bytes  # canonical JSON
    # The principal without who it is and when its token expires: exactly what
    # decides which cases and fields it may see. Whatever is added to Principal
    # later separates groups too, until it is stripped here on purpose.
    scope: Principal


@dataclass(frozen=True)
class _Shape:
    after_variable: str | None  # the variable given as `after`, if any
    after_default: bool  # that variable has a non-null default


# Documents up to this many characters have their shape remembered; a client
# sending huge ones pays for their parsing each time and fills no cache.
SHAPE_CACHE_MAX_CHARS = 8_000


def _shareable_shape(query: str, operation_name: str | None) -> _Shape | None:
    """A subscription whose only field is `caseEvents` without a literal `after`.

    Anything else (queries, mutations, other subscriptions, directives, a
    document that does not parse) runs alone, exactly as Strawberry runs it.
    """
    if len(query) > SHAPE_CACHE_MAX_CHARS:
        return _parse_shape(query, operation_name)
    return _remembered_shape(query, operation_name)


def _parse_shape(query: str, operation_name: str | None) -> _Shape | None:
    try:
        document = parse(query)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    operation = operations[0]
    selections = operation.selection_set.selections
    if (
        operation.operation is not OperationType.SUBSCRIPTION
        or operation.directives
        or len(selections) != 1
    ):
        return None
    selection = selections[0]
    if (
        not isinstance(selection, FieldNode)
        or selection.name.value != SHARED_FIELD
        or selection.directives
    ):
        return None
    after = next((a.value for a in selection.arguments or () if a.name.value == "after"), None)
    if after is None or isinstance(after, NullValueNode):
        return _Shape(after_variable=None, after_default=False)
    if not isinstance(after, VariableNode):
        return None
    name = after.name.value
    default = next(
        (
            v.default_value
            for v in operation.variable_definitions or ()
            if v.variable.name.value == name
        ),
        None,
    )
    return _Shape(
        after_variable=name,
        after_default=default is not None and not isinstance(default, NullValueNode),
    )


_remembered_shape = functools.lru_cache(maxsize=256)(_parse_shape)


def share_key(
    *, query: str, variables: object, operation_name: str | None, principal: Principal
) -> ShareKey | None:
    """The group a subscription may join, or None when it must run alone.

    A subscription resuming `after` a cursor runs alone: it replays its own
    past first, which no group could share.
    """
    shape = _shareable_shape(query, operation_name)
    if shape is None or not isinstance(variables, dict | None):
        return None
    variables = variables or {}
    if shape.after_variable is not None and (
        variables.get(shape.after_variable) is not None
        or (shape.after_variable not in variables and shape.after_default)
    ):
        return None
    try:
        canonical = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
    return ShareKey(
        query=query,
        operation_name=operation_name,
        variables=canonical,
        scope=replace(principal, subject="", expires_at=None),
    )


@dataclass(frozen=True)
class _End:
    """How a group's stream ended, for each member to tell its client."""

    type: str  # "complete" or "error"
    errors: list[Any] | None = None


# What ends a member's time in its group: the group ended (_End), the socket fell
# behind (resume alone after this position) or the socket is gone (None).
Outcome = _End | FeedPosition | None

# Starlette's WebSocketDisconnected: sending on a socket we closed (its token expired).
_SOCKET_GONE = (WebSocketDisconnect, WebSocketDisconnected, StarletteWebSocketDisconnected)

# JSON as the view encodes it: text or bytes, sent as text or binary frames
# (see Strawberry's ASGIWebSocketAdapter.send_json).
Encoded = str | bytes


class Batch:
    """Results of a group that were ready together, as whole websocket frames:
    built once per operation id, written to each socket at once."""

    __slots__ = ("_by_prefix", "items")

    def __init__(self, items: list[tuple[FeedPosition | None, Encoded]]) -> None:
        self.items = items  # (the event it is about, the encoded payload)
        self._by_prefix: dict[Encoded, bytes] = {}

    def frames(self, prefix: Encoded) -> bytes:
        frames = self._by_prefix.get(prefix)
        if frames is None:
            frames = self._by_prefix[prefix] = _frames(prefix, self.items)
        return frames


def _frames(prefix: Encoded, items: list[tuple[FeedPosition | None, Encoded]]) -> bytes:
    return b"".join(server_frame(_splice(prefix, payload)) for _, payload in items)


class Member:
    """One socket's subscription in a group.

    Frames go straight to the socket, without a task switch: a socket takes a
    frame at once unless its connection stopped draining. Only then do frames
    wait here, in order, until MEMBER_BACKLOG of them make it leave the group.
    Where the server offers it (api/websocket_frames.py), a batch's frames are
    written as they are, in one write, without ASGI.
    """

    __slots__ = (
        "_after",
        "_backlog",
        "_behind",
        "_end",
        "_prefix",
        "_sending",
        "_socket",
        "_write_frames",
        "last",
        "outcome",
    )

    def __init__(self, *, socket: WebSocket, prefix: Encoded, after: FeedPosition) -> None:
        self._socket = socket
        self._write_frames: FrameWriter | None = (socket.scope.get("extensions") or {}).get(
            FRAME_WRITER
        )
        self._prefix = prefix  # the frame up to the payload: its own operation id
        # Events up to `after` were committed before it subscribed; None once
        # the group's stream has passed it.
        self._after: FeedPosition | None = after
        self.last = after  # the last event the socket took
        self._backlog: deque[tuple[FeedPosition | None, Encoded]] = deque()
        self._sending: asyncio.Task[None] | None = None
        self._behind = False
        self._end: _End | None = None
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
        if self._sending is None and self._write_frames is not None:
            if items is batch.items:
                frames = batch.frames(self._prefix)
            else:
                frames = _frames(self._prefix, items)
            if self._write_frames(frames):
                for position, _ in items:
                    self._took(position)
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
            unfinished = _run_eagerly(self._send(frame))
        except _SOCKET_GONE:
            self._resolve(None)
            return False
        except Exception:  # one socket's failure ends its subscription, not the group
            logger.exception("sending to a subscriber failed")
            self._resolve(_End("complete"))
            return False
        if unfinished is None:
            self._took(position)
        else:
            self._sending = asyncio.create_task(self._drain(unfinished, position))
        return True

    def finish(self, end: _End) -> None:
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
        except _SOCKET_GONE:
            self._resolve(None)
            return
        except Exception:
            logger.exception("sending to a subscriber failed")
            self._resolve(_End("complete"))
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


def _next_prefix(encoded_id: Encoded) -> Encoded:
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


def _run_eagerly(coroutine: Coroutine[Any, None, None]) -> Awaitable[None] | None:
    """Runs a coroutine up to its first suspension, as Python 3.12's eager tasks
    do: None when it finished there, else an awaitable that finishes it.

    Sending a frame normally never suspends; a task per socket and event only
    to call it would cost more than the send itself.
    """
    try:
        waiting_on = coroutine.send(None)
    except StopIteration:
        return None
    return _resume(coroutine, waiting_on)


@types.coroutine
def _resume(coroutine: Coroutine[Any, None, None], waiting_on: Any) -> Generator[Any, Any, None]:
    # What a Task does: hand the future up, pass its outcome back in.
    while True:
        try:
            result = yield waiting_on
        except BaseException as error:
            try:
                waiting_on = coroutine.throw(error)
            except StopIteration:
                return
        else:
            try:
                waiting_on = coroutine.send(result)
            except StopIteration:
                return


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
        end = _End("complete")
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
                        end = _End("error", [e.formatted for e in errors])
                        return
                    first = False
                    items: list[tuple[FeedPosition | None, Encoded]] = []
                    for position, result in results:
                        if not isinstance(result, ExecutionResult):
                            error = GraphQLError(
                                "Incremental delivery is not supported over graphql-transport-ws"
                            )
                            end = _End("error", [error.formatted])
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


class SharedSubscriptionsHandler(BaseGraphQLTransportWSHandler["Context", None]):
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
            if isinstance(outcome, _End):
                await operation.send_operation_message(_end_message(operation.id, outcome))
            elif isinstance(outcome, FeedPosition):
                await self._run_alone(operation, FeedRoot(resume_after=outcome))
        except _SOCKET_GONE:
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
        shared: SharedSubscriptions = socket.app.state.live.shared
        group, member = shared.join(
            key,
            socket=socket,
            # The frame Strawberry would send, spliced rather than serialized again.
            prefix=_next_prefix(self.view.encode_json(operation.id)),
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
        from schema.context import Context  # schema imports this module

        # The group's own context: it outlives the socket that founded it and
        # carries no credentials, only the principal every member shares.
        founder = self.context
        context = Context(
            request=founder.request,
            response=None,
            settings=founder.settings,
            session_factory=founder.session_factory,
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


def _end_message(operation_id: str, end: _End) -> Any:
    if end.type == "error":
        return {"id": operation_id, "type": "error", "payload": end.errors or []}
    return {"id": operation_id, "type": "complete"}
