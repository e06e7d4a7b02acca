"""One reader of the event log per server process, fanning events out to the
listeners of that process.

Notifications (see live/pubsub.py) only wake the reader; it then reads the log
from its last position. Each listener has a bounded queue: one that falls
behind is marked and catches up from the database on its own, so a slow or
vanished client never blocks the reader, other clients or the mutations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import (
    Callable,
)
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from domain.event_feed import (
    START,
    FeedFilter,
    FeedItem,
    FeedPosition,
    committed_after,
    head,
    read_after,
)
from live.pubsub import PubSub

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

    async def start(self) -> None:
        async with self._session_factory() as session:
            self.position = await head(session=session)
        self._task = asyncio.create_task(self._run(), name="live-feed")
        await self._ready.wait()

    async def stop(self) -> None:
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
