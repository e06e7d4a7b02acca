"""Statistics for the mayor and the POC wall: flows over a time range and the backlog now.

Definitions (the same for every grouping, so that groups always add up to the total):

- received: cases created in [start, end);
- open, overdue: of those received cases, the ones open now, and open now and past
  their due time;
- resolved: cases whose latest resolution falls in [start, end) and still stands
  (status RESOLVED or CLOSED). A reopened case no longer counts as resolved; it counts
  again, at its new time, once it is resolved again;
- resolved on time: of those, the ones resolved no later than their due time;
- hours to resolve: working hours from creation to resolution, with the semantics of
  `domain.working_days.working_hours_between` (each working day of the Jakarta calendar
  counts for its 24 hours; weekends and holidays count for nothing). A database
  trigger keeps them on the case (`working_hours_to_resolve`) whenever its resolution
  time changes, and rewrites them for the cases concerned when a holiday changes.

Time groupings (DAY, WEEK) put a received case in the bucket of its creation and a
resolved one in the bucket of its resolution, in Jakarta time; weeks start on Monday.

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

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Float,
    LargeBinary,
    Select,
    String,
    and_,
    cast,
    func,
    literal,
    not_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import True_

from core.errors import FieldProblem, ValidationFailed
from domain.case_queries import CaseFilter, filtered
from domain.working_days import JAKARTA
from geo import boundaries, heatmap
from geo.case_filters import BBox
from geo.lookup import active_set_id
from models import (
    OPEN_STATUSES,
    BoundarySet,
    Case,
    CaseStatsDay,
    CaseStatsRollup,
    CaseStatus,
    Category,
    Dinas,
    Holiday,
    Kecamatan,
    Kelurahan,
    Partner,
)
from models.cases import TransactionId
from models.stats import Snapshot

MAX_RANGE = timedelta(days=5 * 366)
MAX_OVERDUE_LIST = 100
ALL_FLOWS = frozenset({"received", "resolved"})
RESOLVED_STATUSES = (CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value)
PERCENTILES = (0.5, 0.9)
_OPEN = tuple(sorted(OPEN_STATUSES))
_EPOCH_DAY = date(1970, 1, 1)
_JAKARTA_OFFSET_S = 7 * 3600
_SECONDS_PER_DAY = 86_400
# float8send's form: what the rollup stores and the live statements return.
_HOURS_DTYPE = np.dtype(">f8")


class StatsGroup(StrEnum):
    KELURAHAN = "KELURAHAN"
    KECAMATAN = "KECAMATAN"
    DINAS = "DINAS"
    CATEGORY = "CATEGORY"
    STATUS = "STATUS"
    SOURCE = "SOURCE"
    DAY = "DAY"
    WEEK = "WEEK"


TIME_GROUPS = frozenset({StatsGroup.DAY, StatsGroup.WEEK})
# Groupings whose keys are ids: the rollup keeps every key as text.
_ID_GROUPS = frozenset({StatsGroup.DINAS, StatsGroup.CATEGORY})


class ChoroplethMetric(StrEnum):
    OPEN = "OPEN"
    OVERDUE = "OVERDUE"
    RECEIVED = "RECEIVED"
    RESOLVED_ON_TIME_SHARE = "RESOLVED_ON_TIME_SHARE"


@dataclass(frozen=True)
class GroupStats:
    key: str | None  # null: cases without that attribute (a city-wide report has no kelurahan)
    label: str | None
    bucket_start: datetime | None  # DAY and WEEK only
    received: int
    open: int
    overdue: int
    resolved: int
    resolved_on_time: int
    median_hours_to_resolve: float | None
    p90_hours_to_resolve: float | None

    @property
    def on_time_share(self) -> float | None:
        return self.resolved_on_time / self.resolved if self.resolved else None


@dataclass(frozen=True)
class CaseStats:
    group_by: StatsGroup
    start: datetime
    end: datetime
    total: GroupStats
    groups: list[GroupStats]


@dataclass(frozen=True)
class BacklogGroup:
    key: str | None
    label: str | None
    open: int
    overdue: int
    oldest_due_at: datetime | None


@dataclass
class _Tally:
    """One group's measures, added up from the rollup and the live statements."""

    received: int = 0
    open: int = 0
    overdue: int = 0
    resolved: int = 0
    on_time: int = 0
    hours: list[bytes] = field(default_factory=list)

    def add(self, other: _Tally) -> None:
        self.received += other.received
        self.open += other.open
        self.overdue += other.overdue
        self.resolved += other.resolved
        self.on_time += other.on_time
        self.hours.extend(other.hours)


