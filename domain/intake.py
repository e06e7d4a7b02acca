"""Report intake: validate, locate, route, number and record a new case.

A submission decides everything it can before it writes: the reference data
comes from memory (`domain.reference_cache`), the kelurahan from the boundary
lookup. Then one statement takes the ticket number, writes the case and its
CREATED and ROUTED events, and tells whether the reference data it decided with
was still current and whether the idempotency key was already taken. The
ticket counter, which every submission must lock until it commits, is thereby
locked for that one statement and the commit only.

When the API runs the submission in autocommit (`EACH_STATEMENT_COMMITS` in the
session's info), that statement is its own transaction: the counter is locked
while PostgreSQL runs and commits it, and no round trip of the server's adds to
that. Every read before it is then its own snapshot, which changes nothing: the
write checks the reference version and the key itself. A duplicate that races
in while the statement waits for the counter then fails the whole statement
(the key's unique constraint), so the number it took is never committed.
In autocommit the statement also runs on the driver's connection directly
(`_DirectStatement`), without SQLAlchemy's execution around it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from geoalchemy2 import WKTElement
from shapely import Point
from sqlalchemy import (
    BigInteger,
    BindParameter,
    Select,
    String,
    Text,
    and_,
    bindparam,
    exists,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import instance_dict

from core.errors import (
    FieldProblem,
    IdempotencyConflict,
    OutsideJurisdiction,
    UnknownCategory,
    ValidationFailed,
)
from domain.events import EVENTS_WRITTEN
from domain.reference.routing_rules import find_routing_rule
from domain.reference_cache import ReferenceCache, ReferenceData, current_version
from domain.report_input import CleanReport, ReportInput, clean_report
from domain.tickets import give_back_number, take_number, ticket_month, ticket_text
from domain.working_days import due_at
from geo import boundaries, rules
from geo.boundary_index import BoundaryIndex
from geo.coordinates import LatLon
from geo.lookup import Outside, active_set_id, locate
from models import (
    Case,
    CaseEvent,
    CaseStatus,
    Category,
    Dinas,
    EventType,
    Kelurahan,
    RoutingRule,
)
from models.cases import ReferenceVersion

# Set in a session's info when each of its statements commits on its own.
EACH_STATEMENT_COMMITS = "patriot.each_statement_commits"

# Holidays further ahead than this cannot matter for any service level we set.
HOLIDAY_HORIZON = timedelta(days=400)


@dataclass(frozen=True)
class Submitted:
    case: Case
    created: bool  # False when an identical retry returned the original case
    # The new case's dinas as intake saw it, so that answering needs no read;
    # None for a retry.
    dinas: Dinas | None = None


@dataclass(frozen=True)
class Place:
    """Where a report is, for the case's columns; None stands for city-wide."""

    kelurahan_id: int
    kelurahan_code: str
    kecamatan_id: int
    boundary_set_id: int
    snapped: bool
    distance_m: float

    @property
    def kecamatan_code(self) -> str:
        return self.kelurahan_code[:8]


@dataclass(frozen=True)
class RoutingChoice:
    dinas: Dinas
    rule: RoutingRule | None
    reason: str  # why this dinas, as stored in the case's routing_reason


@dataclass(frozen=True)
class _Written:
    case: Case | None  # None: nothing was written
    reference_version: int
    number_taken: bool
    earlier_case_id: int | None  # the key's case, committed before the statement began


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

        each_statement_commits = bool(session.info.get(EACH_STATEMENT_COMMITS))
        try:
            written = await _write(
                session=session,
                each_statement_commits=each_statement_commits,
                clean=clean,
                fingerprint=fingerprint,
                now=now,
                data=data,
                category=category,
                place=place,
                routing=routing,
            )
        except (IntegrityError, asyncpg.UniqueViolationError):
            # In autocommit a concurrent duplicate that committed while the
            # statement waited for the counter fails it whole, number included
            # (asyncpg's own error: that statement runs on the driver's connection).
            if not each_statement_commits:
                raise
            earlier_id = await _earlier_id(session, clean)
            if earlier_id is None:
                raise
            return await _earlier(session, clean, fingerprint, earlier_id)
        if written.case is not None:
            session.info[EVENTS_WRITTEN] = True
            return Submitted(case=written.case, created=True, dinas=routing.dinas)
        if written.number_taken:
            assert not each_statement_commits  # that statement has no ON CONFLICT
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


