"""Service levels enforced by the sweep: escalating overdue cases, closing resolved ones.

Several server processes sweep the same database. Each step happens exactly once
because candidates are locked with `FOR UPDATE SKIP LOCKED` (a process never
waits for, nor takes, a case another one is handling) and every change is guarded
by the state it changes from, so a case that moved on meanwhile is left alone.
Functions flush, never commit; the caller's transaction should stay short, since
the live feed waits for every running writer.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.events import record_event
from domain.lifecycle.status_changes import close_case
from domain.working_days import JAKARTA, due_at
from models import Case, CaseStatus, Dinas, EventType, Holiday
from models.cases import OPEN_STATUSES

SYSTEM_ACTOR = "system"
DEFAULT_BATCH_SIZE = 500

# The clock is stopped while a case is on hold (tunda): a held case is never
# escalated, however late. This is a design choice, not a rule from SP4N-LAPOR!.
# A case resumed after its due time escalates on the next sweep unless the
# resumption moves its due time.
ESCALATING_STATUSES = tuple(sorted(s.value for s in OPEN_STATUSES - {CaseStatus.ON_HOLD}))


class EscalationTarget(StrEnum):
    DINAS = "DINAS"
    KELURAHAN = "KELURAHAN"  # the handling unit is the kelurahan office
    POC = "POC"


@dataclass(frozen=True)
class Escalation:
    case_id: int
    ticket: str
    level: int
    to: EscalationTarget
    dinas_code: str
    overdue_by_hours: float


async def escalate_overdue(
    *,
    session: AsyncSession,
    now: datetime,
    poc_after: timedelta,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[Escalation]:
    """Escalate open cases past their due time: level 1 to the handling dinas or
    kelurahan office, level 2 to the POC once `poc_after` has also passed.

    A case late enough for both goes through both in one call, level 1 first.
    At most `batch_size` cases per call, the most overdue first.
    """
    _require_aware(now)
    if poc_after < timedelta(0):
        raise ValueError(f"poc_after must not be negative, got {poc_after}")
    rows = (
        await session.execute(
            select(Case, Dinas.code, Dinas.is_kelurahan_office)
            .join(Dinas, Dinas.id == Case.dinas_id)
            .where(
                # Spelled out as constants so that the partial index ix_case_open_due
                # applies whatever plan PostgreSQL caches for the statement.
                Case.status.in_(bindparam("escalating", ESCALATING_STATUSES, literal_execute=True)),
                Case.due_at < now,
                or_(
                    Case.escalation_level == 0,
                    and_(Case.escalation_level == 1, Case.due_at < now - poc_after),
                ),
            )
            .order_by(Case.due_at, Case.id)
            .limit(batch_size)
            # Only the case rows: a locked dinas row would make a racing sweep skip
            # every case of that dinas, and hold up any edit of the dinas.
            .with_for_update(skip_locked=True, of=Case)
            .execution_options(populate_existing=True)
        )
    ).all()
    handlers = {case.id: (code, is_office) for case, code, is_office in rows}
    cases = [case for case, _code, _is_office in rows]

    escalations: list[Escalation] = []
    for case in await _raise_level(
        session=session, cases=[c for c in cases if c.escalation_level == 0], to=1, now=now
    ):
        code, is_office = handlers[case.id]
        target = EscalationTarget.KELURAHAN if is_office else EscalationTarget.DINAS
        escalations.append(_record(session=session, case=case, target=target, code=code, now=now))

    poc_due = [c for c in cases if c.escalation_level == 1 and c.due_at + poc_after < now]
    for case in await _raise_level(session=session, cases=poc_due, to=2, now=now):
        code, _is_office = handlers[case.id]
        escalations.append(
            _record(session=session, case=case, target=EscalationTarget.POC, code=code, now=now)
        )
    if escalations:
        await session.flush()
    return escalations


async def _raise_level(
    *, session: AsyncSession, cases: Sequence[Case], to: int, now: datetime
) -> list[Case]:
    if not cases:
        return []
    updated = set(
        await session.scalars(
            update(Case)
            # The guard on the old level: whatever happened since the rows were
            # read, a level is only ever raised from the one below, once.
            .where(Case.id.in_([c.id for c in cases]), Case.escalation_level == to - 1)
            .values(escalation_level=to, escalated_at=now, updated_at=now)
            .returning(Case.id)
            .execution_options(synchronize_session="fetch")
        )
    )
    return [case for case in cases if case.id in updated]


def _record(
    *,
    session: AsyncSession,
    case: Case,
    target: EscalationTarget,
    code: str,
    now: datetime,
) -> Escalation:
    escalation = Escalation(
        case_id=case.id,
        ticket=case.ticket,
        level=case.escalation_level,
        to=target,
        dinas_code=code,
        overdue_by_hours=round((now - case.due_at).total_seconds() / 3600, 2),
    )
    record_event(
        session=session,
        case=case,
        type=EventType.ESCALATED,
        actor=SYSTEM_ACTOR,
        at=now,
        details={
            "level": escalation.level,
            "to": escalation.to.value,
            "dinas": escalation.dinas_code,
            "overdue_by_hours": escalation.overdue_by_hours,
        },
    )
    return escalation


async def auto_close_resolved(
    *,
    session: AsyncSession,
    now: datetime,
    after_working_days: int,
    holidays: Collection[date],
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[Case]:
    """Close, as the system, resolved cases nobody disputed within the window.

    A case resolved on local day D is closed once the `after_working_days`-th
    working day after D has ended (the same counting as a report's due time):
    the window SP4N-LAPOR! gives the reporter and the administrators to object.
    A disputed case has been reopened and is no longer RESOLVED.
    """
    _require_aware(now)
    cutoff = auto_close_cutoff(now=now, after_working_days=after_working_days, holidays=holidays)
    cases = list(
        await session.scalars(
            select(Case)
            .where(
                Case.status == CaseStatus.RESOLVED.value,
                Case.resolved_at.is_not(None),
                Case.resolved_at < cutoff,
            )
            .order_by(Case.resolved_at, Case.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    )
    for case in cases:
        await close_case(session=session, case=case, actor=SYSTEM_ACTOR, now=now, automatic=True)
    if cases:
        await session.flush()
    return cases


def auto_close_cutoff(
    *, now: datetime, after_working_days: int, holidays: Collection[date]
) -> datetime:
    """Cases resolved before this moment are due to be closed at `now`."""
    _require_aware(now)
    # The deadline depends only on the local day of resolution and grows with it:
    # find the latest day whose deadline has passed.
    day = now.astimezone(JAKARTA).date()
    while due_at(_local_midnight(day), after_working_days, holidays) > now:
        day -= timedelta(days=1)
    return _local_midnight(day + timedelta(days=1)).astimezone(UTC)


async def load_holidays(*, session: AsyncSession, start: date, end: date) -> set[date]:
    rows = await session.scalars(select(Holiday.day).where(Holiday.day.between(start, end)))
    return set(rows)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=JAKARTA)


def _require_aware(now: datetime) -> None:
    # A naive time could be UTC or WIB: seven hours that decide an escalation.
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {now.isoformat()}")
