"""Running a coroutine eagerly, as Python 3.12's eager tasks do, on 3.11.

A group sends one frame to thousands of sockets per event; sending normally
finishes without suspending, and a task per socket and event only to call it
would cost more than the send itself. This uses nothing but the coroutine
protocol of the language (`send`, `throw`), as `asyncio.Task` itself does.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any


def run_eagerly(coroutine: Coroutine[Any, None, None]) -> Awaitable[None] | None:
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
