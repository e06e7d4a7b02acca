from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry
from sqlalchemy import ColumnElement
from strawberry import relay
from strawberry.scalars import JSON

from domain import case_queries
from domain.access import NotAuthenticated, case_scope, may_see_reporter, sees_case
from domain.case_queries import CaseFilter
from geo.shapes import point_lat_lon
from models import RUNNING_STATUSES
from models import Case as CaseModel
from models import CaseEvent as CaseEventModel
from schema.boundary_set import BoundarySet, load_boundary_set
from schema.case_filter import CaseFilterInput
from schema.case_status import ESCALATION_LEVELS, STATUS_LABELS, CaseStatus, EscalationLevel
from schema.category import Category, ReportKind
from schema.context import Context
from schema.dinas import Dinas
from schema.kecamatan import Kecamatan
from schema.kelurahan import Kelurahan, load_kelurahan
from schema.routing_rule import RoutingRule
from schema.scalars import GeoJSON

if TYPE_CHECKING:
    from schema.case_actions import CaseAction, PossibleDuplicate, RejectionReason


@strawberry.type(description="A WGS 84 point, as plain numbers and as GeoJSON.")
class GeoPoint:
    lat: float
    lon: float

    @strawberry.field(description="The point as a GeoJSON Point (longitude first).")
    def geojson(self) -> GeoJSON:
        return GeoJSON({"type": "Point", "coordinates": [self.lon, self.lat]})


@strawberry.type(description="Why a case went where it went.")
class RoutingDecision:
    boundary_set_id: strawberry.Private[int | None]
    rule_id: strawberry.Private[int | None]
    snapped: bool = strawberry.field(
        description="The location was in no kelurahan and was snapped to the nearest one."
    )
    distance_m: float = strawberry.field(description="Metres snapped; 0 when not snapped.")
    reason: str = strawberry.field(description="How the dinas was chosen.")

    @strawberry.field(description="The boundary set the location was looked up in.")
    async def boundary_set(self, info: strawberry.Info[Context, None]) -> BoundarySet | None:
        if self.boundary_set_id is None:
            return None
        return await load_boundary_set(info, self.boundary_set_id)

    @strawberry.field(description="The routing rule that chose the dinas; null for the default.")
    async def rule(self, info: strawberry.Info[Context, None]) -> RoutingRule | None:
        if self.rule_id is None:
            return None
        model = await info.context.loaders.routing_rule.load(self.rule_id)
        return RoutingRule.from_model(model) if model else None


@strawberry.type(description="One entry of a case's append-only history.")
class CaseEvent:
    id: strawberry.ID
    type: str
    actor: str
    at: datetime
    details: JSON

    @classmethod
    def from_model(cls, model: CaseEventModel) -> CaseEvent:
        return cls(
            id=strawberry.ID(str(model.id)),
            type=model.type,
            actor=model.actor,
            at=model.at,
            details=cast(JSON, model.details),
        )


@strawberry.type(description="Who reported. Personal data.")
class Reporter:
    name: str | None
    phone: str | None = strawberry.field(description="E.164, e.g. +6281234567890.")
    email: str | None


