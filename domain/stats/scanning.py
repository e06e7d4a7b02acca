"""What statements that scan many cases need to run fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import OPEN_STATUSES

SORTED_OPEN_STATUSES = tuple(sorted(OPEN_STATUSES))


async def tune_for_scans(*, session: AsyncSession) -> None:
    """For this transaction only: statistics scan hundreds of thousands of index entries,
    for which JIT compilation costs more than it saves (up to a second), and their sorts
    and hash tables need more than the default 4 MB not to spill to disk. And every
    statement is planned for its own parameters: from the sixth run of a prepared
    statement PostgreSQL may switch to a generic plan, which cannot tell a day of open
    cases from a year of them (measured: 60 ms became 1 s)."""
    await session.execute(
        select(
            func.set_config("jit", "off", True),
            func.set_config("work_mem", "64MB", True),
            func.set_config("plan_cache_mode", "force_custom_plan", True),
        )
    )


def inline_in(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    # Written into the SQL, not bound: a partial index is used only when the planner
    # sees its predicate in the query, which it cannot prove from a generic plan's
    # parameters.
    condition: ColumnElement[bool] = column.in_(
        [literal(v, String, literal_execute=True) for v in values]
    )
    return condition
