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
parameter. The time to resolve is W(resolved_at) - W(created_at).
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
    Date,
    Float,
    Select,
    Time,
    and_,
    bindparam,
    case,
    cast,
    extract,
    func,
    literal,
    null,
    select,
    union_all,
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
RESOLVED_STATUSES = (CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value)
_OPEN = tuple(sorted(OPEN_STATUSES))
_TIMEZONE = "Asia/Jakarta"
# A Monday early enough that every case's day number is positive, so that integer
# division and remainder need no care for negative numbers.
_EPOCH_MONDAY = date(1900, 1, 1)
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


def weekday_holidays(days: Iterable[date]) -> list[date]:
    """The holidays that remove a working day, sorted for `width_bucket`."""
    return sorted({d for d in days if d.weekday() < 5})


def holidays_param(days: Iterable[date]) -> BindParameter[Any]:
    return bindparam("weekday_holidays", weekday_holidays(days), type_=ARRAY(Date))


def working_seconds_since_epoch(moment: Any, holidays: BindParameter[Any]) -> ColumnElement[Any]:
    """W(t) of the module docstring: working seconds from the epoch Monday to `moment`."""
    local = func.timezone(_TIMEZONE, moment)
    day = cast(local, Date)
    day_number = day - literal(_EPOCH_MONDAY, Date)
    weekday = day_number % 7  # 0 is Monday
    weekdays_before = (day_number // 7) * 5 + func.least(weekday, 5)
    holidays_before = func.width_bucket(day - 1, holidays)
    is_working_day = and_(weekday < 5, func.width_bucket(day, holidays) == holidays_before)
    seconds_today = extract("epoch", cast(local, Time))
    return cast(
        (weekdays_before - holidays_before) * float(_SECONDS_PER_DAY)
        + case((is_working_day, seconds_today), else_=0),
        Float,
    )


def working_hours_sql(start: Any, end: Any, holidays: BindParameter[Any]) -> ColumnElement[Any]:
    elapsed = working_seconds_since_epoch(end, holidays) - working_seconds_since_epoch(
        start, holidays
    )
    return func.greatest(elapsed, 0) / 3600.0


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
            return cast(func.date_trunc("day", func.timezone(_TIMEZONE, moment)), Date)
        case StatsGroup.WEEK:
            return cast(func.date_trunc("week", func.timezone(_TIMEZONE, moment)), Date)


def _stats_statement(
    *,
    group_by: StatsGroup,
    case_filter: CaseFilter,
    start: datetime,
    end: datetime,
    now: datetime,
    holidays: Sequence[date],
    with_durations: bool,
) -> Select[Any]:
    is_open = Case.status.in_(_OPEN)
    # One branch per time base, each able to read its own covering index; a case
    # received and resolved in the range appears in both.
    received: Select[Any] = filtered(
        select(
            _group_key(group_by, Case.created_at).label("key"),
            literal(1).label("received"),
            case((is_open, 1), else_=0).label("open"),
            case((and_(is_open, Case.due_at < now), 1), else_=0).label("overdue"),
            literal(0).label("resolved"),
            literal(0).label("on_time"),
            cast(null(), Float).label("hours"),
        ).where(Case.created_at >= start, Case.created_at < end),
        case_filter,
    )
    hours: ColumnElement[Any] = (
        working_hours_sql(Case.created_at, Case.resolved_at, holidays_param(holidays))
        if with_durations
        else cast(null(), Float)
    )
    resolved: Select[Any] = filtered(
        select(
            _group_key(group_by, Case.resolved_at).label("key"),
            literal(0).label("received"),
            literal(0).label("open"),
            literal(0).label("overdue"),
            literal(1).label("resolved"),
            case((Case.resolved_at <= Case.due_at, 1), else_=0).label("on_time"),
            hours.label("hours"),
        ).where(
            Case.resolved_at >= start,
            Case.resolved_at < end,
            Case.status.in_(RESOLVED_STATUSES),
        ),
        case_filter,
    )
    rows = union_all(received, resolved).subquery("flows")
    percentiles = (
        func.percentile_cont(literal([0.5, 0.9], ARRAY(Float)))
        .within_group(rows.c.hours)
        .label("percentiles")
        if with_durations
        else cast(null(), ARRAY(Float)).label("percentiles")
    )
    return select(
        func.grouping(rows.c.key).label("is_total"),
        rows.c.key,
        func.sum(rows.c.received),
        func.sum(rows.c.open),
        func.sum(rows.c.overdue),
        func.sum(rows.c.resolved),
        func.sum(rows.c.on_time),
        percentiles,
    ).group_by(func.rollup(rows.c.key))


async def case_stats(
    *,
    session: AsyncSession,
    group_by: StatsGroup,
    case_filter: CaseFilter,
    start: datetime,
    end: datetime,
    now: datetime,
    with_durations: bool = True,
) -> CaseStats:
    check_range(start, end)
    holidays = await load_holidays(session=session) if with_durations else []
    statement = _stats_statement(
        group_by=group_by,
        case_filter=case_filter,
        start=start,
        end=end,
        now=now,
        holidays=holidays,
        with_durations=with_durations,
    )
    raw: dict[Any, tuple[int, int, int, int, int, list[float] | None]] = {}
    total_row: tuple[int, int, int, int, int, list[float] | None] | None = None
    for is_total, key, *measures in (await session.execute(statement)).all():
        values = (*(int(m or 0) for m in measures[:5]), measures[5])
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
    total = _group_stats((None, None), total_row or (0, 0, 0, 0, 0, None), None)
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
        case StatsGroup.STATUS | StatsGroup.DAY | StatsGroup.WEEK:
            return {k: (_plain_key(k), None) for k in present}


# -- backlog now --------------------------------------------------------------------


async def case_backlog(
    *, session: AsyncSession, group_by: StatsGroup, case_filter: CaseFilter, now: datetime
) -> list[BacklogGroup]:
    """Every open case now (whenever it was received), grouped: the wall's table."""
    if group_by in TIME_GROUPS:
        raise ValidationFailed([FieldProblem("groupBy", "DAY and WEEK are not backlog groups")])
    key = _group_key(group_by, Case.created_at)
    statement: Select[Any] = filtered(
        select(
            key,
            func.count(),
            func.count().filter(Case.due_at < now),
            func.min(Case.due_at),
        )
        .where(Case.status.in_(_OPEN))
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
    *, session: AsyncSession, case_filter: CaseFilter, now: datetime, first: int
) -> list[Case]:
    """Open cases past their due time, the longest overdue first."""
    if not 1 <= first <= MAX_OVERDUE_LIST:
        raise ValidationFailed([FieldProblem("first", f"must be between 1 and {MAX_OVERDUE_LIST}")])
    statement: Select[Any] = filtered(
        select(Case).where(Case.status.in_(_OPEN), Case.due_at < now),  # type: ignore[type-var]
        case_filter,
    ).order_by(Case.due_at, Case.id)
    return list((await session.scalars(statement.limit(first))).all())


# -- maps -----------------------------------------------------------------------------


async def case_heatmap(
    *, session: AsyncSession, bbox: BBox, cell_m: float, case_filter: CaseFilter
) -> dict[str, Any]:
    """Cases with a location inside `bbox`, counted in hexagons: a GeoJSON FeatureCollection."""
    grid = heatmap.HexGrid.for_bbox(bbox, cell_m)
    statement: Select[Any] = filtered(
        select(Case.location).where(Case.location.is_not(None)),
        case_filter,
    )
    return await heatmap.hexagon_counts(session=session, located_cases=statement, grid=grid)


async def kelurahan_choropleth(
    *,
    session: AsyncSession,
    metric: ChoroplethMetric,
    case_filter: CaseFilter,
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
        start=start,
        end=end,
        now=now,
        with_durations=False,
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