# -- days and working hours -----------------------------------------------------------


def _local_seconds(moment: Any) -> ColumnElement[Any]:
    # Seconds since 1970-01-01 00:00 WIB. Jakarta has kept UTC+7, without daylight
    # saving, since 1964; fixed arithmetic is ten times cheaper than a named time zone.
    return func.date_part("epoch", moment) + float(_JAKARTA_OFFSET_S)


def _local_day(moment: Any) -> ColumnElement[Any]:
    return func.floor(_local_seconds(moment) / float(_SECONDS_PER_DAY))


def _weekday(day: ColumnElement[Any]) -> ColumnElement[Any]:
    """0 for Monday … 6 for Sunday (1970-01-01 was a Thursday)."""
    shifted = day + 3.0
    return shifted - func.floor(shifted / 7.0) * 7.0


def _day_number(day: date) -> int:
    return (day - _EPOCH_DAY).days


def _week_of(day_number: int) -> int:
    return day_number - (day_number + 3) % 7


def working_hours_sql(start: Any, end: Any) -> ColumnElement[float]:
    """Working hours from `start` to `end` over the holidays stored now: the database
    function the trigger uses (`working_hours_between` in SQL)."""
    return func.working_hours_between(start, end, func.weekday_holiday_numbers(), type_=Float)