# The columns intake sets; the others take their defaults.
_CASE_COLUMNS = (
    "kind",
    "source",
    "external_id",
    "idempotency_key",
    "request_hash",
    "category_id",
    "title",
    "description",
    "location",
    "address",
    "occurred_at",
    "media_urls",
    "reporter_name",
    "reporter_phone",
    "reporter_email",
    "anonymous",
    "confidential",
    "status",
    "kelurahan_id",
    "kecamatan_id",
    "kelurahan_code",
    "kecamatan_code",
    "dinas_id",
    "due_at",
    "created_at",
    "updated_at",
    "routing_boundary_set_id",
    "routing_snapped",
    "routing_distance_m",
    "routing_rule_id",
    "routing_reason",
)


def _param(name: str) -> BindParameter[Any]:
    return bindparam(name, type_=Case.__table__.c[name].type)


@functools.cache
def _write_statement(*, skip_duplicate: bool) -> Select[Any]:
    """Number, case and events in one statement, written only while the reference
    data decided with is current and the key is free. Built once per process:
    composing it costs more than running it.

    `skip_duplicate`: a concurrent duplicate writes nothing, where the number can
    be given back in the same transaction; otherwise it fails the statement."""
    same_key = and_(
        Case.source == _param("source"), Case.idempotency_key == _param("idempotency_key")
    )
    decided_with_current_data = exists().where(
        ReferenceVersion.version == bindparam("reference_version", type_=BigInteger)
    )
    month = bindparam("month", type_=String)
    number = take_number(
        month=month, when=and_(decided_with_current_data, ~exists().where(same_key))
    )
    insert_case = insert(Case).from_select(
        [*_CASE_COLUMNS, "ticket"],
        select(
            *(_param(name) for name in _CASE_COLUMNS),
            ticket_text(month=month, number=number.c.last_number),
        ),
    )
    if skip_duplicate:
        # Only a concurrent submission with the same key, committed while this
        # statement waited for the counter, gets here.
        insert_case = insert_case.on_conflict_do_nothing(
            index_elements=[Case.source, Case.idempotency_key]
        )
    new_case = insert_case.returning(*Case.__table__.c).cte("new_case")
    event_at = CaseEvent.__table__.c.at.type
    events = (
        insert(CaseEvent)
        .from_select(
            ["case_id", "type", "actor", "at", "details"],
            union_all(
                *(
                    select(
                        new_case.c.id,
                        literal(event_type.value),
                        bindparam(f"{prefix}_actor", type_=Text),
                        bindparam("created_at", type_=event_at),
                        bindparam(f"{prefix}_details", type_=JSONB),
                    )
                    for event_type, prefix in (
                        (EventType.CREATED, "created"),
                        (EventType.ROUTED, "routed"),
                    )
                )
            ),
        )
        .cte("new_events")
    )
    case = aliased(Case, new_case)
    return (
        select(
            case,
            select(ReferenceVersion.version).scalar_subquery(),
            select(number.c.last_number).scalar_subquery(),
            select(Case.id).where(same_key).scalar_subquery(),
        )
        .select_from(ReferenceVersion)
        .outerjoin(case, true())
        .add_cte(number, new_case, events)
    )


