"""Changes of a case's status: the workflow from verification to closing, reopening,
and merging duplicates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import CaseNotFound, FieldProblem, ReopenWindowClosed, ValidationFailed
from domain.events import record_event
from domain.intake import HOLIDAY_HORIZON
from domain.lifecycle.transitions import (
    MAX_REASON,
    TRANSITIONS,
    CaseAction,
    Transition,
    lock_case,
    normalise_ticket,
    optional_detail,
    refusal,
    required_text,
    touch,
)
from domain.report_input import MAX_MEDIA_URL, _media_url_problem, _text
from domain.working_days import JAKARTA, due_at
from models import Case, CaseEvent, CaseStatus, EventType, Holiday, RejectionReason

MAX_NOTE = 5_000
MAX_EVIDENCE_URLS = 10


def _check(case: Case, action: CaseAction) -> Transition:
    rule = TRANSITIONS[action]
    if CaseStatus(case.status) not in rule.sources:
        raise refusal(case, rule.verb)
    return rule


def _move(
    *,
    session: AsyncSession,
    case: Case,
    rule: Transition,
    actor: str,
    now: datetime,
    details: Mapping[str, Any] | None = None,
) -> None:
    before = case.status
    if rule.target is None:
        assert case.held_from_status is not None  # set by every hold
        target = CaseStatus(case.held_from_status)
    else:
        target = rule.target
    if target is not CaseStatus.ON_HOLD:
        case.held_from_status = None
    case.status = target.value
    case.updated_at = now
    record_event(
        session=session,
        case=case,
        type=rule.event,
        actor=actor,
        at=now,
        details={"from": before, "to": target.value, **(details or {})},
    )


def _optional_text(value: str | None, field: str, limit: int, *, multiline: bool) -> str | None:
    problems: list[FieldProblem] = []
    text = _text(value, field, limit, problems, multiline=multiline)
    if problems:
        raise ValidationFailed(problems)
    return text


async def verify_case(
    *, session: AsyncSession, ticket: str, scope: ColumnElement[bool], actor: str, now: datetime
) -> Case:
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    _move(
        session=session,
        case=case,
        rule=_check(case, CaseAction.VERIFY),
        actor=actor,
        now=now,
    )
    await session.flush()
    return case


async def hold_case(
    *,
    session: AsyncSession,
    ticket: str,
    scope: ColumnElement[bool],
    actor: str,
    now: datetime,
    reason: str | None,
) -> Case:
    reason = _optional_text(reason, "reason", MAX_REASON, multiline=True)
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    rule = _check(case, CaseAction.HOLD)
    case.held_from_status = case.status
    _move(
        session=session,
        case=case,
        rule=rule,
        actor=actor,
        now=now,
        details=optional_detail("reason", reason),
    )
    await session.flush()
    return case


async def resume_case(
    *, session: AsyncSession, ticket: str, scope: ColumnElement[bool], actor: str, now: datetime
) -> Case:
    """Back to the status the case was held from; its due time moves on by the
    time it was held (the service clock stood still meanwhile)."""
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    held_at = await session.scalar(
        select(func.max(CaseEvent.at)).where(
            CaseEvent.case_id == case.id, CaseEvent.type == EventType.HELD.value
        )
    )
    if held_at is not None and case.status == CaseStatus.ON_HOLD.value:
        case.due_at = case.due_at + max(now - held_at, timedelta(0))
    _move(
        session=session,
        case=case,
        rule=_check(case, CaseAction.RESUME),
        actor=actor,
        now=now,
    )
    await session.flush()
    return case


async def reject_case(
    *,
    session: AsyncSession,
    ticket: str,
    scope: ColumnElement[bool],
    actor: str,
    now: datetime,
    reason: RejectionReason,
    note: str | None,
) -> Case:
    note = _optional_text(note, "note", MAX_NOTE, multiline=True)
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    rule = _check(case, CaseAction.REJECT)
    case.rejection_reason = reason.value
    _move(
        session=session,
        case=case,
        rule=rule,
        actor=actor,
        now=now,
        details={"reason": reason.value, **optional_detail("note", note)},
    )
    await session.flush()
    return case


async def start_work(
    *, session: AsyncSession, ticket: str, scope: ColumnElement[bool], actor: str, now: datetime
) -> Case:
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    _move(session=session, case=case, rule=_check(case, CaseAction.START), actor=actor, now=now)
    await session.flush()
    return case


def _evidence_urls(values: Sequence[str], problems: list[FieldProblem]) -> list[str]:
    if not values:
        problems.append(
            FieldProblem("evidenceUrls", "give at least one https link to a photo of the work")
        )
    elif len(values) > MAX_EVIDENCE_URLS:
        problems.append(
            FieldProblem("evidenceUrls", f"at most {MAX_EVIDENCE_URLS} links (got {len(values)})")
        )
    cleaned: list[str] = []
    for index, value in enumerate(values):
        field = f"evidenceUrls[{index}]"
        url = _text(value, field, MAX_MEDIA_URL, problems, multiline=False, required=True)
        if url is None:
            continue
        message = _media_url_problem(url)
        if message:
            problems.append(FieldProblem(field, message))
        else:
            cleaned.append(url)
    return cleaned


async def resolve_case(
    *,
    session: AsyncSession,
    ticket: str,
    scope: ColumnElement[bool],
    actor: str,
    now: datetime,
    note: str,
    evidence_urls: Sequence[str],
) -> Case:
    """Officers show the work done (a note and at least one photo) before a case is resolved."""
    problems: list[FieldProblem] = []
    clean_note = _text(note, "note", MAX_NOTE, problems, multiline=True, required=True)
    urls = _evidence_urls(evidence_urls, problems)
    if problems:
        raise ValidationFailed(problems)
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    rule = _check(case, CaseAction.RESOLVE)
    case.resolution_note = clean_note
    case.evidence_urls = urls
    case.resolved_at = now
    _move(
        session=session,
        case=case,
        rule=rule,
        actor=actor,
        now=now,
        details={"note": clean_note, "evidence_urls": urls},
    )
    await session.flush()
    return case


async def close_case(
    *, session: AsyncSession, case: Case, actor: str, now: datetime, automatic: bool
) -> Case:
    """Close a resolved case: by hand, or by the sweeper once nobody disputed it in time.

    The row is locked and read afresh first: a case reopened since the caller read
    it raises InvalidTransition and is left as it is.
    """
    await session.refresh(case, with_for_update=True)
    return await _close(session=session, case=case, actor=actor, now=now, automatic=automatic)


async def close_case_by_ticket(
    *, session: AsyncSession, ticket: str, scope: ColumnElement[bool], actor: str, now: datetime
) -> Case:
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    return await _close(session=session, case=case, actor=actor, now=now, automatic=False)


async def _close(
    *, session: AsyncSession, case: Case, actor: str, now: datetime, automatic: bool
) -> Case:
    rule = _check(case, CaseAction.CLOSE)
    case.closed_at = now
    _move(
        session=session,
        case=case,
        rule=rule,
        actor=actor,
        now=now,
        details={"automatic": automatic},
    )
    await session.flush()
    return case


async def _holidays_from(*, session: AsyncSession, day: datetime) -> set[date]:
    first = day.astimezone(JAKARTA).date()
    rows = await session.scalars(
        select(Holiday.day).where(Holiday.day >= first, Holiday.day <= first + HOLIDAY_HORIZON)
    )
    return set(rows)


async def reopen_deadline(
    *, session: AsyncSession, resolved_at: datetime, working_days: int
) -> datetime:
    """The end of the `working_days`-th working day after the day of the resolution
    (WIB): the same count as a service level, as SP4N-LAPOR! counts its 10 days."""
    holidays = await _holidays_from(session=session, day=resolved_at)
    return due_at(resolved_at, working_days, holidays)


async def reopen_case(
    *,
    session: AsyncSession,
    ticket: str,
    scope: ColumnElement[bool],
    actor: str,
    now: datetime,
    reason: str,
    window_working_days: int,
) -> Case:
    """The reporter disputes the fix. The last resolution (note, evidence, time) is
    kept on the case until the next one replaces it."""
    reason = required_text(reason, "reason", MAX_REASON, multiline=True)
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    rule = _check(case, CaseAction.REOPEN)
    assert case.resolved_at is not None  # set by every resolution
    until = await reopen_deadline(
        session=session, resolved_at=case.resolved_at, working_days=window_working_days
    )
    if now >= until:
        raise ReopenWindowClosed(
            ticket=case.ticket,
            resolved_at=case.resolved_at,
            reopenable_until=until,
            working_days=window_working_days,
        )
    _move(session=session, case=case, rule=rule, actor=actor, now=now, details={"reason": reason})
    await session.flush()
    return case


async def merge_duplicate(
    *,
    session: AsyncSession,
    ticket: str,
    scope: ColumnElement[bool],
    into_ticket: str,
    actor: str,
    now: datetime,
) -> Case:
    """Mark an open case as a duplicate of another; both histories say so."""
    duplicate_ticket, target_ticket = normalise_ticket(ticket), normalise_ticket(into_ticket)
    if duplicate_ticket == target_ticket:
        raise ValidationFailed(
            [FieldProblem("intoTicket", "a case cannot be a duplicate of itself")]
        )
    # Both rows locked in id order, so two merges of the same pair cannot deadlock.
    rows = (
        await session.scalars(
            select(Case)
            # Outside the caller's scope, either case is not found (see lock_case).
            .where(Case.ticket.in_([duplicate_ticket, target_ticket]), scope)
            .order_by(Case.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    by_ticket = {case.ticket: case for case in rows}
    case = by_ticket.get(duplicate_ticket)
    if case is None:
        raise CaseNotFound(ticket.strip())
    target = by_ticket.get(target_ticket)
    if target is None:
        raise CaseNotFound(into_ticket.strip())
    rule = _check(case, CaseAction.MARK_DUPLICATE)
    if target.status == CaseStatus.DUPLICATE:
        original = await session.get_one(Case, target.duplicate_of_id)
        raise ValidationFailed(
            [
                FieldProblem(
                    "intoTicket",
                    f"case {target.ticket} is itself a duplicate of {original.ticket}: "
                    f"merge into {original.ticket}",
                )
            ]
        )
    case.duplicate_of_id = target.id
    _move(
        session=session,
        case=case,
        rule=rule,
        actor=actor,
        now=now,
        details={"into": target.ticket},
    )
    touch(
        session=session,
        case=target,
        type=EventType.DUPLICATE_MERGED,
        actor=actor,
        now=now,
        details={"merged": case.ticket},
    )
    await session.flush()
    return case
