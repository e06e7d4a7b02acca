"""Report intake: validate, locate, route, number and record a new case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from geoalchemy2.shape import from_shape
from shapely import Point
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import (
    FieldProblem,
    IdempotencyConflict,
    OutsideJurisdiction,
    UnknownCategory,
    ValidationFailed,
)
from domain.events import record_event
from domain.reference import find_routing_rule
from domain.report_input import CleanReport, ReportInput, clean_report
from domain.tickets import next_ticket
from domain.working_days import JAKARTA, due_at
from geo import boundaries
from geo.coordinates import LatLon
from geo.lookup import Located, Outside, active_set_id, locate
from models import (
    Case,
    CaseStatus,
    Category,
    Dinas,
    EventType,
    Holiday,
    Kelurahan,
    Partner,
    RoutingRule,
)

# Holidays further ahead than this cannot matter for any service level we set.
HOLIDAY_HORIZON = timedelta(days=400)


@dataclass(frozen=True)
class Submitted:
    case: Case
    created: bool  # False when an identical retry returned the original case


@dataclass(frozen=True)
class _Place:
    located: Located | None
    kelurahan: Kelurahan | None


async def submit_report(
    *, session: AsyncSession, report: ReportInput, now: datetime, snap_tolerance_m: float
) -> Submitted:
    clean = clean_report(report, now=now)
    await _check_partner(session=session, source=clean.source)

    # Serialise submissions with the same key: of 20 concurrent retries, one
    # creates the case and the others wait, then find it.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"submit|{clean.source}|{clean.idempotency_key}"},
    )
    fingerprint = clean.fingerprint()
    existing = await session.scalar(
        select(Case).where(
            Case.source == clean.source, Case.idempotency_key == clean.idempotency_key
        )
    )
    if existing is not None:
        if existing.request_hash != fingerprint:
            raise IdempotencyConflict(
                source=clean.source, idempotency_key=clean.idempotency_key, ticket=existing.ticket
            )
        return Submitted(case=existing, created=False)

    category = await _category(session=session, clean=clean)
    place = await _place(session=session, clean=clean, snap_tolerance_m=snap_tolerance_m)
    kelurahan = place.kelurahan
    routing = await choose_dinas(
        session=session, category=category, kelurahan=kelurahan, point=clean.location
    )
    dinas, rule, reason = routing.dinas, routing.rule, routing.reason
    if dinas.is_kelurahan_office and kelurahan is None:
        raise ValidationFailed(
            [
                FieldProblem(
                    "location",
                    f"category {category.code} is handled by the kelurahan office: "
                    "give a location or a kelurahanCode",
                )
            ]
        )

    holidays = await _holidays(session=session, now=now)
    ticket = await next_ticket(session=session, created_at=now)
    case = Case(
        ticket=ticket,
        kind=clean.kind,
        source=clean.source,
        external_id=clean.external_id,
        idempotency_key=clean.idempotency_key,
        request_hash=fingerprint,
        category_id=category.id,
        title=clean.title,
        description=clean.description,
        location=(
            from_shape(Point(clean.location.lon, clean.location.lat), srid=4326)
            if clean.location
            else None
        ),
        address=clean.address,
        occurred_at=clean.occurred_at,
        media_urls=list(clean.media_urls),
        reporter_name=clean.reporter_name,
        reporter_phone=clean.reporter_phone,
        reporter_email=clean.reporter_email,
        anonymous=clean.anonymous,
        confidential=clean.confidential,
        status=CaseStatus.RECEIVED.value,
        kelurahan_id=kelurahan.id if kelurahan else None,
        kecamatan_id=kelurahan.kecamatan_id if kelurahan else None,
        kelurahan_code=kelurahan.code if kelurahan else None,
        kecamatan_code=kelurahan.code[:8] if kelurahan else None,
        dinas_id=dinas.id,
        due_at=due_at(now, category.service_level_days or 1, holidays),
        created_at=now,
        updated_at=now,
        routing_boundary_set_id=(
            place.located.boundary_set_id if place.located else kelurahan.boundary_set_id
        )
        if kelurahan
        else None,
        routing_snapped=bool(place.located and place.located.snapped),
        routing_distance_m=place.located.distance_m if place.located else 0.0,
        routing_rule_id=rule.id if rule else None,
        routing_reason=reason,
    )
    session.add(case)
    await session.flush()
    record_event(
        session=session,
        case=case,
        type=EventType.CREATED,
        actor=f"partner:{clean.source}",
        at=now,
        details={"status": case.status, "kind": case.kind, "category": category.code},
    )
    record_event(
        session=session,
        case=case,
        type=EventType.ROUTED,
        actor="system",
        at=now,
        details={
            "kelurahan": case.kelurahan_code,
            "kecamatan": case.kecamatan_code,
            "dinas": dinas.code,
            "rule_id": case.routing_rule_id,
            "reason": reason,
            "snapped": case.routing_snapped,
            "distance_m": round(case.routing_distance_m, 1),
            "boundary_set_id": case.routing_boundary_set_id,
            "due_at": case.due_at.isoformat(),
        },
    )
    await session.flush()
    return Submitted(case=case, created=True)


@dataclass(frozen=True)
class RoutingChoice:
    dinas: Dinas
    rule: RoutingRule | None
    reason: str  # why this dinas, as stored in the case's routing_reason


async def choose_dinas(
    *, session: AsyncSession, category: Category, kelurahan: Kelurahan | None, point: LatLon | None
) -> RoutingChoice:
    """The dinas for a report of `category` at a place: the highest-priority routing
    rule that covers it, otherwise the category's default. Intake and rerouting
    share it so that a corrected location lands where a new report there would."""
    rule = await find_routing_rule(
        session=session,
        category_id=category.id,
        kecamatan_code=kelurahan.code[:8] if kelurahan else None,
        kelurahan_code=kelurahan.code if kelurahan else None,
        point=point,
    )
    dinas_id = rule.dinas_id if rule else category.default_dinas_id
    assert dinas_id is not None  # leaf categories always name a dinas (a table constraint)
    dinas = await session.get_one(Dinas, dinas_id)
    if rule:
        reason = f"routing rule {rule.id} ({rule.description}, priority {rule.priority})"
    else:
        reason = f"default dinas of category {category.code}"
    return RoutingChoice(dinas=dinas, rule=rule, reason=reason)


async def _check_partner(*, session: AsyncSession, source: str) -> None:
    active = await session.scalar(select(Partner.is_active).where(Partner.code == source))
    if not active:
        known = (
            await session.scalars(
                select(Partner.code).where(Partner.is_active).order_by(Partner.code)
            )
        ).all()
        raise ValidationFailed(
            [FieldProblem("source", f"unknown partner {source!r}; registered: {', '.join(known)}")]
        )


async def _category(*, session: AsyncSession, clean: CleanReport) -> Category:
    category = await session.scalar(
        select(Category).where(Category.code == clean.category_code, Category.is_active)
    )
    if category is None:
        raise UnknownCategory(clean.category_code)
    if category.parent_id is None:
        children = (
            await session.scalars(
                select(Category.code)
                .where(Category.parent_id == category.id, Category.is_active)
                .order_by(Category.code)
            )
        ).all()
        raise ValidationFailed(
            [
                FieldProblem(
                    "categoryCode",
                    f"{category.code} is a group; choose one of: {', '.join(children)}",
                )
            ]
        )
    if clean.kind not in category.accepted_kinds:
        raise ValidationFailed(
            [
                FieldProblem(
                    "categoryCode",
                    f"category {category.code} does not accept {clean.kind}; it accepts "
                    f"{', '.join(category.accepted_kinds)}",
                )
            ]
        )
    return category


async def _place(*, session: AsyncSession, clean: CleanReport, snap_tolerance_m: float) -> _Place:
    if clean.location is not None:
        result = await locate(
            session=session,
            lat=clean.location.lat,
            lon=clean.location.lon,
            snap_tolerance_m=snap_tolerance_m,
            field_prefix="location.",
        )
        if isinstance(result, Outside):
            raise OutsideJurisdiction(
                distance_m=result.distance_m, nearest_kelurahan_id=result.nearest_kelurahan_id
            )
        found = await boundaries.areas_by_ids(
            session=session, model=Kelurahan, ids=[result.kelurahan_id]
        )
        return _Place(located=result, kelurahan=found[result.kelurahan_id])
    if clean.kelurahan_code is not None:
        set_id = await active_set_id(session=session)
        kelurahan = await boundaries.area_by_code(
            session=session, model=Kelurahan, boundary_set_id=set_id, code=clean.kelurahan_code
        )
        if kelurahan is None:
            raise ValidationFailed(
                [
                    FieldProblem(
                        "kelurahanCode", f"no kelurahan has the code {clean.kelurahan_code!r}"
                    )
                ]
            )
        return _Place(located=None, kelurahan=kelurahan)
    return _Place(located=None, kelurahan=None)  # city-wide


async def _holidays(*, session: AsyncSession, now: datetime) -> set[date]:
    today = now.astimezone(JAKARTA).date()
    rows = await session.scalars(
        select(Holiday.day).where(Holiday.day >= today, Holiday.day <= today + HOLIDAY_HORIZON)
    )
    return set(rows)