class _DirectStatement:
    """`_write_statement` compiled once for the asyncpg dialect and run on the
    driver's connection itself, for a session in autocommit (there is no
    transaction for SQLAlchemy to track): SQLAlchemy's execution (its cursor
    adapter, result processing and ORM loading) cost more CPU than asyncpg's
    own work. The values go through the same bind and result processors, and
    the case comes back as the same columns, in a Case of no session."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        # (name, fixed value or _GIVEN, bind processor) per positional parameter
        self.parameters: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            fixed = _GIVEN if bind.required else bind.effective_value
            self.parameters.append(
                (name, fixed, bind.type.dialect_impl(dialect).bind_processor(dialect))
            )
        mapper = sa_inspect(Case)
        self.case_class = mapper.class_manager
        self.case_attributes = [
            mapper.get_property_by_column(column).key for column in Case.__table__.c
        ]
        self.dialect = dialect
        self.result_types = [
            column.type.dialect_impl(dialect) for column in statement.selected_columns
        ]
        # Some result processors depend on the column's PostgreSQL type (floats):
        # known once the statement was prepared.
        self.result_processors: list[Callable[[Any], Any] | None] | None = None

    async def one(self, session: AsyncSession, values: dict[str, Any]) -> tuple[Any, ...]:
        arguments = []
        for name, fixed, process in self.parameters:
            value = values[name] if fixed is _GIVEN else fixed
            arguments.append(process(value) if process is not None else value)
        connection = await (await session.connection()).get_raw_connection()
        driver: asyncpg.Connection = connection.driver_connection
        if self.result_processors is None:
            prepared = await driver.prepare(self.sql)
            self.result_processors = [
                type_.result_processor(self.dialect, attribute.type.oid)
                for type_, attribute in zip(
                    self.result_types, prepared.get_attributes(), strict=True
                )
            ]
        record = await driver.fetchrow(self.sql, *arguments)
        assert record is not None  # the statement selects one row, from reference_version
        return tuple(
            process(value) if process is not None else value
            for process, value in zip(self.result_processors, record, strict=True)
        )

    def case(self, row: tuple[Any, ...]) -> Case | None:
        columns = row[: len(self.case_attributes)]
        if columns[0] is None:
            return None  # nothing was written
        # Filled as the ORM's own loading fills a new instance: Case(**values)
        # sets each attribute through the instrumentation, 25 times slower.
        case: Case = self.case_class.new_instance()
        instance_dict(case).update(zip(self.case_attributes, columns, strict=True))
        return case


_GIVEN = object()  # a parameter whose value each execution gives


@functools.cache
def _direct_write_statement(dialect: Dialect) -> _DirectStatement:
    return _DirectStatement(_write_statement(skip_duplicate=False), dialect)


async def _write(
    *,
    session: AsyncSession,
    each_statement_commits: bool,
    clean: CleanReport,
    fingerprint: str,
    now: datetime,
    data: ReferenceData,
    category: Category,
    place: Place | None,
    routing: RoutingChoice,
) -> _Written:
    due = due_at(now, category.service_level_days or 1, data.holidays)
    rule_id = routing.rule.id if routing.rule else None
    values: dict[str, Any] = {
        "kind": clean.kind.value,
        "source": clean.source,
        "external_id": clean.external_id,
        "idempotency_key": clean.idempotency_key,
        "request_hash": fingerprint,
        "category_id": category.id,
        "title": clean.title,
        "description": clean.description,
        # The text PostGIS is given either way (a WKBElement's bind processor
        # turns it into this), without going through WKB and back.
        "location": (
            WKTElement(Point(clean.location.lon, clean.location.lat).wkt, srid=4326)
            if clean.location
            else None
        ),
        "address": clean.address,
        "occurred_at": clean.occurred_at,
        "media_urls": list(clean.media_urls),
        "reporter_name": clean.reporter_name,
        "reporter_phone": clean.reporter_phone,
        "reporter_email": clean.reporter_email,
        "anonymous": clean.anonymous,
        "confidential": clean.confidential,
        "status": CaseStatus.RECEIVED.value,
        "kelurahan_id": place.kelurahan_id if place else None,
        "kecamatan_id": place.kecamatan_id if place else None,
        "kelurahan_code": place.kelurahan_code if place else None,
        "kecamatan_code": place.kecamatan_code if place else None,
        "dinas_id": routing.dinas.id,
        "due_at": due,
        "created_at": now,
        "updated_at": now,
        "routing_boundary_set_id": place.boundary_set_id if place else None,
        "routing_snapped": place.snapped if place else False,
        "routing_distance_m": place.distance_m if place else 0.0,
        "routing_rule_id": rule_id,
        "routing_reason": routing.reason,
    }
    parameters = {
        **values,
        "reference_version": data.version,
        "month": ticket_month(now),
        "created_actor": f"partner:{clean.source}",
        "created_details": {
            "status": values["status"],
            "kind": values["kind"],
            "category": category.code,
        },
        "routed_actor": "system",
        "routed_details": {
            "kelurahan": values["kelurahan_code"],
            "kecamatan": values["kecamatan_code"],
            "dinas": routing.dinas.code,
            "rule_id": rule_id,
            "reason": routing.reason,
            "snapped": values["routing_snapped"],
            "distance_m": round(values["routing_distance_m"], 1),
            "boundary_set_id": values["routing_boundary_set_id"],
            "due_at": due.isoformat(),
        },
    }
    if each_statement_commits:
        direct = _direct_write_statement(session.get_bind().dialect)
        row = await direct.one(session, parameters)
        written_case = direct.case(row)
    else:
        row = tuple(
            (await session.execute(_write_statement(skip_duplicate=True), parameters)).one()
        )
        written_case = row[0]
    version, number_taken, earlier_id = row[-3:]
    return _Written(
        case=written_case,
        reference_version=int(version),
        number_taken=number_taken is not None,
        earlier_case_id=earlier_id,
    )
