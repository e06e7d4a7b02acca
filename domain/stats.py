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
  counts for its 24 hours; weekends and holidays count for nothing).

Time groupings (DAY, WEEK) put a received case in the bucket of its creation and a
resolved one in the bucket of its resolution, in Jakarta time; weeks start on Monday.

Working hours are computed in SQL without a per-case series of days: for a moment t on
local day d, the working seconds since a fixed Monday are

    W(t) = 86400 * (weekdays before d - weekday holidays before d)
           + (seconds since local midnight, when d is a working day),

where the weekdays come from a closed formula and the holidays before d from
`width_bucket` (a binary search) over the sorted array of weekday holidays, bound as a
parameter; days are numbered from the epoch in WIB with plain arithmetic. The time to
resolve is W(resolved_at) - W(created_at).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    Float,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from domain.case_queries import CaseFilter, filtered
from domain.errors import FieldProblem, ValidationFailed
from domain.working_days import JAKARTA
from geo import boundaries, heatmap
from geo.case_filters import BBox
from geo.lookup import active_set_id
from models import (
    OPEN_STATUSES,
    BoundarySet,
    Case,
    CaseStatus,
    Category,
    Dinas,
    Holiday,
    Kecamatan,
    Kelurahan,
    Partner,
)

MAX_RANGE = timedelta(days=5 * 366)
MAX_OVERDUE_LIST = 100
ALL_FLOWS = frozenset({"received", "resolved"})
RESOLVED_STATUSES = (CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value)
_OPEN = tuple(sorted(OPEN_STATUSES))
_EPOCH_DAY = date(1970, 1, 1)
_JAKARTA_OFFSET_S = 7 * 3600
_SECONDS_PER_DAY = 86_400


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


# -- working hours ------------------------------------------------------------------


def weekday_holidays(days: Iterable[date]) -> list[float]:
    """Day numbers of the holidays that remove a working day, sorted for `width_bucket`."""
    return sorted({float(_day_number(d)) for d in days if d.weekday() < 5})


def holidays_param(days: Iterable[date]) -> BindParameter[Any]:
    return bindparam("weekday_holidays", weekday_holidays(days), type_=ARRAY(Float))


def _day_number(day: date) -> int:
    return (day - _EPOCH_DAY).days


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


def working_seconds_since_epoch(
    local_seconds: Any, day: Any, holidays: BindParameter[Any]
) -> ColumnElement[Any]:
    """W(t) of the module docstring, from t's local seconds and local day number: working
    seconds from Monday 1969-12-29 to t."""
    shifted = day + 3.0  # days since that Monday
    weekday = shifted - func.floor(shifted / 7.0) * 7.0
    weekdays_before = func.floor(shifted / 7.0) * 5.0 + func.least(weekday, 5.0)
    holidays_before = func.width_bucket(day - 0.5, holidays)
    is_working_day = and_(weekday < 5.0, func.width_bucket(day + 0.5, holidays) == holidays_before)
    seconds_today = local_seconds - day * float(_SECONDS_PER_DAY)
    return (weekdays_before - holidays_before) * float(_SECONDS_PER_DAY) + case(
        (is_working_day, seconds_today), else_=0.0
    )


def hours_between_local(
    start_seconds: Any,
    start_day: Any,
    end_seconds: Any,
    end_day: Any,
    holidays: BindParameter[Any],
) -> ColumnElement[Any]:
    elapsed = working_seconds_since_epoch(
        end_seconds, end_day, holidays
    ) - working_seconds_since_epoch(start_seconds, start_day, holidays)
    return func.greatest(elapsed, 0.0) / 3600.0


def working_hours_sql(start: Any, end: Any, holidays: BindParameter[Any]) -> ColumnElement[Any]:
    """Working hours from `start` to `end` (`working_hours_between` in SQL)."""
    return hours_between_local(
        _local_seconds(start), _local_day(start), _local_seconds(end), _local_day(end), holidays
    )


def _fenced(statement: Select[Any], name: str) -> Any:
    # OFFSET 0 keeps PostgreSQL from inlining the subquery, which would evaluate its
    # expressions again in every place the outer query uses them.
    return statement.offset(0).subquery(name)


