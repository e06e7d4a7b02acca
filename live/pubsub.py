"""Publish/subscribe behind a small interface, chosen by URL (as encode/broadcaster).

- `memory://`: one process only; for tests and single-process development.
- `postgres://`: PostgreSQL LISTEN/NOTIFY on the application database, so that a
  message published by any server process reaches subscribers in every process.

Messages are wake-up calls, not data: the event log in the database is the source
of truth, so a lost or duplicated message can delay a reader but never make it
skip or repeat an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import asyncpg
from sqlalchemy import make_url

logger = logging.getLogger("patriot.pubsub")

# Subscribers that fall this far behind lose messages, never block the publisher.
QUEUE_SIZE = 256
RECONNECT_DELAY_S = 1.0


class PubSub(Protocol):
    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def publish(self, channel: str, message: str = "") -> None: ...

    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[Subscription]: ...


class Subscription:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=QUEUE_SIZE)

    def deliver(self, message: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(message)

    async def next(self) -> str:
        return await self._queue.get()

    def discard_pending(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    async def __aiter__(self) -> AsyncIterator[str]:
        while True:
            yield await self._queue.get()


class _Fanout:
    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)

    def deliver(self, channel: str, message: str) -> None:
        for subscription in tuple(self._subscriptions.get(channel, ())):
            subscription.deliver(message)

    def deliver_all(self, message: str) -> None:
        for channel in tuple(self._subscriptions):
            self.deliver(channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = Subscription()
        self._subscriptions[channel].add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions[channel].discard(subscription)

    def channels(self) -> list[str]:
        return [c for c, subs in self._subscriptions.items() if subs]


class MemoryPubSub:
    def __init__(self) -> None:
        self._fanout = _Fanout()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def publish(self, channel: str, message: str = "") -> None:
        self._fanout.deliver(channel, message)

    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self._fanout.subscribe(channel)


class PostgresPubSub:
    """One dedicated connection per process LISTENs; publishing uses NOTIFY."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._fanout = _Fanout()
        self._listener: asyncpg.Connection | None = None
        self._publisher: asyncpg.Connection | None = None
        self._publish_lock = asyncio.Lock()
        self._queued: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._listening: set[str] = set()
        self._channel_lock = asyncio.Lock()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._lost = asyncio.Event()

    async def connect(self) -> None:
        await self._open()
        self._supervisor = asyncio.create_task(self._supervise(), name="pubsub-supervisor")

    async def disconnect(self) -> None:
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for conn in (self._listener, self._publisher):
            if conn is not None and not conn.is_closed():
                await conn.close()

    async def _open(self) -> None:
        self._listener = await asyncpg.connect(self._dsn)
        self._listener.add_termination_listener(lambda _conn: self._lost.set())
        self._listening = set()
        for channel in self._fanout.channels():
            await self._listen(channel)

    async def _supervise(self) -> None:
        while not self._closing:
            await self._lost.wait()
            self._lost.clear()
            logger.warning("pub/sub connection lost; reconnecting")
            while not self._closing:
                try:
                    await self._open()
                    break
                except (OSError, asyncpg.PostgresError) as error:
                    logger.warning("pub/sub reconnect failed: %s", type(error).__name__)
                    await asyncio.sleep(RECONNECT_DELAY_S)
            # Whatever was published while we were away: wake every reader so it
            # re-reads the log.
            self._fanout.deliver_all("")

    def _on_notification(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        self._fanout.deliver(channel, payload)

    async def _listen(self, channel: str) -> None:
        async with self._channel_lock:
            if channel in self._listening or self._listener is None:
                return
            await self._listener.add_listener(channel, self._on_notification)
            self._listening.add(channel)

    async def publish(self, channel: str, message: str = "") -> None:
        """Returns once a NOTIFY sent after this call began has been sent.

        A NOTIFY still waiting for the publishing connection serves every
        publisher that comes before it is sent: each has committed what it
        announces already. Under load (a submission each few milliseconds,
        every one announcing its events) most publishers so join the next
        NOTIFY instead of each sending one and each waking every process."""
        key = (channel, message)
        queued = self._queued.get(key)
        if queued is None:
            queued = asyncio.ensure_future(self._notify(channel, message))
            queued.add_done_callback(self._forget)
            self._queued[key] = queued
        await asyncio.shield(queued)

    def _forget(self, task: asyncio.Future[None]) -> None:
        # A NOTIFY that failed before it reached the connection must not stay queued.
        for key, queued in tuple(self._queued.items()):
            if queued is task:
                del self._queued[key]
        # Retrieved here too, in case every publisher waiting on it was cancelled.
        if not task.cancelled():
            task.exception()

    async def _notify(self, channel: str, message: str) -> None:
        async with self._publish_lock:
            # From here on this NOTIFY may be on its way: later publishers queue the next.
            self._queued.pop((channel, message), None)
            if self._publisher is None or self._publisher.is_closed():
                self._publisher = await asyncpg.connect(self._dsn)
            await self._publisher.execute("SELECT pg_notify($1, $2)", channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        async with self._fanout.subscribe(channel) as subscription:
            await self._listen(channel)
            yield subscription


def create_pubsub(url: str, *, database_url: str) -> PubSub:
    if url.startswith("memory://"):
        return MemoryPubSub()
    if url.startswith("postgres://"):
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        return PostgresPubSub(dsn)
    raise ValueError(f"unknown pub/sub backend {url!r}: use memory:// or postgres://")