@strawberry.type(description="A report from a partner app and its handling.")
class Case:
    model: strawberry.Private[CaseModel]

    async def visible_to_caller(self, info: strawberry.Info[Context, None]) -> bool:
        dinas = await info.context.loaders.dinas.load(self.model.dinas_id)
        return sees_case(
            info.context.principal,
            source=self.model.source,
            kecamatan_code=self.model.kecamatan_code,
            kelurahan_code=self.model.kelurahan_code,
            dinas_code=dinas.code if dinas else "",
        )

    @strawberry.field(
        description="The reporter, for the staff handling the case and the partner that "
        "submitted it; for an anonymous report, only for POC operators. Null otherwise."
    )
    async def reporter(self, info: strawberry.Info[Context, None]) -> Reporter | None:
        m = self.model
        if not may_see_reporter(info.context.principal, anonymous_report=m.anonymous):
            return None
        if not await self.visible_to_caller(info):
            return None
        if m.reporter_name is None and m.reporter_phone is None and m.reporter_email is None:
            return None
        # Who saw personal data is recorded (UU No. 27/2022): by the API, in this
        # operation's transaction; for live feeds, when a socket subscribes.
        info.context.operation.saw_reporter(m.id, info.path, info.operation)
        return Reporter(name=m.reporter_name, phone=m.reporter_phone, email=m.reporter_email)

    @strawberry.field(
        description="When the reporter's details were erased, on request or because the "
        "case was settled longer ago than they are kept; null while they are kept."
    )
    def reporter_erased_at(self) -> datetime | None:
        return self.model.reporter_erased_at

    @strawberry.field(description="Human-readable ticket number, e.g. BKS-2611-000123.")
    def ticket(self) -> str:
        return self.model.ticket

    @strawberry.field
    def kind(self) -> ReportKind:
        return ReportKind(self.model.kind)

    @strawberry.field(description="The partner app the report came from (POT, SOROT, ...).")
    def source(self) -> str:
        return self.model.source

    @strawberry.field(description="The partner's own id for the report, if it sent one.")
    def external_id(self) -> str | None:
        return self.model.external_id

    @strawberry.field
    def title(self) -> str:
        return self.model.title

    @strawberry.field
    def description(self) -> str:
        return self.model.description

    @strawberry.field
    def location(self) -> GeoPoint | None:
        if self.model.location is None:
            return None
        point = point_lat_lon(self.model.location)
        return GeoPoint(lat=point.lat, lon=point.lon)

    @strawberry.field
    def address(self) -> str | None:
        return self.model.address

    @strawberry.field
    def occurred_at(self) -> datetime | None:
        return self.model.occurred_at

    @strawberry.field(description="Photo or video links (https).")
    def media_urls(self) -> list[str]:
        return list(self.model.media_urls)

    @strawberry.field
    def anonymous(self) -> bool:
        return self.model.anonymous

    @strawberry.field
    def confidential(self) -> bool:
        return self.model.confidential

    @strawberry.field
    def status(self) -> CaseStatus:
        return CaseStatus(self.model.status)

    @strawberry.field(description="Indonesian label of the status, for screens.")
    def status_label(self) -> str:
        return STATUS_LABELS[self.model.status]

    @strawberry.field(description="When the service level ends (working days, WIB).")
    def due_at(self) -> datetime:
        return self.model.due_at

    @strawberry.field(description="Open, not on hold, and past its due time.")
    def overdue(self) -> bool:
        return self.model.status in RUNNING_STATUSES and self.model.due_at < datetime.now(UTC)

    @strawberry.field(description="How far the sweeper has escalated the case past its due time.")
    def escalation_level(self) -> EscalationLevel:
        return ESCALATION_LEVELS[self.model.escalation_level]

    @strawberry.field(description="When the case reached its escalation level; null on time.")
    def escalated_at(self) -> datetime | None:
        return self.model.escalated_at

    @strawberry.field
    def created_at(self) -> datetime:
        return self.model.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.model.updated_at

    @strawberry.field(description="Null for a city-wide report.")
    async def kelurahan(self, info: strawberry.Info[Context, None]) -> Kelurahan | None:
        if self.model.kelurahan_id is None:
            return None
        return await load_kelurahan(info, self.model.kelurahan_id)

    @strawberry.field(description="Null for a city-wide report.")
    async def kecamatan(self, info: strawberry.Info[Context, None]) -> Kecamatan | None:
        if self.model.kecamatan_id is None:
            return None
        model = await info.context.loaders.kecamatan.load(self.model.kecamatan_id)
        return Kecamatan.from_model(model) if model else None

    @strawberry.field(description="The department (or kelurahan office) handling the case.")
    async def dinas(self, info: strawberry.Info[Context, None]) -> Dinas:
        model = await info.context.loaders.dinas.load(self.model.dinas_id)
        if model is None:
            raise LookupError(f"dinas {self.model.dinas_id} vanished")
        return Dinas.from_model(model)

    @strawberry.field
    async def category(self, info: strawberry.Info[Context, None]) -> Category:
        model = await info.context.loaders.category.load(self.model.category_id)
        if model is None:
            raise LookupError(f"category {self.model.category_id} vanished")
        return Category.from_model(model)

    @strawberry.field
    def routing(self) -> RoutingDecision:
        m = self.model
        return RoutingDecision(
            boundary_set_id=m.routing_boundary_set_id,
            rule_id=m.routing_rule_id,
            snapped=m.routing_snapped,
            distance_m=round(m.routing_distance_m, 1),
            reason=m.routing_reason,
        )

    @strawberry.field(description="Every change to the case, oldest first.")
    async def history(self, info: strawberry.Info[Context, None]) -> list[CaseEvent]:
        events = await info.context.loaders.case_events.load(self.model.id)
        return [CaseEvent.from_model(e) for e in events]

    @strawberry.field(description="The status changes the current status allows.")
    def allowed_actions(
        self,
    ) -> list[Annotated[CaseAction, strawberry.lazy("schema.case_actions")]]:
        from schema.case_actions import allowed_actions  # that module imports this one

        return allowed_actions(self.model)

    @strawberry.field(description="The officer handling the case, once assigned.")
    def assigned_to(self) -> str | None:
        return self.model.assigned_to

    @strawberry.field(description="Why the case was rejected; null unless REJECTED.")
    def rejection_reason(
        self,
    ) -> Annotated[RejectionReason, strawberry.lazy("schema.case_actions")] | None:
        from schema.case_actions import RejectionReason  # that module imports this one

        reason = self.model.rejection_reason
        return RejectionReason(reason) if reason else None

    @strawberry.field(description="What was done, from the latest resolution.")
    def resolution_note(self) -> str | None:
        return self.model.resolution_note

    @strawberry.field(description="https links to photos of the work, from the latest resolution.")
    def evidence_urls(self) -> list[str]:
        return list(self.model.evidence_urls)

    @strawberry.field(description="When the case was last resolved.")
    def resolved_at(self) -> datetime | None:
        return self.model.resolved_at

    @strawberry.field
    def closed_at(self) -> datetime | None:
        return self.model.closed_at

    @strawberry.field(description="The case this one duplicates; null unless DUPLICATE.")
    async def duplicate_of(self, info: strawberry.Info[Context, None]) -> Case | None:
        if self.model.duplicate_of_id is None:
            return None
        async with info.context.db() as session:
            model = await session.get_one(CaseModel, self.model.duplicate_of_id)
        target = Case(model=model)
        return target if await target.visible_to_caller(info) else None

    @strawberry.field(description="Citizens who said they have this problem too.")
    def support_count(self) -> int:
        return self.model.support_count

    @strawberry.field(description="The reporter's rating of the handling, 1 to 5.")
    def rating(self) -> int | None:
        return self.model.rating

    @strawberry.field(
        description="Open cases of the same category within the category's duplicate radius, "
        "reported in the last days (PATRIOT_DUPLICATE_WINDOW_DAYS), nearest first; none "
        "for a case without a location."
    )
    async def possible_duplicates(
        self,
        info: strawberry.Info[Context, None],
        limit: Annotated[int, strawberry.argument(description="At most 100.")] = 10,
    ) -> list[Annotated[PossibleDuplicate, strawberry.lazy("schema.case_actions")]]:
        from schema.case_actions import possible_duplicates  # that module imports this one

        found = await possible_duplicates(info, self.model, limit)
        return [d for d in found if await d.case.visible_to_caller(info)]


