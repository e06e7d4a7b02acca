"""Changes that keep a case's status: the officer assigned, the dinas and place it is
routed to, comments, citizens' support and the reporter's rating."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2.shape import from_shape
from shapely import Point
from sqlalchemy import ColumnElement, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import FieldProblem, OutsideJurisdiction, ValidationFailed
from domain.intake import choose_dinas
from domain.lifecycle.transitions import (
    ASSIGNABLE,
    MAX_REASON,
    RATEABLE,
    REROUTABLE,
    SUPPORTABLE,
    lock_case,
    optional_detail,
    refusal,
    required_text,
    touch,
)
from domain.reference.dinas import dinas_by_code
from domain.report_input import _text
from geo import boundaries
from geo.coordinates import LatLon
from geo.lookup import Located, Outside, locate
from geo.shapes import point_lat_lon
from models import Case, CaseSupport, Category, Dinas, EventType, Kelurahan, Partner

MAX_COMMENT = 5_000
MAX_OFFICER = 200
MAX_CITIZEN_ID = 100
RATING_RANGE = (1, 5)


async def assign_case(
    *,
    session: AsyncSession,
    ticket: str,
    scope: ColumnElement[bool],
    actor: str,
    now: datetime,
    officer: str,
) -> Case:
    officer = required_text(officer, "officer", MAX_OFFICER, multiline=False)
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    if case.status not in ASSIGNABLE:
        raise refusal(case, "assign", "only open cases are assigned")
    before = case.assigned_to
    case.assigned_to = officer
    touch(
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
    scope: ColumnElement[bool],
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
    reason = required_text(reason, "reason", MAX_REASON, multiline=True)
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

    case = await lock_case(session=session, ticket=ticket, scope=scope)
    if case.status not in REROUTABLE:
        raise refusal(case, "reroute", "only open cases are rerouted")
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
    touch(
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
    *,
    session: AsyncSession,
    ticket: str,
    scope: ColumnElement[bool],
    actor: str,
    now: datetime,
    text: str,
) -> Case:
    text = required_text(text, "text", MAX_COMMENT, multiline=True)
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    touch(
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
    scope: ColumnElement[bool],
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
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    if case.status not in SUPPORTABLE:
        raise refusal(case, "support", "only open cases gather support")
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
    touch(
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
    scope: ColumnElement[bool],
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
    case = await lock_case(session=session, ticket=ticket, scope=scope)
    if case.status not in RATEABLE:
        raise refusal(case, "rate", "only a RESOLVED or CLOSED case is rated")
    if case.rating is not None:
        raise ValidationFailed(
            [FieldProblem("rating", f"case {case.ticket} was already rated: a case is rated once")]
        )
    case.rating = rating
    case.rating_comment = clean_comment
    touch(
        session=session,
        case=case,
        type=EventType.RATED,
        actor=actor,
        now=now,
        details={"rating": rating, **optional_detail("comment", clean_comment)},
    )
    await session.flush()
    return case
