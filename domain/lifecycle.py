"""The case lifecycle: one transition table, and every change made to a case after intake.

Each change locks the case row (SELECT … FOR UPDATE) before it looks at the status,
so of two concurrent changes the second sees what the first did. It then updates
`updated_at` and appends its event in the same transaction. Input is checked
before anything changes: a refusal leaves the session as it was. Functions flush,
never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from geoalchemy2.shape import from_shape
from shapely import Point
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import (
    CaseNotFound,
    FieldProblem,
    InvalidTransition,
    OutsideJurisdiction,
    ReopenWindowClosed,
    ValidationFailed,
)
from domain.events import record_event
from domain.intake import HOLIDAY_HORIZON, choose_dinas
from domain.reference import dinas_by_code
from domain.report_input import MAX_MEDIA_URL, _media_url_problem, _text
from domain.working_days import JAKARTA, due_at
from geo import boundaries
from geo.coordinates import LatLon
from geo.lookup import Located, Outside, locate
from geo.shapes import point_lat_lon
from models import (
    OPEN_STATUSES,
    Case,
    CaseStatus,
    CaseSupport,
    Category,
    Dinas,
    EventType,
    Holiday,
    Kelurahan,
    Partner,
    RejectionReason,
)

MAX_REASON = 1_000
MAX_NOTE = 5_000
MAX_COMMENT = 5_000
MAX_OFFICER = 200
MAX_CITIZEN_ID = 100
MAX_EVIDENCE_URLS = 10
RATING_RANGE = (1, 5)


class CaseAction(StrEnum):
    VERIFY = "VERIFY"
    HOLD = "HOLD"
    RESUME = "RESUME"
    REJECT = "REJECT"
    START = "START"
    RESOLVE = "RESOLVE"
    CLOSE = "CLOSE"
    REOPEN = "REOPEN"
    MARK_DUPLICATE = "MARK_DUPLICATE"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[CaseStatus]
    target: CaseStatus | None  # None: back to the status the case was held from
    event: EventType
    verb: str  # "cannot <verb> case …"


_S = CaseStatus

# The one table of the workflow: what each action needs and where it leads. The
# checks and every list of allowed actions are read from it.
TRANSITIONS: Final[Mapping[CaseAction, Transition]] = MappingProxyType(
    {
        CaseAction.VERIFY: Transition(
            frozenset({_S.RECEIVED}), _S.VERIFIED, EventType.VERIFIED, "verify"
        ),
        CaseAction.HOLD: Transition(
            frozenset({_S.RECEIVED, _S.VERIFIED}), _S.ON_HOLD, EventType.HELD, "hold"
        ),
        CaseAction.RESUME: Transition(frozenset({_S.ON_HOLD}), None, EventType.RESUMED, "resume"),
        CaseAction.REJECT: Transition(
            frozenset({_S.RECEIVED, _S.VERIFIED, _S.ON_HOLD}),
            _S.REJECTED,
            EventType.REJECTED,
            "reject",
        ),
        CaseAction.START: Transition(
            frozenset({_S.VERIFIED, _S.REOPENED}),
            _S.IN_PROGRESS,
            EventType.STARTED,
            "start work on",
        ),
        CaseAction.RESOLVE: Transition(
            frozenset({_S.IN_PROGRESS}), _S.RESOLVED, EventType.RESOLVED, "resolve"
        ),
        CaseAction.CLOSE: Transition(
            frozenset({_S.RESOLVED}), _S.CLOSED, EventType.CLOSED, "close"
        ),
        # Within the reopen window only; see `reopen_case`.
        CaseAction.REOPEN: Transition(
            frozenset({_S.RESOLVED}), _S.REOPENED, EventType.REOPENED, "reopen"
        ),
        CaseAction.MARK_DUPLICATE: Transition(
            frozenset(OPEN_STATUSES), _S.DUPLICATE, EventType.MARKED_DUPLICATE, "mark as duplicate"
        ),
    }
)

# Changes that keep the status, and the statuses they are made in.
ASSIGNABLE: Final = frozenset(OPEN_STATUSES)
REROUTABLE: Final = frozenset(OPEN_STATUSES)
SUPPORTABLE: Final = frozenset(OPEN_STATUSES)
RATEABLE: Final = frozenset({_S.RESOLVED, _S.CLOSED})


def allowed_actions(status: CaseStatus | str) -> tuple[CaseAction, ...]:
    """The actions the table allows from `status`, in the order of `CaseAction`."""
    current = CaseStatus(status)
    return tuple(action for action, rule in TRANSITIONS.items() if current in rule.sources)


def _refusal(case: Case, attempted: str, why: str = "") -> InvalidTransition:
    return InvalidTransition(
        ticket=case.ticket,
        status=case.status,
        attempted=attempted,
        allowed=[action.value for action in allowed_actions(case.status)],
        why=why,
    )


def _check(case: Case, action: CaseAction) -> Transition:
    rule = TRANSITIONS[action]
    if CaseStatus(case.status) not in rule.sources:
        raise _refusal(case, rule.verb)
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


def _touch(
    *,
    session: AsyncSession,
    case: Case,
    type: EventType,
    actor: str,
    now: datetime,
    details: Mapping[str, Any],
) -> None:
    case.updated_at = now
    record_event(session=session, case=case, type=type, actor=actor, at=now, details=dict(details))


def normalise_ticket(ticket: str) -> str:
    return ticket.strip().upper()


async def lock_case(*, session: AsyncSession, ticket: str) -> Case:
    """The case, its row locked until the transaction ends, read afresh."""
    case = await session.scalar(
        select(Case)
        .where(Case.ticket == normalise_ticket(ticket))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if case is None:
        raise CaseNotFound(ticket.strip())
    return case


def _required_text(value: str | None, field: str, limit: int, *, multiline: bool) -> str:
    problems: list[FieldProblem] = []
    text = _text(value, field, limit, problems, multiline=multiline, required=True)
    if problems:
        raise ValidationFailed(problems)
    assert text is not None
    return text


def _optional_text(value: str | None, field: str, limit: int, *, multiline: bool) -> str | None:
    problems: list[FieldProblem] = []
    text = _text(value, field, limit, problems, multiline=multiline)
    if problems:
        raise ValidationFailed(problems)
    return text


def _optional(name: str, value: str | None) -> dict[str, str]:
    return {name: value} if value is not None else {}


# Status changes


async def verify_case(*, session: AsyncSession, ticket: str, actor: str, now: datetime) -> Case:
    case = await lock_case(session=session, ticket=ticket)
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
    *, session: AsyncSession, ticket: str, actor: str, now: datetime, reason: str | None
) -> Case:
    reason = _optional_text(reason, "reason", MAX_REASON, multiline=True)
    case = await lock_case(session=session, ticket=ticket)
    rule = _check(case, CaseAction.HOLD)
    case.held_from_status = case.status
    _move(
        session=session,
        case=case,
        rule=rule,
        actor=actor,
        now=now,
        details=_optional("reason", reason),
    )
    await session.flush()
    return case


async def resume_case(*, session: AsyncSession, ticket: str, actor: str, now: datetime) -> Case:
    """Back to the status the case was held from."""
    case = await lock_case(session=session, ticket=ticket)
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
    actor: str,
    now: datetime,
    reason: RejectionReason,
    note: str | None,
) -> Case:
    note = _optional_text(note, "note", MAX_NOTE, multiline=True)
    case = await lock_case(session=session, ticket=ticket)
    rule = _check(case, CaseAction.REJECT)
    case.rejection_reason = reason.value
    _move(
        session=session,
        case=case,
        rule=rule,
        actor=actor,
        now=now,
        details={"reason": reason.value, **_optional("note", note)},
    )
    await session.flush()
    return case


async def start_work(*, session: AsyncSession, ticket: str, actor: str, now: datetime) -> Case:
    case = await lock_case(session=session, ticket=ticket)
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
    case = await lock_case(session=session, ticket=ticket)
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
    *, session: AsyncSession, ticket: str, actor: str, now: datetime
) -> Case:
    case = await lock_case(session=session, ticket=ticket)
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
    actor: str,
    now: datetime,
    reason: str,
    window_working_days: int,
) -> Case:
    """The reporter disputes the fix. The last resolution (note, evidence, time) is
    kept on the case until the next one replaces it."""
    reason = _required_text(reason, "reason", MAX_REASON, multiline=True)
    case = await lock_case(session=session, ticket=ticket)
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
    *, session: AsyncSession, ticket: str, into_ticket: str, actor: str, now: datetime
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
            .where(Case.ticket.in_([duplicate_ticket, target_ticket]))
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
    _touch(
        session=session,
        case=target,
        type=EventType.DUPLICATE_MERGED,
        actor=actor,
        now=now,
        details={"merged": case.ticket},
    )
    await session.flush()
    return case


# Changes that keep the status


async def assign_case(
    *, session: AsyncSession, ticket: str, actor: str, now: datetime, officer: str
) -> Case:
    officer = _required_text(officer, "officer", MAX_OFFICER, multiline=False)
    case = await lock_case(session=session, ticket=ticket)
    if case.status not in ASSIGNABLE:
        raise _refusal(case, "assign", "only open cases are assigned")
    before = case.assigned_to
    case.assigned_to = officer
    _touch(
        session=session,
        case=case,
        type=EventType.ASSIGNED,
        actor=actor,
        now=now,
        details={"from": before, "to": officer},
    )
    await session.flush()
    return case


async def _routing_snapshot(*, session: AsyncSession, case: Case) -> dict[str, Any]:
    dinas = await session.get_one(Dinas, case.dinas_id)
    location = point_lat_lon(case.location) if case.location is not None else None
    return {
        "dinas": dinas.code,
        "kelurahan": case.kelurahan_code,
        "kecamatan": case.kecamatan_code,
        "location": {"lat": location.lat, "lon": location.lon} if location else None,
        "rule_id": case.routing_rule_id,
        "snapped": case.routing_snapped,
        "distance_m": round(case.routing_distance_m, 1),
        "boundary_set_id": case.routing_boundary_set_id,
        "reason": case.routing_reason,
    }


async def reroute_case(
    *,
    session: AsyncSession,
    ticket: str,
    actor: str,
    now: datetime,
    reason: str,
    dinas_code: str | None,
    location: tuple[float, float] | None,
    snap_tolerance_m: float,
) -> Case:
    """Send a case to another dinas, and/or correct its location (lat, lon).

    A corrected location is looked up again like a new report's; when no dinas is
    named it is routed again too, by the same rules as intake. The due time stays:
    a routing mistake does not extend the promise made to the reporter.
    """
    reason = _required_text(reason, "reason", MAX_REASON, multiline=True)
    if dinas_code is None and location is None:
        message = "give a dinasCode, a location, or both"
        raise ValidationFailed(
            [FieldProblem("dinasCode", message), FieldProblem("location", message)]
        )
    named: Dinas | None = None
    if dinas_code is not None:
        named = await dinas_by_code(session=session, code=dinas_code)
        if named is None:
            raise ValidationFailed(
                [FieldProblem("dinasCode", f"no dinas has the code {dinas_code.strip()!r}")]
            )
        if not named.is_active:
            raise ValidationFailed([FieldProblem("dinasCode", f"dinas {named.code} is inactive")])
    located: Located | None = None
    if location is not None:
        found = await locate(
            session=session,
            lat=location[0],
            lon=location[1],
            snap_tolerance_m=snap_tolerance_m,
            field_prefix="location.",
        )
        if isinstance(found, Outside):
            raise OutsideJurisdiction(
                distance_m=found.distance_m, nearest_kelurahan_id=found.nearest_kelurahan_id
            )
        located = found

    case = await lock_case(session=session, ticket=ticket)
    if case.status not in REROUTABLE:
        raise _refusal(case, "reroute", "only open cases are rerouted")
    if named is not None and located is None and named.id == case.dinas_id:
        raise ValidationFailed(
            [FieldProblem("dinasCode", f"case {case.ticket} is already with {named.code}")]
        )
    kelurahan_id = located.kelurahan_id if located else case.kelurahan_id
    kelurahan: Kelurahan | None = None
    if kelurahan_id is not None:
        areas = await boundaries.areas_by_ids(session=session, model=Kelurahan, ids=[kelurahan_id])
        kelurahan = areas[kelurahan_id]
    if named is not None and named.is_kelurahan_office and kelurahan is None:
        raise ValidationFailed(
            [
                FieldProblem(
                    "dinasCode",
                    f"{named.code} handles the cases of one kelurahan and case {case.ticket} "
                    "has none: give a location too",
                )
            ]
        )

    before = await _routing_snapshot(session=session, case=case)
    if located is not None:
        assert location is not None and kelurahan is not None
        case.location = from_shape(Point(location[1], location[0]), srid=4326)
        case.kelurahan_id = kelurahan.id
        case.kecamatan_id = kelurahan.kecamatan_id
        case.kelurahan_code = kelurahan.code
        case.kecamatan_code = kelurahan.code[:8]
        case.routing_boundary_set_id = located.boundary_set_id
        case.routing_snapped = located.snapped
        case.routing_distance_m = located.distance_m
    if named is not None:
        case.dinas_id = named.id
        case.routing_rule_id = None
        case.routing_reason = f"rerouted to {named.code}: {reason}"
    else:
        assert location is not None  # a dinas, a location or both
        choice = await choose_dinas(
            session=session,
            category=await session.get_one(Category, case.category_id),
            kelurahan=kelurahan,
            point=LatLon(lat=location[0], lon=location[1]),
        )
        case.dinas_id = choice.dinas.id
        case.routing_rule_id = choice.rule.id if choice.rule else None
        case.routing_reason = choice.reason
    after = await _routing_snapshot(session=session, case=case)
    _touch(
        session=session,
        case=case,
        type=EventType.REROUTED,
        actor=actor,
        now=now,
        details={"reason": reason, "before": before, "after": after},
    )
    await session.flush()
    return case


async def comment_case(
    *, session: AsyncSession, ticket: str, actor: str, now: datetime, text: str
) -> Case:
    text = _required_text(text, "text", MAX_COMMENT, multiline=True)
    case = await lock_case(session=session, ticket=ticket)
    _touch(
        session=session,
        case=case,
        type=EventType.COMMENTED,
        actor=actor,
        now=now,
        details={"text": text},
    )
    await session.flush()
    return case


async def support_case(
    *,
    session: AsyncSession,
    ticket: str,
    actor: str,
    now: datetime,
    source: str,
    citizen_id: str,
) -> Case:
    """A citizen of a partner app has the same problem: counted once per (partner,
    citizen). A repeat changes nothing and returns the case as it is."""
    problems: list[FieldProblem] = []
    citizen = _text(
        citizen_id, "citizenId", MAX_CITIZEN_ID, problems, multiline=False, required=True
    )
    partner = source.strip()
    if not await session.scalar(select(Partner.is_active).where(Partner.code == partner)):
        problems.append(FieldProblem("source", f"unknown partner {partner!r}"))
    if problems:
        raise ValidationFailed(problems)
    assert citizen is not None
    case = await lock_case(session=session, ticket=ticket)
    if case.status not in SUPPORTABLE:
        raise _refusal(case, "support", "only open cases gather support")
    added = await session.scalar(
        insert(CaseSupport)
        .values(case_id=case.id, supporter=f"{partner}:{citizen}", at=now)
        .on_conflict_do_nothing()
        .returning(CaseSupport.case_id)
    )
    if added is None:
        return case
    case.support_count += 1
    # The citizen id stays out of the history, which is public.
    _touch(
        session=session,
        case=case,
        type=EventType.SUPPORTED,
        actor=actor,
        now=now,
        details={"source": partner, "support_count": case.support_count},
    )
    await session.flush()
    return case


async def rate_case(
    *,
    session: AsyncSession,
    ticket: str,
    actor: str,
    now: datetime,
    rating: int,
    comment: str | None,
) -> Case:
    problems: list[FieldProblem] = []
    low, high = RATING_RANGE
    if not low <= rating <= high:
        problems.append(FieldProblem("rating", f"must be between {low} and {high}"))
    clean_comment = _text(comment, "comment", MAX_COMMENT, problems, multiline=True)
    if problems:
        raise ValidationFailed(problems)
    case = await lock_case(session=session, ticket=ticket)
    if case.status not in RATEABLE:
        raise _refusal(case, "rate", "only a RESOLVED or CLOSED case is rated")
    if case.rating is not None:
        raise ValidationFailed(
            [FieldProblem("rating", f"case {case.ticket} was already rated: a case is rated once")]
        )
    case.rating = rating
    case.rating_comment = clean_comment
    _touch(
        session=session,
        case=case,
        type=EventType.RATED,
        actor=actor,
        now=now,
        details={"rating": rating, **_optional("comment", clean_comment)},
    )
    await session.flush()
    return case