def percentile_cont(values: np.ndarray, fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the two values
    around position fraction * (n - 1) of the sorted values."""
    position = fraction * (len(values) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    around = np.partition(values, [lower, upper])
    first, second = float(around[lower]), float(around[upper])
    return first + (second - first) * (position - lower)


def _percentiles(chunks: Sequence[bytes]) -> tuple[float, float] | None:
    values = np.frombuffer(b"".join(chunks), dtype=_HOURS_DTYPE)
    if not len(values):
        return None
    values = values.astype(np.float64)
    median, p90 = (percentile_cont(values, p) for p in PERCENTILES)
    return median, p90


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


async def load_holidays(*, session: AsyncSession) -> list[date]:
    return list((await session.scalars(select(Holiday.day))).all())


# -- validation ---------------------------------------------------------------------


def check_range(start: datetime, end: datetime) -> None:
    problems: list[FieldProblem] = []
    for name, moment in (("from", start), ("to", end)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            problems.append(FieldProblem(name, "must include a time zone offset"))
    if problems:
        raise ValidationFailed(problems)
    if end <= start:
        raise ValidationFailed([FieldProblem("to", "must be later than `from`")])
    if end - start > MAX_RANGE:
        raise ValidationFailed([FieldProblem("to", "the range must not exceed 5 years")])


# -- case statistics ----------------------------------------------------------------


def _group_key(group_by: StatsGroup, moment: Any) -> Any:
    match group_by:
        case StatsGroup.KELURAHAN:
            return Case.kelurahan_code
        case StatsGroup.KECAMATAN:
            return Case.kecamatan_code
        case StatsGroup.DINAS:
            return Case.dinas_id
        case StatsGroup.CATEGORY:
            return Case.category_id
        case StatsGroup.STATUS:
            return Case.status
        case StatsGroup.SOURCE:
            return Case.source
        case StatsGroup.DAY:
            return _local_day(moment)
        case StatsGroup.WEEK:
            day = _local_day(moment)
            return day - _weekday(day)


def _inline_in(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    # Written into the SQL, not bound: a partial index is used only when the planner
    # sees its predicate in the query, which it cannot prove from a generic plan's
    # parameters.
    condition: ColumnElement[bool] = column.in_(
        [literal(v, String, literal_execute=True) for v in values]
    )
    return condition


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


@dataclass(frozen=True)
class _Rollup:
    """What a statement reads from the rollup: the days [first_day, end_day) of the
    cases settled in `snapshot`."""

    snapshot: str
    first_day: date
    end_day: date


def _live_sources(
    moment: Any, *, start: datetime, end: datetime, rollup: _Rollup | None, resolutions: bool
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


def _received_statement(
    *,
    group_by: StatsGroup,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    sources: Sequence[ColumnElement[bool]],
    now: datetime,
) -> Select[Any]:
    rows = union_all(
        *(
            filtered(
                select(
                    _group_key(group_by, Case.created_at).label("key"),
                    Case.status.label("status"),
                    Case.due_at.label("due_at"),
                ).where(source, scope),
                case_filter,
            )
            for source in sources
        )
    ).subquery("received")
    is_open = _inline_in(rows.c.status, _OPEN)
    return select(
        rows.c.key,
        func.count(),
        func.count().filter(is_open),
        func.count().filter(and_(is_open, rows.c.due_at < now)),
    ).group_by(rows.c.key)


def _resolved_statement(
    *,
    group_by: StatsGroup,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    sources: Sequence[ColumnElement[bool]],
    with_durations: bool,
) -> Select[Any]:
    rows = union_all(
        *(
            filtered(
                select(
                    _group_key(group_by, Case.resolved_at).label("key"),
                    (Case.resolved_at <= Case.due_at).label("on_time"),
                    Case.working_hours_to_resolve.label("hours"),
                ).where(_inline_in(Case.status, RESOLVED_STATUSES), source, scope),
                case_filter,
            )
            for source in sources
        )
    ).subquery("resolutions")
    hours = (
        func.string_agg(func.float8send(rows.c.hours), literal(b"", LargeBinary))
        if with_durations
        else literal(None, LargeBinary)
    )
    return select(rows.c.key, func.count(), func.count().filter(rows.c.on_time), hours).group_by(
        rows.c.key
    )


def _rollup_key(group_by: StatsGroup) -> Any:
    if group_by in TIME_GROUPS:
        return CaseStatsDay.day
    return CaseStatsDay.key


def _from_rollup_key(group_by: StatsGroup, key: Any) -> Any:
    if group_by is StatsGroup.DAY:
        return _day_number(key)
    if group_by is StatsGroup.WEEK:
        return _week_of(_day_number(key))
    if key == "":
        return None
    return int(key) if group_by in _ID_GROUPS else key


async def _read_rollup(
    *,
    session: AsyncSession,
    group_by: StatsGroup,
    days: tuple[date, date],
    with_durations: bool,
    tallies: dict[Any, _Tally],
) -> _Rollup | None:
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
        tally = tallies.setdefault(_from_rollup_key(group_by, raw), _Tally())
        tally.add(
            _Tally(
                received=int(received),
                resolved=int(resolved),
                on_time=int(on_time),
                hours=[chunk] if chunk else [],
            )
        )
    return _Rollup(snapshot=rows[0][0], first_day=days[0], end_day=days[1])


def _plain_group_key(group_by: StatsGroup, key: Any) -> Any:
    # Day numbers come back as floats from floor().
    return int(key) if group_by in TIME_GROUPS and key is not None else key


async def case_stats(
    *,
    session: AsyncSession,
    group_by: StatsGroup,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    start: datetime,
    end: datetime,
    now: datetime,
    with_durations: bool = True,
    flows: frozenset[str] = ALL_FLOWS,
) -> CaseStats:
    """`scope` limits the cases counted to those the caller may read
    (`domain.access.case_scope`). `flows` may leave out "received" (received, open,
    overdue stay 0) or "resolved" (the resolution measures stay 0) when a caller needs
    only one side."""
    check_range(start, end)
    await tune_for_scans(session=session)
    tallies: dict[Any, _Tally] = {}
    rollup: _Rollup | None = None
    days = whole_days(start, end)
    # The rollup counts every case, unfiltered: it serves the city-wide view.
    if days is not None and case_filter == CaseFilter() and isinstance(scope, True_):
        from_rollup: dict[Any, _Tally] = {}
        rollup = await _read_rollup(
            session=session,
            group_by=group_by,
            days=days,
            with_durations=with_durations and "resolved" in flows,
            tallies=from_rollup,
        )
        for key, tally in from_rollup.items():
            if "received" not in flows:
                tally.received = 0
            if "resolved" not in flows:
                tally.resolved, tally.on_time, tally.hours = 0, 0, []
            tallies.setdefault(key, _Tally()).add(tally)
    if "received" in flows:
        statement = _received_statement(
            group_by=group_by,
            case_filter=case_filter,
            scope=scope,
            sources=_live_sources(
                Case.created_at, start=start, end=end, rollup=rollup, resolutions=False
            ),
            now=now,
        )
        for key, received, open_, overdue in (await session.execute(statement)).all():
            tally = tallies.setdefault(_plain_group_key(group_by, key), _Tally())
            tally.add(_Tally(received=int(received), open=int(open_), overdue=int(overdue)))
    if "resolved" in flows:
        statement = _resolved_statement(
            group_by=group_by,
            case_filter=case_filter,
            scope=scope,
            sources=_live_sources(
                Case.resolved_at, start=start, end=end, rollup=rollup, resolutions=True
            ),
            with_durations=with_durations,
        )
        for key, resolved, on_time, chunk in (await session.execute(statement)).all():
            tally = tallies.setdefault(_plain_group_key(group_by, key), _Tally())
            tally.add(
                _Tally(resolved=int(resolved), on_time=int(on_time), hours=[chunk] if chunk else [])
            )
    tallies = {key: tally for key, tally in tallies.items() if tally.received or tally.resolved}
    labels = await _labels(session=session, group_by=group_by, keys=list(tallies))
    groups = [
        _group_stats(labels.get(key, (_plain_key(key), None)), tally, group_by)
        for key, tally in tallies.items()
    ]
    if group_by in TIME_GROUPS:
        groups = _with_empty_buckets(groups, group_by=group_by, start=start, end=end)
        groups.sort(key=lambda g: g.key or "")
    else:
        groups.sort(key=lambda g: (-g.received, -g.resolved, g.key is None, g.key or ""))
    total = _Tally()
    for tally in tallies.values():
        total.add(tally)
    return CaseStats(
        group_by=group_by,
        start=start,
        end=end,
        total=_group_stats((None, None), total, None),
        groups=groups,
    )


def _plain_key(key: Any) -> str | None:
    if key is None:
        return None
    return key.isoformat() if isinstance(key, date) else str(key)


def _group_stats(
    key_label: tuple[str | None, str | None], tally: _Tally, group_by: StatsGroup | None
) -> GroupStats:
    key, label = key_label
    percentiles = _percentiles(tally.hours)
    median, p90 = percentiles if percentiles is not None else (None, None)
    return GroupStats(
        key=key,
        label=label,
        bucket_start=_bucket_start(key) if group_by in TIME_GROUPS else None,
        received=tally.received,
        open=tally.open,
        overdue=tally.overdue,
        resolved=tally.resolved,
        resolved_on_time=tally.on_time,
        median_hours_to_resolve=round(median, 2) if median is not None else None,
        p90_hours_to_resolve=round(p90, 2) if p90 is not None else None,
    )


def _bucket_start(key: str | None) -> datetime | None:
    if key is None:
        return None
    return datetime.combine(date.fromisoformat(key), time(0), tzinfo=JAKARTA)


def _with_empty_buckets(
    groups: list[GroupStats], *, group_by: StatsGroup, start: datetime, end: datetime
) -> list[GroupStats]:
    """Charts need every bucket of the range, with zeros where nothing happened."""
    first = start.astimezone(JAKARTA).date()
    last = (end - timedelta(microseconds=1)).astimezone(JAKARTA).date()
    step = timedelta(days=1)
    if group_by is StatsGroup.WEEK:
        first -= timedelta(days=first.weekday())
        step = timedelta(days=7)
    present = {g.key for g in groups}
    day = first
    while day <= last:
        key = day.isoformat()
        if key not in present:
            groups.append(_group_stats((key, None), _Tally(), group_by))
        day += step
    return groups


async def _labels(
    *, session: AsyncSession, group_by: StatsGroup, keys: Sequence[Any]
) -> dict[Any, tuple[str | None, str | None]]:
    """Public key and label of each raw group key (ids become codes)."""
    present = [k for k in keys if k is not None]
    if not present:
        return {}
    match group_by:
        case StatsGroup.KELURAHAN | StatsGroup.KECAMATAN:
            model = Kelurahan if group_by is StatsGroup.KELURAHAN else Kecamatan
            # A code keeps its name across boundary sets unless a regulation renamed
            # it: the active set's name wins.
            areas = await session.execute(
                select(model.code, model.name)
                .join(BoundarySet, BoundarySet.id == model.boundary_set_id)
                .where(model.code.in_(present))
                .order_by(BoundarySet.is_active, model.id)
            )
            return {code: (code, name) for code, name in areas}
        case StatsGroup.DINAS:
            rows = await session.execute(
                select(Dinas.id, Dinas.code, Dinas.short_name).where(Dinas.id.in_(present))
            )
            return {i: (code, name) for i, code, name in rows}
        case StatsGroup.CATEGORY:
            rows = await session.execute(
                select(Category.id, Category.code, Category.name).where(Category.id.in_(present))
            )
            return {i: (code, name) for i, code, name in rows}
        case StatsGroup.SOURCE:
            partners = await session.execute(
                select(Partner.code, Partner.name).where(Partner.code.in_(present))
            )
            return {code: (code, name) for code, name in partners}
        case StatsGroup.DAY | StatsGroup.WEEK:
            # Day numbers since 1970-01-01 (WIB) become ISO dates.
            return {k: ((_EPOCH_DAY + timedelta(days=int(k))).isoformat(), None) for k in present}
        case StatsGroup.STATUS:
            return {k: (_plain_key(k), None) for k in present}


# -- backlog now --------------------------------------------------------------------


async def case_backlog(
    *,
    session: AsyncSession,
    group_by: StatsGroup,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    now: datetime,
) -> list[BacklogGroup]:
    """Every open case now (whenever it was received), grouped: the wall's table."""
    if group_by in TIME_GROUPS:
        raise ValidationFailed([FieldProblem("groupBy", "DAY and WEEK are not backlog groups")])
    await tune_for_scans(session=session)
    key = _group_key(group_by, Case.created_at)
    statement: Select[Any] = filtered(
        select(
            key,
            func.count(),
            func.count().filter(Case.due_at < now),
            func.min(Case.due_at),
        )
        .where(Case.status.in_(_OPEN), scope)
        .group_by(key),
        case_filter,
    )
    rows = (await session.execute(statement)).all()
    labels = await _labels(session=session, group_by=group_by, keys=[r[0] for r in rows])
    groups = [
        BacklogGroup(
            key=labels.get(raw, (_plain_key(raw), None))[0],
            label=labels.get(raw, (None, None))[1],
            open=int(n_open),
            overdue=int(n_overdue),
            oldest_due_at=oldest,
        )
        for raw, n_open, n_overdue, oldest in rows
    ]
    groups.sort(key=lambda g: (-g.overdue, -g.open, g.key is None, g.key or ""))
    return groups


async def most_overdue_cases(
    *,
    session: AsyncSession,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    now: datetime,
    first: int,
) -> list[Case]:
    """Open cases past their due time, the longest overdue first."""
    if not 1 <= first <= MAX_OVERDUE_LIST:
        raise ValidationFailed([FieldProblem("first", f"must be between 1 and {MAX_OVERDUE_LIST}")])
    statement: Select[Any] = filtered(
        select(Case).where(Case.status.in_(_OPEN), Case.due_at < now, scope),
        case_filter,
    ).order_by(Case.due_at, Case.id)
    return list((await session.scalars(statement.limit(first))).all())


# -- maps -----------------------------------------------------------------------------


async def case_heatmap(
    *,
    session: AsyncSession,
    bbox: BBox,
    cell_m: float,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
) -> dict[str, Any]:
    """Cases with a location inside `bbox`, counted in hexagons: a GeoJSON FeatureCollection."""
    grid = heatmap.HexGrid.for_bbox(bbox, cell_m)
    await tune_for_scans(session=session)
    statement: Select[Any] = filtered(
        select(Case.location).where(Case.location.is_not(None), scope),
        case_filter,
    )
    return await heatmap.hexagon_counts(session=session, located_cases=statement, grid=grid)


async def kelurahan_choropleth(
    *,
    session: AsyncSession,
    metric: ChoroplethMetric,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    start: datetime,
    end: datetime,
    now: datetime,
    simplify_m: float | None,
) -> dict[str, Any]:
    """Every kelurahan of the active set with the metric's value: a FeatureCollection."""
    stats = await case_stats(
        session=session,
        group_by=StatsGroup.KELURAHAN,
        case_filter=case_filter,
        scope=scope,
        start=start,
        end=end,
        now=now,
        with_durations=False,
        flows=frozenset(
            {"resolved" if metric is ChoroplethMetric.RESOLVED_ON_TIME_SHARE else "received"}
        ),
    )
    by_code = {g.key: g for g in stats.groups}

    def value(code: str) -> float | int | None:
        group = by_code.get(code)
        match metric:
            case ChoroplethMetric.OPEN:
                return group.open if group else 0
            case ChoroplethMetric.OVERDUE:
                return group.overdue if group else 0
            case ChoroplethMetric.RECEIVED:
                return group.received if group else 0
            case ChoroplethMetric.RESOLVED_ON_TIME_SHARE:
                return group.on_time_share if group else None

    set_id = await active_set_id(session=session)
    kelurahan = await boundaries.list_areas(
        session=session, model=Kelurahan, boundary_set_id=set_id
    )
    kecamatan = await boundaries.list_areas(
        session=session, model=Kecamatan, boundary_set_id=set_id
    )
    kecamatan_names = {k.id: k.name for k in kecamatan}
    geometries = await boundaries.geometries_as_geojson(
        session=session, model=Kelurahan, ids=[k.id for k in kelurahan], simplify_m=simplify_m
    )
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": area.code,
                "geometry": geometries[area.id],
                "properties": {
                    "code": area.code,
                    "name": area.name,
                    "kecamatan": kecamatan_names[area.kecamatan_id],
                    "value": value(area.code),
                },
            }
            for area in kelurahan
        ],
    }