async def tune_for_scans(*, session: AsyncSession) -> None:
    """For this transaction only: statistics scan hundreds of thousands of index entries,
    for which JIT compilation costs more than it saves (up to a second), and their sorts
    and hash tables need more than the default 4 MB not to spill to disk."""
    await session.execute(
        select(func.set_config("jit", "off", True), func.set_config("work_mem", "64MB", True))
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


def _received_rows(
    *,
    group_by: StatsGroup,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    start: datetime,
    end: datetime,
    now: datetime,
) -> Select[Any]:
    is_open = Case.status.in_(_OPEN)
    return filtered(
        select(
            _group_key(group_by, Case.created_at).label("key"),
            case((is_open, 1), else_=0).label("open"),
            case((and_(is_open, Case.due_at < now), 1), else_=0).label("overdue"),
        ).where(Case.created_at >= start, Case.created_at < end, scope),
        case_filter,
    )


def _resolved_rows(
    *,
    group_by: StatsGroup,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    start: datetime,
    end: datetime,
    holidays: Sequence[date] | None,
) -> Any:
    """Resolutions in the range: key and on_time, and with `holidays` their working hours."""
    base = filtered(
        select(
            _group_key(group_by, Case.resolved_at).label("key"),
            case((Case.resolved_at <= Case.due_at, 1), else_=0).label("on_time"),
        ).where(
            Case.resolved_at >= start,
            Case.resolved_at < end,
            Case.status.in_(RESOLVED_STATUSES),
            scope,
        ),
        case_filter,
    )
    if holidays is None:
        return base.subquery("resolutions")
    # Two fenced steps, so that each timestamp is converted once per row, not once per
    # use in the working-hours formula.
    seconds = _fenced(
        base.add_columns(
            _local_seconds(Case.created_at).label("start_s"),
            _local_seconds(Case.resolved_at).label("end_s"),
        ),
        "resolutions",
    )
    r = seconds.c
    days = _fenced(
        select(
            r.key,
            r.on_time,
            r.start_s,
            r.end_s,
            func.floor(r.start_s / float(_SECONDS_PER_DAY)).label("start_day"),
            func.floor(r.end_s / float(_SECONDS_PER_DAY)).label("end_day"),
        ),
        "resolution_days",
    )
    d = days.c
    hours = hours_between_local(
        d.start_s, d.start_day, d.end_s, d.end_day, holidays_param(holidays)
    )
    return select(d.key, d.on_time, hours.label("hours")).subquery("resolution_hours")


def _received_statement(
    *,
    group_by: StatsGroup,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    start: datetime,
    end: datetime,
    now: datetime,
) -> Select[Any]:
    rows = _received_rows(
        group_by=group_by, case_filter=case_filter, scope=scope, start=start, end=end, now=now
    ).subquery("received")
    return select(
        func.grouping(rows.c.key).label("is_total"),
        rows.c.key,
        func.count(),
        func.sum(rows.c.open),
        func.sum(rows.c.overdue),
    ).group_by(func.rollup(rows.c.key))


def _resolved_statement(
    *,
    group_by: StatsGroup,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    start: datetime,
    end: datetime,
    holidays: Sequence[date] | None,
) -> Select[Any]:
    rows = _resolved_rows(
        group_by=group_by,
        case_filter=case_filter,
        scope=scope,
        start=start,
        end=end,
        holidays=holidays,
    )
    # The percentiles (an ordered-set aggregate) sort each group's rows: only the
    # resolutions' narrow rows, the received ones are counted apart with a hash.
    percentiles = (
        func.percentile_cont(literal([0.5, 0.9], ARRAY(Float))).within_group(rows.c.hours)
        if holidays is not None
        else cast(null(), ARRAY(Float))
    )
    return select(
        func.grouping(rows.c.key).label("is_total"),
        rows.c.key,
        func.count(),
        func.sum(rows.c.on_time),
        percentiles,
    ).group_by(func.rollup(rows.c.key))


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
    empty: tuple[int, int, int, int, int, list[float] | None] = (0, 0, 0, 0, 0, None)
    raw: dict[Any, tuple[int, int, int, int, int, list[float] | None]] = {}
    total_row = empty
    if "received" in flows:
        statement = _received_statement(
            group_by=group_by,
            case_filter=case_filter,
            scope=scope,
            start=start,
            end=end,
            now=now,
        )
        for is_total, key, received, open_, overdue in (await session.execute(statement)).all():
            values = (int(received), int(open_ or 0), int(overdue or 0), 0, 0, None)
            if is_total:
                total_row = values
            else:
                raw[key] = values
    if "resolved" in flows:
        statement = _resolved_statement(
            group_by=group_by,
            case_filter=case_filter,
            scope=scope,
            start=start,
            end=end,
            holidays=await load_holidays(session=session) if with_durations else None,
        )
        for is_total, key, resolved, on_time, pair in (await session.execute(statement)).all():
            before = total_row if is_total else raw.get(key, empty)
            values = (*before[:3], int(resolved), int(on_time or 0), pair)
            if is_total:
                total_row = values
            else:
                raw[key] = values
    labels = await _labels(session=session, group_by=group_by, keys=list(raw))
    groups = [
        _group_stats(labels.get(key, (_plain_key(key), None)), values, group_by)
        for key, values in raw.items()
    ]
    if group_by in TIME_GROUPS:
        groups = _with_empty_buckets(groups, group_by=group_by, start=start, end=end)
        groups.sort(key=lambda g: g.key or "")
    else:
        groups.sort(key=lambda g: (-g.received, -g.resolved, g.key is None, g.key or ""))
    total = _group_stats((None, None), total_row, None)
    return CaseStats(group_by=group_by, start=start, end=end, total=total, groups=groups)


def _plain_key(key: Any) -> str | None:
    if key is None:
        return None
    return key.isoformat() if isinstance(key, date) else str(key)


def _group_stats(
    key_label: tuple[str | None, str | None],
    values: tuple[int, int, int, int, int, list[float] | None],
    group_by: StatsGroup | None,
) -> GroupStats:
    received, open_, overdue, resolved, on_time, percentiles = values
    key, label = key_label
    median, p90 = percentiles if percentiles and percentiles[0] is not None else (None, None)
    return GroupStats(
        key=key,
        label=label,
        bucket_start=_bucket_start(key) if group_by in TIME_GROUPS else None,
        received=received,
        open=open_,
        overdue=overdue,
        resolved=resolved,
        resolved_on_time=on_time,
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
            groups.append(_group_stats((key, None), (0, 0, 0, 0, 0, None), group_by))
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
        select(Case).where(Case.status.in_(_OPEN), Case.due_at < now, scope),  # type: ignore[type-var]
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
