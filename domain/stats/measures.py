"""The measures of a group of cases: counts, and working hours to resolve with their
percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Float, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Holiday

PERCENTILES = (0.5, 0.9)
# float8send's form: what the rollup stores and the live statements return.
_HOURS_DTYPE = np.dtype(">f8")


@dataclass
class Tally:
    """One group's measures, added up from the rollup and the live statements."""

    received: int = 0
    open: int = 0
    overdue: int = 0
    resolved: int = 0
    on_time: int = 0
    hours: list[bytes] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.received += other.received
        self.open += other.open
        self.overdue += other.overdue
        self.resolved += other.resolved
        self.on_time += other.on_time
        self.hours.extend(other.hours)


def percentile_cont(values: np.ndarray, fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the two values
    around position fraction * (n - 1) of the sorted values."""
    position = fraction * (len(values) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    around = np.partition(values, [lower, upper])
    first, second = float(around[lower]), float(around[upper])
    return first + (second - first) * (position - lower)


def hours_percentiles(chunks: Sequence[bytes]) -> tuple[float, float] | None:
    values = np.frombuffer(b"".join(chunks), dtype=_HOURS_DTYPE)
    if not len(values):
        return None
    values = values.astype(np.float64)
    median, p90 = (percentile_cont(values, p) for p in PERCENTILES)
    return median, p90


def working_hours_sql(start: Any, end: Any) -> ColumnElement[float]:
    """Working hours from `start` to `end` over the holidays stored now: the database
    function the trigger uses (`working_hours_between` in SQL)."""
    return func.working_hours_between(start, end, func.weekday_holiday_numbers(), type_=Float)


async def load_holidays(*, session: AsyncSession) -> list[date]:
    return list((await session.scalars(select(Holiday.day))).all())
