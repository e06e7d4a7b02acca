"""Keeps long-lived websocket connections out of full garbage collections.

CPython's full collection walks every object it tracks. Each subscribed socket
is a few hundred of them (its protocol, tasks, coroutines, handler and
context), so 10,000 POC screens are about three million, and a full collection
then stops the process for about a second: every event committed meanwhile
reaches the screens a second late (bench/README.md, "Live fan-out").

Once a burst of connections has settled, everything alive is moved to the
permanent generation (`gc.freeze`), which collections skip. Frozen objects are
still freed by reference counting when their socket closes; only their
reference cycles wait, until the sockets closed since the freeze reach a
quarter of those frozen: then one full collection and a fresh freeze.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

logger = logging.getLogger("patriot.long_lived")

CHECK_INTERVAL_S = 1.0


class Step(Enum):
    FREEZE = "freeze"  # a burst of connections settled
    REFREEZE = "refreeze"  # enough of the frozen connections closed


@dataclass
class ConnectionFreezer:
    """Decides when to freeze, from the process's count of sockets opened and closed."""

    socket_counts: Callable[[], tuple[int, int]]  # (opened, closed) since start
    # A burst is at least this many new sockets, then none for settle_s.
    min_burst: int = 200
    settle_s: float = 2.0

    def __post_init__(self) -> None:
        self._opened_at_freeze = 0
        self._closed_at_freeze = 0
        self._open_at_freeze = 0
        self._seen_opened = 0
        self._last_opened_at = 0.0

    def step(self, now: float) -> Step | None:
        """The step due now, taken; None when there is nothing to do."""
        opened, closed = self.socket_counts()
        if opened != self._seen_opened:
            self._seen_opened, self._last_opened_at = opened, now
        closed_since = closed - self._closed_at_freeze
        if self._open_at_freeze and closed_since >= max(self.min_burst, self._open_at_freeze // 4):
            gc.unfreeze()
            gc.collect()  # the one pause, paid back by the cycles it frees
            step = Step.REFREEZE
        elif (
            opened - self._opened_at_freeze >= self.min_burst
            and now - self._last_opened_at >= self.settle_s
        ):
            gc.collect(1)  # young garbage is not frozen with the rest
            step = Step.FREEZE
        else:
            return None
        gc.freeze()
        self._opened_at_freeze, self._closed_at_freeze = opened, closed
        self._open_at_freeze = opened - closed
        logger.info(
            "%s: %d sockets open, %d objects out of full collections",
            step.value,
            self._open_at_freeze,
            gc.get_freeze_count(),
        )
        return step

    async def run(self, interval_s: float = CHECK_INTERVAL_S) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.step(time.monotonic())
