"""The one statement that records a new case: its ticket number, the case and
its CREATED and ROUTED events, written only while the reference data intake
decided with is still current and the idempotency key is free."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.errors import HolidayCalendarMissing
from domain.reference_cache import ReferenceData
from domain.report_input import CleanReport
from domain.tickets import take_number, ticket_month, ticket_text
from domain.working_days import due_at
from models import Case, CaseEvent, CaseStatus, Category, Dinas, EventType, RoutingRule
from models.cases import ReferenceVersion


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
class Written:
    case: Case | None  # None: nothing was written
    reference_version: int
    number_taken: bool
    earlier_case_id: int | None  # the key's case, committed before the statement began


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
def _write_statement() -> Select[Any]:
    """Number, case and events in one statement, written only while the reference
    data decided with is current and the key is free. Built once per process:
    composing it costs more than running it.

    A concurrent duplicate writes nothing; the number it took is then given
    back in the same transaction."""
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
    # Only a concurrent submission with the same key, committed while this
    # statement waited for the counter, meets this conflict.
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


async def write_case(
    *,
    session: AsyncSession,
    clean: CleanReport,
    fingerprint: str,
    now: datetime,
    data: ReferenceData,
    category: Category,
    place: Place | None,
    routing: RoutingChoice,
) -> Written:
    due = due_at(now, category.service_level_days or 1, data.holidays)
    for year in range(now.year, due.year + 1):
        if year not in data.holiday_years:
            raise HolidayCalendarMissing(year)
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
    row = tuple((await session.execute(_write_statement(), parameters)).one())
    written_case = row[0]
    version, number_taken, earlier_id = row[-3:]
    return Written(
        case=written_case,
        reference_version=int(version),
        number_taken=number_taken is not None,
        earlier_case_id=earlier_id,
    )
