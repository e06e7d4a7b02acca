"""Statistics for the mayor and the POC wall: flows, backlog, heatmap and choropleth."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated

import strawberry
from sqlalchemy import ColumnElement
from strawberry.scalars import JSON

from domain.access import NotAuthenticated, case_scope
from domain.case_queries import CaseFilter
from domain.stats import backlog, flows, grouping, maps
from geo.case_filters import BBox
from schema.case import Case
from schema.case_filter import BBoxInput, CaseFilterInput
from schema.case_status import STATUS_LABELS
from schema.context import Context
from schema.kecamatan import SIMPLIFY_DESCRIPTION, checked_tolerance

RANGE_DESCRIPTION = "Start of the range (inclusive), with a time zone offset."
RANGE_END_DESCRIPTION = "End of the range (exclusive), with a time zone offset; at most 5 years."


@strawberry.enum(description="How to group statistics. DAY and WEEK are in Jakarta time (WIB).")
class StatsGroupBy(Enum):
    KELURAHAN = "KELURAHAN"
    KECAMATAN = "KECAMATAN"
    DINAS = "DINAS"
    CATEGORY = "CATEGORY"
    STATUS = "STATUS"
    SOURCE = "SOURCE"
    DAY = "DAY"
    WEEK = "WEEK"


@strawberry.enum(description="How to group the open cases of the backlog.")
class BacklogGroupBy(Enum):
    KELURAHAN = "KELURAHAN"
    KECAMATAN = "KECAMATAN"
    DINAS = "DINAS"
    CATEGORY = "CATEGORY"
    STATUS = "STATUS"
    SOURCE = "SOURCE"


@strawberry.enum(description="The value a choropleth shows per kelurahan.")
class ChoroplethMetric(Enum):
    OPEN = "OPEN"
    OVERDUE = "OVERDUE"
    RECEIVED = "RECEIVED"
    RESOLVED_ON_TIME_SHARE = "RESOLVED_ON_TIME_SHARE"


@strawberry.type(description="Statistics of one group; see `caseStats` for the definitions.")
class CaseStatsGroup:
    key: str | None = strawberry.field(
        description="Code of the group (kelurahan, kecamatan, dinas, category, status or "
        "partner code; for DAY and WEEK the ISO date the bucket starts on, WIB); null for "
        "the total and for cases without the attribute (a city-wide report has no kelurahan)."
    )
    label: str | None = strawberry.field(description="Name of the group, in Indonesian.")
    bucket_start: datetime | None = strawberry.field(
        description="DAY and WEEK: when the bucket starts (00:00 WIB; weeks start on Monday)."
    )
    received: int = strawberry.field(description="Cases created in the range.")
    open: int = strawberry.field(description="Of the cases received, those open now.")
    overdue: int = strawberry.field(
        description="Of the cases received, those open now and past their due time."
    )
    resolved: int = strawberry.field(
        description="Cases whose latest resolution falls in the range and still stands "
        "(RESOLVED or CLOSED; a reopened case counts again once resolved again)."
    )
    resolved_on_time: int = strawberry.field(
        description="Of the cases resolved, those resolved no later than their due time."
    )
    on_time_share: float | None = strawberry.field(
        description="resolvedOnTime / resolved, 0 to 1; null when nothing was resolved."
    )
    median_hours_to_resolve: float | None = strawberry.field(
        description="Median time from creation to resolution of the cases resolved, in "
        "working hours (each working day counts 24 hours; weekends and holidays none)."
    )
    p90_hours_to_resolve: float | None = strawberry.field(
        description="90th percentile of the same, in working hours."
    )

    @classmethod
    def from_domain(cls, group: flows.GroupStats, group_by: StatsGroupBy) -> CaseStatsGroup:
        label = group.label
        if group_by is StatsGroupBy.STATUS and group.key is not None:
            label = STATUS_LABELS.get(group.key)
        return cls(
            key=group.key,
            label=label,
            bucket_start=group.bucket_start,
            received=group.received,
            open=group.open,
            overdue=group.overdue,
            resolved=group.resolved,
            resolved_on_time=group.resolved_on_time,
            on_time_share=round(group.on_time_share, 4)
            if group.on_time_share is not None
            else None,
            median_hours_to_resolve=group.median_hours_to_resolve,
            p90_hours_to_resolve=group.p90_hours_to_resolve,
        )


@strawberry.type(description="Case statistics over a time range, grouped.")
class CaseStats:
    group_by: StatsGroupBy
    from_: datetime = strawberry.field(name="from")
    to: datetime
    total: CaseStatsGroup = strawberry.field(description="All groups together.")
    groups: list[CaseStatsGroup] = strawberry.field(
        description="DAY and WEEK: every bucket of the range in order, empty ones too; "
        "others: by cases received, most first."
    )


@strawberry.type(description="Open cases now, of one group.")
class BacklogGroup:
    key: str | None
    label: str | None
    open: int
    overdue: int = strawberry.field(description="Open, not on hold, and past their due time.")
    oldest_due_at: datetime | None = strawberry.field(
        description="The earliest due time among them."
    )


def _filter(value: CaseFilterInput | None) -> CaseFilter:
    return value.to_domain() if value else CaseFilter()


def _scope(info: strawberry.Info[Context, None], what: str) -> ColumnElement[bool]:
    """Statistics count only the cases the caller may read: the city for the mayor and
    the POC, a kecamatan for its camat, a dinas for its own cases, a partner's own."""
    principal = info.context.principal
    if principal.is_anonymous:
        raise NotAuthenticated(f"`{what}`")
    return case_scope(principal)


