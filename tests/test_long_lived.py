"""When the process moves settled websocket connections out of full garbage
collections (api/long_lived.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from api.long_lived import ConnectionFreezer, Step


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_a_settled_burst_of_connections_is_frozen_and_refrozen_once_a_quarter_closed() -> None:
    opened = closed = 0
    freezer = ConnectionFreezer(socket_counts=lambda: (opened, closed), min_burst=200, settle_s=2)
    gc.unfreeze()

    opened = 150
    assert freezer.step(now=10.0) is None  # too few to be a burst
    opened = 1_000
    assert freezer.step(now=11.0) is None  # still arriving
    assert freezer.step(now=12.5) is None
    assert freezer.step(now=13.0) is Step.FREEZE  # none for 2 s
    assert gc.get_freeze_count() > 0
    assert freezer.step(now=20.0) is None  # frozen once, not again

    closed = 249  # a quarter of 1,000 is 250
    assert freezer.step(now=21.0) is None
    closed = 250
    assert freezer.step(now=22.0) is Step.REFREEZE
    assert gc.get_freeze_count() > 0

    # The next quarter counts from the 750 left open then.
    closed = 250 + 199
    assert freezer.step(now=23.0) is None
    closed = 250 + 200
    assert freezer.step(now=24.0) is Step.REFREEZE


def test_a_steady_trickle_of_connections_is_never_frozen() -> None:
    opened = 0
    freezer = ConnectionFreezer(socket_counts=lambda: (opened, 0), min_burst=200, settle_s=2)
    gc.unfreeze()
    for second in range(600):
        opened += 1  # one a second: never settled
        assert freezer.step(now=float(second)) is None
    assert gc.get_freeze_count() == 0
