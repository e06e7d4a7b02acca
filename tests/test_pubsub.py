"""PostgreSQL LISTEN/NOTIFY behind the pub/sub interface, on the test database."""

from __future__ import annotations

import asyncio

from core.settings import Settings
from live.pubsub import PostgresPubSub, create_pubsub

CHANNEL = "test_pubsub_wakeups"


async def _received(pubsub: PostgresPubSub, publish: object) -> int:
    """How many notifications a listener gets while `publish()` runs."""
    async with pubsub.subscribe(CHANNEL) as wakeups:
        await publish()  # type: ignore[operator]
        count = 0
        while True:
            try:
                await asyncio.wait_for(wakeups.next(), timeout=0.5)
            except TimeoutError:
                return count
            count += 1


async def test_publishers_waiting_together_share_one_notify(settings: Settings) -> None:
    pubsub = create_pubsub("postgres://", database_url=settings.sqlalchemy_url)
    assert isinstance(pubsub, PostgresPubSub)
    await pubsub.connect()
    try:

        async def forty_at_once() -> None:
            await asyncio.gather(*(pubsub.publish(CHANNEL) for _ in range(40)))

        together = await _received(pubsub, forty_at_once)
        assert 1 <= together < 40

        async def three_in_turn() -> None:
            for _ in range(3):
                await pubsub.publish(CHANNEL)

        # Each begins after the previous NOTIFY was sent: each sends its own.
        assert await _received(pubsub, three_in_turn) == 3
    finally:
        await pubsub.disconnect()


async def test_a_failed_notify_is_not_left_queued(settings: Settings) -> None:
    pubsub = create_pubsub("postgres://", database_url=settings.sqlalchemy_url)
    assert isinstance(pubsub, PostgresPubSub)
    await pubsub.connect()
    dsn = pubsub._dsn
    try:
        # The publishing connection cannot be opened: the error reaches every
        # publisher that joined the NOTIFY ...
        pubsub._dsn = "postgresql://postgres@127.0.0.1:1/nowhere"
        results = await asyncio.gather(
            *(pubsub.publish(CHANNEL) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(result, OSError) for result in results), results
        # ... and the next publisher sends one of its own.
        pubsub._dsn = dsn

        async def once() -> None:
            await pubsub.publish(CHANNEL)

        assert await _received(pubsub, once) == 1
    finally:
        pubsub._dsn = dsn
        await pubsub.disconnect()