@strawberry.type
class StatsQuery:
    @strawberry.field(
        description="Counts and resolution times per group over [from, to), of the cases the "
        "caller may read (sign-in required). `received`, "
        "`open` and `overdue` concern the cases created in the range (open and overdue as of "
        "now); `resolved` and the resolution times the cases resolved in the range."
    )
    async def case_stats(
        self,
        info: strawberry.Info[Context, None],
        group_by: StatsGroupBy,
        from_: Annotated[datetime, strawberry.argument(name="from", description=RANGE_DESCRIPTION)],
        to: Annotated[datetime, strawberry.argument(description=RANGE_END_DESCRIPTION)],
        filter: CaseFilterInput | None = None,
    ) -> CaseStats:
        scope = _scope(info, "caseStats")
        async with info.context.db() as session:
            result = await flows.case_stats(
                session=session,
                group_by=grouping.StatsGroup(group_by.value),
                case_filter=_filter(filter),
                scope=scope,
                start=from_,
                end=to,
                now=datetime.now(UTC),
            )
        return CaseStats(
            group_by=group_by,
            from_=result.start,
            to=result.end,
            total=CaseStatsGroup.from_domain(result.total, group_by),
            groups=[CaseStatsGroup.from_domain(g, group_by) for g in result.groups],
        )

    @strawberry.field(
        description="Every open case now, whenever it was received, grouped; most overdue "
        "groups first."
    )
    async def case_backlog(
        self,
        info: strawberry.Info[Context, None],
        group_by: BacklogGroupBy,
        filter: CaseFilterInput | None = None,
    ) -> list[BacklogGroup]:
        scope = _scope(info, "caseBacklog")
        async with info.context.db() as session:
            groups = await backlog.case_backlog(
                session=session,
                group_by=grouping.StatsGroup(group_by.value),
                case_filter=_filter(filter),
                scope=scope,
                now=datetime.now(UTC),
            )
        return [
            BacklogGroup(
                key=g.key,
                label=STATUS_LABELS.get(g.key or "")
                if group_by is BacklogGroupBy.STATUS
                else g.label,
                open=g.open,
                overdue=g.overdue,
                oldest_due_at=g.oldest_due_at,
            )
            for g in groups
        ]

    @strawberry.field(description="Open cases past their due time, the longest overdue first.")
    async def overdue_cases(
        self,
        info: strawberry.Info[Context, None],
        filter: CaseFilterInput | None = None,
        first: Annotated[int, strawberry.argument(description="1 to 100.")] = 10,
    ) -> list[Case]:
        scope = _scope(info, "overdueCases")
        async with info.context.db() as session:
            models = await backlog.most_overdue_cases(
                session=session,
                case_filter=_filter(filter),
                scope=scope,
                now=datetime.now(UTC),
                first=first,
            )
        return [Case(model=m) for m in models]

    @strawberry.field(
        description="Cases with a location inside the box, counted in hexagons "
        "(PostGIS ST_HexagonGrid in the UTM zone of the box, EPSG:32748 for Bekasi): a GeoJSON "
        "FeatureCollection of the cells holding at least one case, each with the property "
        "`count`. Use the filter's createdFrom/createdTo for a time range."
    )
    async def heatmap(
        self,
        info: strawberry.Info[Context, None],
        bbox: BBoxInput,
        cell_m: Annotated[
            float,
            strawberry.argument(
                description="Edge length of a hexagon in metres (also its circumradius), "
                "50 to 5000; the box may hold at most 50,000 cells."
            ),
        ],
        filter: CaseFilterInput | None = None,
    ) -> JSON:
        scope = _scope(info, "heatmap")
        async with info.context.db() as session:
            collection = await maps.case_heatmap(
                session=session,
                bbox=BBox(bbox.west, bbox.south, bbox.east, bbox.north),
                cell_m=cell_m,
                case_filter=_filter(filter),
                scope=scope,
            )
        return JSON(collection)

    @strawberry.field(
        description="Every kelurahan of the active boundary set with the metric's value over "
        "[from, to) (as defined in `caseStats`): a GeoJSON FeatureCollection with the "
        "properties code, name, kecamatan and value (null for a share with nothing resolved)."
    )
    async def kelurahan_choropleth(
        self,
        info: strawberry.Info[Context, None],
        metric: ChoroplethMetric,
        from_: Annotated[datetime, strawberry.argument(name="from", description=RANGE_DESCRIPTION)],
        to: Annotated[datetime, strawberry.argument(description=RANGE_END_DESCRIPTION)],
        filter: CaseFilterInput | None = None,
        simplify_m: Annotated[
            float | None, strawberry.argument(description=SIMPLIFY_DESCRIPTION)
        ] = 20.0,
    ) -> JSON:
        tolerance = checked_tolerance(simplify_m)
        scope = _scope(info, "kelurahanChoropleth")
        async with info.context.db() as session:
            collection = await maps.kelurahan_choropleth(
                session=session,
                metric=maps.ChoroplethMetric(metric.value),
                case_filter=_filter(filter),
                scope=scope,
                start=from_,
                end=to,
                now=datetime.now(UTC),
                simplify_m=tolerance,
            )
        return JSON(collection)
