"""Reading city-wide statistics from the rollup, and finding what it does not hold.

City-wide statistics without a filter read most of a long range from the rollup
(`domain.stats_rollup`): settled cases (CLOSED, REJECTED, DUPLICATE, statuses nothing
leads out of) counted per local day when the background refresh saw them settle. What
it does not hold is read from the cases in the same request: the partial days at
either end of the range, the cases not settled yet, and those settled since the last
refresh (by transaction id against the refresh's snapshot). The answer is the same as
reading every case; the tests compare both ways. Percentiles are exact: the rollup
keeps every working-hours value, and they are computed as PostgreSQL's
`percentile_cont` does, over all the values of a group.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, LargeBinary, String, and_, cast, func, literal, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.stats.grouping import TIME_GROUPS, StatsGroup, day_number, week_of
from domain.stats.measures import Tally
from domain.working_days import JAKARTA
from models import Case, CaseStatsDay, CaseStatsRollup, CaseStatus
from models.cases import TransactionId
from models.stats import Snapshot

# Groupings whose keys are ids: the rollup keeps every key as text.
_ID_GROUPS = frozenset({StatsGroup.DINAS, StatsGroup.CATEGORY})


@dataclass(frozen=True)
class RollupRead:
    """What a statement reads from the rollup: the days [first_day, end_day) of the
    cases settled in `snapshot`."""

    snapshot: str
    first_day: date
    end_day: date


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=JAKARTA)


def whole_days(start: datetime, end: datetime) -> tuple[date, date] | None:
    """The local days lying wholly inside [start, end), as [first, end_day)."""
    local_start = start.astimezone(JAKARTA)
    first = local_start.date()
    if local_start > _day_start(first):
        first += timedelta(days=1)
    end_day = end.astimezone(JAKARTA).date()
    return (first, end_day) if first < end_day else None


def live_sources(
    moment: Any, *, start: datetime, end: datetime, rollup: RollupRead | None, resolutions: bool
) -> list[ColumnElement[bool]]:
    """Conditions whose cases, together, are those of [start, end) the rollup lacks."""
    if rollup is None:
        return [and_(moment >= start, moment < end)]
    first, last = _day_start(rollup.first_day), _day_start(rollup.end_day)
    snapshot = cast(literal(rollup.snapshot, String), Snapshot())
    sources = []
    if start < first:
        sources.append(and_(moment >= start, moment < first))
    if last < end:
        sources.append(and_(moment >= last, moment < end))
    unsettled = (
        Case.status == literal(CaseStatus.RESOLVED.value, String, literal_execute=True)
        if resolutions
        else Case.settled_txid.is_(None)
    )
    settled_since = and_(
        Case.settled_txid >= func.pg_snapshot_xmin(snapshot, type_=TransactionId()),
        not_(func.pg_visible_in_snapshot(Case.settled_txid, snapshot)),
    )
    sources.append(and_(moment >= first, moment < last, unsettled))
    sources.append(and_(moment >= first, moment < last, settled_since))
    return sources


def _rollup_key(group_by: StatsGroup) -> Any:
    if group_by in TIME_GROUPS:
        return CaseStatsDay.day
    return CaseStatsDay.key


def _from_rollup_key(group_by: StatsGroup, key: Any) -> Any:
    if group_by is StatsGroup.DAY:
        return day_number(key)
    if group_by is StatsGroup.WEEK:
        return week_of(day_number(key))
    if key == "":
        return None
    return int(key) if group_by in _ID_GROUPS else key


async def read_rollup(
    *,
    session: AsyncSession,
    group_by: StatsGroup,
    days: tuple[date, date],
    with_durations: bool,
    tallies: dict[Any, Tally],
) -> RollupRead | None:
    """Adds the rollup's days to `tallies`; None (and nothing added) when there is no
    rollup or it was counted over other holidays than today's."""
    dimension = StatsGroup.DAY if group_by in TIME_GROUPS else group_by
    key = _rollup_key(group_by)
    snapshot = cast(CaseStatsRollup.snapshot, String)
    hours = (
        func.string_agg(CaseStatsDay.hours, literal(b"", LargeBinary))
        if with_durations
        else literal(None, LargeBinary)
    )
    # One statement: the days read and the snapshot they stand for are the same commit
    # of the refresh.
    rows = (
        await session.execute(
            select(
                snapshot,
                CaseStatsRollup.weekday_holidays,
                key,
                func.sum(CaseStatsDay.received),
                func.sum(CaseStatsDay.resolved),
                func.sum(CaseStatsDay.resolved_on_time),
                hours,
            )
            .select_from(CaseStatsRollup)
            .outerjoin(
                CaseStatsDay,
                and_(
                    CaseStatsDay.dimension == dimension.value,
                    CaseStatsDay.day >= days[0],
                    CaseStatsDay.day < days[1],
                ),
            )
            .group_by(snapshot, CaseStatsRollup.weekday_holidays, key)
        )
    ).all()
    if not rows:
        return None
    holidays_now = await session.scalar(select(func.weekday_holiday_numbers()))
    if list(rows[0][1]) != list(holidays_now or []):
        return None
    for _snapshot, _current, raw, received, resolved, on_time, chunk in rows:
        if received is None:
            continue  # the rollup holds nothing for these days
        tally = tallies.setdefault(_from_rollup_key(group_by, raw), Tally())
        tally.add(
            Tally(
                received=int(received),
                resolved=int(resolved),
                on_time=int(on_time),
                hours=[chunk] if chunk else [],
            )
        )
    return RollupRead(snapshot=rows[0][0], first_day=days[0], end_day=days[1])