def page_info(page: case_queries.CasePage, cursors: list[str]) -> relay.PageInfo:
    return relay.PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


@strawberry.type(description="A page of cases, newest first (Relay cursor connection).")
# The Relay connection spec asks nothing of a node; Strawberry types the
# generic as bound to relay.Node, which a case (known by its ticket) is not.
class CaseConnection(relay.Connection[Case]):  # type: ignore[type-var]
    case_filter: strawberry.Private[CaseFilter]

    @strawberry.field(description="How many cases match the filter in all pages.")
    async def total_count(self, info: strawberry.Info[Context, None]) -> int:
        async with info.context.db() as session:
            return await case_queries.count_cases(
                session=session,
                case_filter=self.case_filter,
                scope=case_scope(info.context.principal),
            )


def _signed_in_scope(info: strawberry.Info[Context, None], what: str) -> ColumnElement[bool]:
    principal = info.context.principal
    if principal.is_anonymous:
        raise NotAuthenticated(
            f"`{what}` (anonymous callers may use `public{what[0].upper()}{what[1:]}`)"
        )
    return case_scope(principal)


@strawberry.type
class CaseQuery:
    @strawberry.field(
        description="One case by its ticket number, in full, for staff whose scope covers it "
        "and the partner that submitted it; null otherwise. Anyone may use `publicCase`."
    )
    async def case(self, info: strawberry.Info[Context, None], ticket: str) -> Case | None:
        scope = _signed_in_scope(info, "case")
        async with info.context.db() as session:
            model = await case_queries.case_by_ticket(session=session, ticket=ticket, scope=scope)
        return Case(model=model) if model else None

    @strawberry.field(
        description="Cases in the caller's scope matching a filter, newest first, at most 100 "
        "a page. Anyone may use `publicCases`."
    )
    async def cases(
        self,
        info: strawberry.Info[Context, None],
        filter: CaseFilterInput | None = None,
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")] = 20,
        after: str | None = None,
    ) -> CaseConnection:
        scope = _signed_in_scope(info, "cases")
        case_filter = filter.to_domain() if filter else CaseFilter()
        async with info.context.db() as session:
            page = await case_queries.list_cases(
                session=session, case_filter=case_filter, scope=scope, first=first, after=after
            )
        edges = [
            relay.Edge(cursor=case_queries.encode_cursor(c.id), node=Case(model=c))  # type: ignore[type-var]
            for c in page.cases
        ]
        return CaseConnection(
            edges=edges,
            page_info=page_info(page, [e.cursor for e in edges]),
            case_filter=case_filter,
        )
