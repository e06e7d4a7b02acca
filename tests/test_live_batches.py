"""How a shared subscription groups its results into one write per socket (live/groups.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from live.groups import _ready_together
from live.sharing import FeedRoot


async def test_results_of_events_waiting_together_come_in_one_list() -> None:
    root = FeedRoot()
    second_commit = asyncio.Event()
    never = asyncio.Event()
    closed: list[str] = []

    async def results() -> AsyncGenerator[str, None]:
        try:
            for position, more_ready in ((1, True), (2, False)):
                root.position, root.more_ready = position, more_ready  # type: ignore[assignment]
                yield f"result {position}"
            await second_commit.wait()
            # A wrong guess: more announced, nothing follows.
            root.position, root.more_ready = 3, True  # type: ignore[assignment]
            yield "result 3"
            await never.wait()
        finally:
            closed.append("source")

    source = results()
    # Closing the batches first stops the step waiting in the source, so that
    # the source can be closed after them.
    async with (
        contextlib.aclosing(source),
        contextlib.aclosing(_ready_together(source, root)) as batches,
    ):
        first: Any = await anext(batches)
        assert first == [(1, "result 1"), (2, "result 2")]
        second_commit.set()
        # Held only briefly for the result that never comes.
        third: Any = await asyncio.wait_for(anext(batches), timeout=2)
        assert third == [(3, "result 3")]
    assert closed == ["source"]


async def test_a_failing_source_still_delivers_what_came_before() -> None:
    root = FeedRoot()

    async def results() -> AsyncGenerator[str, None]:
        root.position, root.more_ready = 1, True  # type: ignore[assignment]
        yield "result 1"
        raise RuntimeError("the execution failed")

    source = results()
    batches = _ready_together(source, root)
    first: Any = await anext(batches)
    assert first == [(1, "result 1")]
    with pytest.raises(RuntimeError, match="the execution failed"):
        await anext(batches)
