"""The reporter's rights over their details (UU No. 27/2022): hidden from all but
POC operators, erased on request, and erased once a settled case has been kept
long enough. The case itself stays, for the record and for statistics.

An erasure leaves no copy behind: the case's columns are emptied, quotes of the
details in the case's texts and in its logged events are taken out (domain.redaction;
the event log lets the erasing transaction, and only it, rewrite those events'
details), and the erasure is recorded: who, when, why, never what. The event log
never holds the details themselves, so the live feed, which replays it, cannot
send them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.lifecycle.transitions import MAX_REASON, lock_case, required_text, touch
from domain.redaction import Redactor
from models import FINAL_STATUSES, Case, CaseEvent, EventType, ReporterErasure

# The texts of a case that people write, and may quote the reporter in.
_CASE_TEXTS = ("title", "description", "address", "resolution_note", "rating_comment")

RETENTION_ACTOR = "system"


def _retention_reason(days: int) -> str:
    return f"Masa simpan habis: kasus selesai lebih dari {days} hari (retensi otomatis)."


def has_reporter_details() -> ColumnElement[bool]:
    return or_(
        Case.reporter_name.is_not(None),
        Case.reporter_phone.is_not(None),
        Case.reporter_email.is_not(None),
    )


async def hide_reporter(
    *, session: AsyncSession, ticket: str, scope: ColumnElement[bool], actor: str, now: datetime
) -> Case:
    """From now on only POC operators see who reported (the `anonymous` flag); a
    case already anonymous is returned as it is."""
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    if case.anonymous:
        return case
    case.anonymous = True
    touch(
        session=session, case=case, type=EventType.REPORTER_HIDDEN, actor=actor, now=now, details={}
    )
    await session.flush()
    return case


async def erase_reporter(
    *,
    session: AsyncSession,
    ticket: str,
    scope: ColumnElement[bool],
    actor: str,
    now: datetime,
    reason: str,
) -> Case:
    """Erases the reporter's details for good; a case erased before is returned as it is."""
    reason = required_text(reason, "reason", MAX_REASON, multiline=True)
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    if case.reporter_erased_at is None:
        await _erase(session=session, cases=[case], actor=actor, now=now, reasons=[reason])
    return case


async def erase_expired_reporters(
    *, session: AsyncSession, now: datetime, retention_days: int, batch_size: int
) -> list[int]:
    """Erases the reporters of settled cases unchanged for `retention_days`, at most
    `batch_size` of them, oldest first; returns their case ids.

    Exactly once however many processes sweep: the cases are locked with SKIP
    LOCKED, and one erased meanwhile by another process no longer matches once
    its row is read again under the lock."""
    cutoff = now - timedelta(days=retention_days)
    cases = (
        await session.scalars(
            select(Case)
            .where(
                # Spelled like the partial index ix_case_reporter_retention's
                # predicate, so that the index applies.
                Case.status.in_(bindparam("final", sorted(FINAL_STATUSES), literal_execute=True)),
                has_reporter_details(),
                Case.updated_at < cutoff,
            )
            .order_by(Case.updated_at, Case.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).all()
    if cases:
        reason = _retention_reason(retention_days)
        await _erase(
            session=session,
            cases=cases,
            actor=RETENTION_ACTOR,
            now=now,
            reasons=[reason] * len(cases),
            automatic=True,
        )
    return [case.id for case in cases]


async def _erase(
    *,
    session: AsyncSession,
    cases: Sequence[Case],
    actor: str,
    now: datetime,
    reasons: Sequence[str],
    automatic: bool = False,
) -> None:
    redactors = {
        case.id: Redactor.for_reporter(
            name=case.reporter_name, phone=case.reporter_phone, email=case.reporter_email
        )
        for case in cases
    }
    # The record first: the event log's trigger lets the transaction that wrote
    # it rewrite that case's events. A reason quoting the reporter is cleaned too.
    for case, reason in zip(cases, reasons, strict=True):
        session.add(
            ReporterErasure(
                case_id=case.id,
                erased_at=now,
                actor=actor,
                reason=redactors[case.id].text(reason),
                automatic=automatic,
            )
        )
    await session.flush()
    columns = Case.__table__.c
    for case in cases:
        redactor = redactors[case.id]
        case.reporter_name = case.reporter_phone = case.reporter_email = None
        case.reporter_erased_at = now
        for name in _CASE_TEXTS:
            value = getattr(case, name)
            if value is not None:
                cleaned = redactor.text(value)
                limit = getattr(columns[name].type, "length", None)
                setattr(case, name, cleaned[:limit] if limit else cleaned)
    events = await session.scalars(
        select(CaseEvent).where(CaseEvent.case_id.in_(redactors)).order_by(CaseEvent.id)
    )
    for event in events:
        cleaned_details = redactors[event.case_id].json(event.details)
        if cleaned_details != event.details:
            event.details = cleaned_details
    for case in cases:
        touch(
            session=session,
            case=case,
            type=EventType.REPORTER_ERASED,
            actor=actor,
            now=now,
            details={"automatic": True} if automatic else {},
        )
    await session.flush()
