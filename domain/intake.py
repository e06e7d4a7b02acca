"""Report intake: validate, locate, route, number and record a new case.

A submission decides everything it can before it writes: the reference data
comes from memory (`domain.reference_cache`), the kelurahan from the boundary
lookup. Then one statement takes the ticket number, writes the case and its
CREATED and ROUTED events, and tells whether the reference data it decided with
was still current and whether the idempotency key was already taken. The
ticket counter, which every submission must lock until it commits, is thereby
locked for that one statement and the commit only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import (
    FieldProblem,
    IdempotencyConflict,
    OutsideJurisdiction,
    UnknownCategory,
    ValidationFailed,
)
from domain.case_record import Place, RoutingChoice, write_case
from domain.events import EVENTS_WRITTEN
from domain.reference.routing_rules import find_routing_rule
from domain.reference_cache import ReferenceCache, ReferenceData, current_version
from domain.report_input import CleanReport, ReportInput, clean_report
from domain.tickets import give_back_number, ticket_month
from geo import boundaries, rules
from geo.boundary_index import BoundaryIndex
from geo.coordinates import LatLon
from geo.lookup import Outside, active_set_id, locate
from models import (
    Case,
    Category,
    Dinas,
    Kelurahan,
    RoutingRule,
)
from models.cases import ReferenceVersion

# Holidays further ahead than this cannot matter for any service level we set.
HOLIDAY_HORIZON = timedelta(days=400)


@dataclass(frozen=True)
class Submitted:
    case: Case
    created: bool  # False when an identical retry returned the original case
    # The new case's dinas as intake saw it, so that answering needs no read;
    # None for a retry.
    dinas: Dinas | None = None


async def submit_report(
    *,
    session: AsyncSession,
    report: ReportInput,
    now: datetime,
    snap_tolerance_m: float,
    reference: ReferenceCache | None = None,
    boundary_index: BoundaryIndex | None = None,
) -> Submitted:
    clean = clean_report(report, now=now)
    fingerprint = clean.fingerprint()
    cache = reference or ReferenceCache()
    data = await cache.get(session=session)
    place: Place | None = None
    located = False
    while True:
        if clean.source not in data.active_partners:
            if await current_version(session=session) != data.version:
                data = await cache.reload(session=session)
                continue
            known = ", ".join(sorted(data.active_partners))
            raise ValidationFailed(
                [FieldProblem("source", f"unknown partner {clean.source!r}; registered: {known}")]
            )
        try:
            category = _category(data=data, clean=clean)
            if not located:
                place = await _place(
                    session=session,
                    clean=clean,
                    snap_tolerance_m=snap_tolerance_m,
                    boundary_index=boundary_index,
                )
                located = True
            routing = await route_report(
                session=session, data=data, category=category, place=place, point=clean.location
            )
            if routing.dinas.is_kelurahan_office and place is None:
                raise ValidationFailed(
                    [
                        FieldProblem(
                            "location",
                            f"category {category.code} is handled by the kelurahan office: "
                            "give a location or a kelurahanCode",
                        )
                    ]
                )
        except (ValidationFailed, UnknownCategory, OutsideJurisdiction):
            # A retry of a report taken earlier gets its case back, whatever a
            # check would say today; a refusal made with outdated reference data
            # is made again with the current data.
            version, earlier_id = await _version_and_earlier(session, clean)
            if earlier_id is not None:
                return await _earlier(session, clean, fingerprint, earlier_id)
            if version != data.version:
                data = await cache.reload(session=session)
                continue
            raise

        written = await write_case(
            session=session,
            clean=clean,
            fingerprint=fingerprint,
            now=now,
            data=data,
            category=category,
            place=place,
            routing=routing,
        )
        if written.case is not None:
            session.info[EVENTS_WRITTEN] = True
            return Submitted(case=written.case, created=True, dinas=routing.dinas)
        if written.number_taken:
            # A concurrent submission with the same key committed its case while
            # this statement waited for the counter: give the number back.
            await give_back_number(session=session, month=ticket_month(now))
            earlier_id = await _earlier_id(session, clean)
            assert earlier_id is not None  # the only conflict the insert skips
            return await _earlier(session, clean, fingerprint, earlier_id)
        if written.earlier_case_id is not None:
            return await _earlier(session, clean, fingerprint, written.earlier_case_id)
        assert written.reference_version != data.version
        data = await cache.reload(session=session)  # decided with outdated data


def _same_key(clean: CleanReport) -> Any:
    return and_(Case.source == clean.source, Case.idempotency_key == clean.idempotency_key)


async def _earlier_id(session: AsyncSession, clean: CleanReport) -> int | None:
    return await session.scalar(select(Case.id).where(_same_key(clean)))


async def _version_and_earlier(session: AsyncSession, clean: CleanReport) -> tuple[int, int | None]:
    row = (
        await session.execute(
            select(
                select(ReferenceVersion.version).scalar_subquery(),
                select(Case.id).where(_same_key(clean)).scalar_subquery(),
            )
        )
    ).one()
    return int(row[0] or 0), row[1]


async def _earlier(
    session: AsyncSession, clean: CleanReport, fingerprint: str, case_id: int
) -> Submitted:
    case = await session.get_one(Case, case_id)
    if case.request_hash != fingerprint:
        raise IdempotencyConflict(
            source=clean.source, idempotency_key=clean.idempotency_key, ticket=case.ticket
        )
    return Submitted(case=case, created=False)


def _category(*, data: ReferenceData, clean: CleanReport) -> Category:
    category = data.active_categories.get(clean.category_code)
    if category is None:
        raise UnknownCategory(clean.category_code)
    if category.parent_id is None:
        children = sorted(
            c.code for c in data.active_categories.values() if c.parent_id == category.id
        )
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


async def _place(
    *,
    session: AsyncSession,
    clean: CleanReport,
    snap_tolerance_m: float,
    boundary_index: BoundaryIndex | None,
) -> Place | None:
    if clean.location is not None:
        result = await locate(
            session=session,
            lat=clean.location.lat,
            lon=clean.location.lon,
            snap_tolerance_m=snap_tolerance_m,
            field_prefix="location.",
            index=boundary_index,
        )
        if isinstance(result, Outside):
            raise OutsideJurisdiction(
                distance_m=result.distance_m, nearest_kelurahan_id=result.nearest_kelurahan_id
            )
        return Place(
            kelurahan_id=result.kelurahan_id,
            kelurahan_code=result.kelurahan_code,
            kecamatan_id=result.kecamatan_id,
            boundary_set_id=result.boundary_set_id,
            snapped=result.snapped,
            distance_m=result.distance_m,
        )
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
        return Place(
            kelurahan_id=kelurahan.id,
            kelurahan_code=kelurahan.code,
            kecamatan_id=kelurahan.kecamatan_id,
            boundary_set_id=kelurahan.boundary_set_id,
            snapped=False,
            distance_m=0.0,
        )
    return None  # city-wide


def _reason(category: Category, rule: RoutingRule | None) -> str:
    if rule:
        return f"routing rule {rule.id} ({rule.description}, priority {rule.priority})"
    return f"default dinas of category {category.code}"


async def route_report(
    *,
    session: AsyncSession,
    data: ReferenceData,
    category: Category,
    place: Place | None,
    point: LatLon | None,
) -> RoutingChoice:
    """`choose_dinas` from memory: the same rules tried in the same order. A point
    too close to the edge of a rule's area to be sure goes to PostGIS."""
    rule: RoutingRule | None = None
    for candidate in data.rules.get(category.id, ()):
        if place is not None and (
            place.kecamatan_code in candidate.kecamatan_codes
            or place.kelurahan_code in candidate.kelurahan_codes
        ):
            rule = candidate.rule
            break
        if point is not None and candidate.area is not None:
            covered = rules.covers_for_certain(candidate.area, point)
            if covered is None:
                rule = await find_routing_rule(
                    session=session,
                    category_id=category.id,
                    kecamatan_code=place.kecamatan_code if place else None,
                    kelurahan_code=place.kelurahan_code if place else None,
                    point=point,
                )
                break
            if covered:
                rule = candidate.rule
                break
    dinas_id = rule.dinas_id if rule else category.default_dinas_id
    assert dinas_id is not None  # leaf categories always name a dinas (a table constraint)
    dinas = data.dinas.get(dinas_id)
    if dinas is None:  # a rule PostGIS chose may name a dinas made since the data was read
        dinas = await session.get_one(Dinas, dinas_id)
    return RoutingChoice(dinas=dinas, rule=rule, reason=_reason(category, rule))


async def choose_dinas(
    *, session: AsyncSession, category: Category, kelurahan: Kelurahan | None, point: LatLon | None
) -> RoutingChoice:
    """The dinas for a report of `category` at a place: the highest-priority routing
    rule that covers it, otherwise the category's default. Rerouting uses it, so
    that a corrected location lands where a new report there would; intake asks
    the same of memory (`route_report`)."""
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
    return RoutingChoice(dinas=dinas, rule=rule, reason=_reason(category, rule))
