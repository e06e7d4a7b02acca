"""Statistics over a time range: the cases received and resolved, grouped.

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

City-wide statistics read most of a long range from the rollup
(`domain.stats.rollup_reading`), with the same answer as reading every case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, LargeBinary, Select, and_, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import True_

from core.errors import FieldProblem, ValidationFailed
from domain.case_queries import CaseFilter, filtered
from domain.stats.grouping import TIME_GROUPS, StatsGroup, group_key, group_labels, plain_key
from domain.stats.measures import Tally, hours_percentiles
from domain.stats.rollup_reading import RollupRead, live_sources, read_rollup, whole_days
from domain.stats.scanning import SORTED_OPEN_STATUSES, inline_in, tune_for_scans
from domain.working_days import JAKARTA
from models import Case, CaseStatus

MAX_RANGE = timedelta(days=5 * 366)
ALL_FLOWS = frozenset({"received", "resolved"})
RESOLVED_STATUSES = (CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value)


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
                    group_key(group_by, Case.created_at).label("key"),
                    Case.status.label("status"),
                    Case.due_at.label("due_at"),
                ).where(source, scope),
                case_filter,
            )
            for source in sources
        )
    ).subquery("received")
    is_open = inline_in(rows.c.status, SORTED_OPEN_STATUSES)
    return select(
        rows.c.key,
        func.count(),
        func.count().filter(is_open),
        func.count().filter(
            and_(is_open, rows.c.status != CaseStatus.ON_HOLD.value, rows.c.due_at < now)
        ),
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
                    group_key(group_by, Case.resolved_at).label("key"),
                    (Case.resolved_at <= Case.due_at).label("on_time"),
                    Case.working_hours_to_resolve.label("hours"),
                ).where(inline_in(Case.status, RESOLVED_STATUSES), source, scope),
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
    tallies: dict[Any, Tally] = {}
    rollup: RollupRead | None = None
    days = whole_days(start, end)
    # The rollup counts every case, unfiltered: it serves the city-wide view.
    if days is not None and case_filter == CaseFilter() and isinstance(scope, True_):
        from_rollup: dict[Any, Tally] = {}
        rollup = await read_rollup(
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
            tallies.setdefault(key, Tally()).add(tally)
    if "received" in flows:
        statement = _received_statement(
            group_by=group_by,
            case_filter=case_filter,
            scope=scope,
            sources=live_sources(
                Case.created_at, start=start, end=end, rollup=rollup, resolutions=False
            ),
            now=now,
        )
        for key, received, open_, overdue in (await session.execute(statement)).all():
            tally = tallies.setdefault(_plain_group_key(group_by, key), Tally())
            tally.add(Tally(received=int(received), open=int(open_), overdue=int(overdue)))
    if "resolved" in flows:
        statement = _resolved_statement(
            group_by=group_by,
            case_filter=case_filter,
            scope=scope,
            sources=live_sources(
                Case.resolved_at, start=start, end=end, rollup=rollup, resolutions=True
            ),
            with_durations=with_durations,
        )
        for key, resolved, on_time, chunk in (await session.execute(statement)).all():
            tally = tallies.setdefault(_plain_group_key(group_by, key), Tally())
            tally.add(
                Tally(resolved=int(resolved), on_time=int(on_time), hours=[chunk] if chunk else [])
            )
    tallies = {key: tally for key, tally in tallies.items() if tally.received or tally.resolved}
    labels = await group_labels(session=session, group_by=group_by, keys=list(tallies))
    groups = [
        _group_stats(labels.get(key, (plain_key(key), None)), tally, group_by)
        for key, tally in tallies.items()
    ]
    if group_by in TIME_GROUPS:
        groups = _with_empty_buckets(groups, group_by=group_by, start=start, end=end)
        groups.sort(key=lambda g: g.key or "")
    else:
        groups.sort(key=lambda g: (-g.received, -g.resolved, g.key is None, g.key or ""))
    total = Tally()
    for tally in tallies.values():
        total.add(tally)
    return CaseStats(
        group_by=group_by,
        start=start,
        end=end,
        total=_group_stats((None, None), total, None),
        groups=groups,
    )


def _group_stats(
    key_label: tuple[str | None, str | None], tally: Tally, group_by: StatsGroup | None
) -> GroupStats:
    key, label = key_label
    percentiles = hours_percentiles(tally.hours)
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
            groups.append(_group_stats((key, None), Tally(), group_by))
        day += step
    return groups
