"""The backlog now: every open case, grouped, and the longest overdue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import FieldProblem, ValidationFailed
from domain.case_queries import CaseFilter, filtered
from domain.stats.grouping import TIME_GROUPS, StatsGroup, group_key, group_labels, plain_key
from domain.stats.scanning import SORTED_OPEN_STATUSES, tune_for_scans
from models import Case, CaseStatus

MAX_OVERDUE_LIST = 100


@dataclass(frozen=True)
class BacklogGroup:
    key: str | None
    label: str | None
    open: int
    overdue: int
    oldest_due_at: datetime | None


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
    key = group_key(group_by, Case.created_at)
    statement: Select[Any] = filtered(
        select(
            key,
            func.count(),
            # A held case's clock stands still: never overdue, never the oldest due.
            func.count().filter(Case.due_at < now, Case.status != CaseStatus.ON_HOLD.value),
            func.min(Case.due_at).filter(Case.status != CaseStatus.ON_HOLD.value),
        )
        .where(Case.status.in_(SORTED_OPEN_STATUSES), scope)
        .group_by(key),
        case_filter,
    )
    rows = (await session.execute(statement)).all()
    labels = await group_labels(session=session, group_by=group_by, keys=[r[0] for r in rows])
    groups = [
        BacklogGroup(
            key=labels.get(raw, (plain_key(raw), None))[0],
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
        select(Case).where(
            Case.status.in_(SORTED_OPEN_STATUSES),
            Case.status != CaseStatus.ON_HOLD.value,
            Case.due_at < now,
            scope,
        ),
        case_filter,
    ).order_by(Case.due_at, Case.id)
    return list((await session.scalars(statement.limit(first))).all())
