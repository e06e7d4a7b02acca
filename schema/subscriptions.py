"""Live feeds for the POC screens (graphql-transport-ws)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import replace
from enum import Enum

import strawberry

from domain.access import NotAuthenticated, case_scope, sees_case
from domain.case_counts import CountGroup, GroupCount, open_case_counts
from domain.case_queries import CaseFilter
from domain.event_feed import FeedFilter, FeedItem, FeedPosition, head, read_after
from live.audit import record_subscriber
from live.feed import FellBehind
from live.sharing import FeedRoot
from schema.case import Case, CaseEvent
from schema.case_filter import BBoxInput, CaseFilterInput
from schema.case_status import CaseStatus
from schema.category import ReportKind
from schema.context import Context

REPLAY_BATCH = 500


@strawberry.input(description="All given conditions must hold; lists match any of their values.")
class CaseEventFilterInput:
    kelurahan_codes: list[str] | None = None
    kecamatan_codes: list[str] | None = None
    dinas_codes: list[str] | None = None
    statuses: list[CaseStatus] | None = strawberry.field(
        default=None, description="The case's status after the event."
    )
    category_codes: list[str] | None = strawberry.field(
        default=None, description="Category codes; a group code selects its categories."
    )
    kinds: list[ReportKind] | None = None
    bbox: BBoxInput | None = None

    def to_domain(self) -> FeedFilter:
        return FeedFilter(
            kelurahan_codes=frozenset(self.kelurahan_codes or ()),
            kecamatan_codes=frozenset(self.kecamatan_codes or ()),
            dinas_codes=frozenset(self.dinas_codes or ()),
            statuses=frozenset(s.value for s in self.statuses or ()),
            category_codes=frozenset(self.category_codes or ()),
            kinds=frozenset(k.value for k in self.kinds or ()),
            bbox=(self.bbox.west, self.bbox.south, self.bbox.east, self.bbox.north)
            if self.bbox
            else None,
        )


@strawberry.type(description="One event of a case, as it was committed.")
class CaseEventUpdate:
    cursor: str = strawberry.field(
        description="Pass as `after` when reconnecting to receive what was missed."
    )
    event: CaseEvent
    case: Case = strawberry.field(description="The case as it is now.")


@strawberry.enum
class CaseCountGroup(Enum):
    STATUS = "STATUS"
    DINAS = "DINAS"
    KELURAHAN = "KELURAHAN"
    KECAMATAN = "KECAMATAN"
    CATEGORY = "CATEGORY"


@strawberry.type
class CaseCount:
    key: str | None = strawberry.field(description="Code of the group; null for city-wide cases.")
    label: str | None
    count: int


@strawberry.type(description="Open cases counted by one grouping.")
class OpenCaseCounts:
    group_by: CaseCountGroup
    total: int
    groups: list[CaseCount]


def _update(item: FeedItem) -> CaseEventUpdate:
    return CaseEventUpdate(
        cursor=item.position.cursor(),
        event=CaseEvent.from_model(item.event),
        case=Case(model=item.case),
    )


@strawberry.type
class LiveQuery:
    @strawberry.field(
        description="The position of the newest event: subscribe to `caseEvents` with it as "
        "`after`, and keep it until an event brings a newer one, so that a dropped connection "
        "resumes without a gap even before the first event arrived."
    )
    async def case_events_cursor(self, info: strawberry.Info[Context, None]) -> str:
        if info.context.principal.is_anonymous:
            raise NotAuthenticated("caseEventsCursor")
        async with info.context.db() as session:
            return (await head(session=session)).cursor()


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every event of matching cases as it commits, in order. Reconnect with "
        "`after` set to the last cursor seen to receive every missed event first, then live "
        "ones, with no gap and no repeat."
    )
    async def case_events(
        self,
        info: strawberry.Info[Context, None],
        filter: CaseEventFilterInput | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[CaseEventUpdate, None]:
        context = info.context
        live = context.services.live
        principal = context.principal
        feed_filter = replace(
            filter.to_domain() if filter else FeedFilter(),
            visible=lambda item: sees_case(
                principal,
                source=item.case.source,
                kecamatan_code=item.case.kecamatan_code,
                kelurahan_code=item.case.kelurahan_code,
                dinas_code=item.dinas_code,
            ),
        )
        # Set when the live feed runs this execution for a group of sockets or
        # for one that left its group (see live/handler.py).
        root = info.root_value if isinstance(info.root_value, FeedRoot) else None
        if root is None and info.query is not None:
            # Strawberry runs it for this one socket; members of a shared execution
            # are recorded as they join (live/handler.py).
            await record_subscriber(
                session_factory=context.session_factory, principal=principal, query=info.query
            )
        if after:
            resume_from: FeedPosition | None = FeedPosition.from_cursor(after)
        else:
            resume_from = root.resume_after if root else None

        def update(item: FeedItem, *, more_ready: bool) -> CaseEventUpdate:
            if root is not None:
                root.position = item.position
                root.more_ready = more_ready
            context.fresh_loaders()
            return _update(item)

        listener = live.register(feed_filter)
        try:
            last = resume_from or listener.start
            if resume_from is not None:
                async for item, more_ready in _replay(context, feed_filter, last, listener.start):
                    last = item.position
                    yield update(item, more_ready=more_ready)
            while True:
                try:
                    item = await listener.next()
                except FellBehind:
                    caught_up_to = live.position
                    listener.reset()
                    async for item, more_ready in _replay(context, feed_filter, last, caught_up_to):
                        last = item.position
                        yield update(item, more_ready=more_ready)
                    continue
                if item.position <= last:
                    continue
                last = item.position
                yield update(item, more_ready=listener.has_waiting())
        finally:
            live.unregister(listener)

    @strawberry.subscription(
        description="Open cases counted by a grouping: the current counts at once, then a "
        "fresh set whenever they change (a few per second at most)."
    )
    async def open_case_counts(
        self,
        info: strawberry.Info[Context, None],
        group_by: CaseCountGroup,
        filter: CaseFilterInput | None = None,
    ) -> AsyncGenerator[OpenCaseCounts, None]:
        context = info.context
        live = context.services.live
        case_filter = filter.to_domain() if filter else CaseFilter()
        listener = live.register(FeedFilter(), wants_items=False)
        min_interval = context.settings.live_counts_min_interval_s
        previous: list[GroupCount] | None = None
        try:
            while True:
                listener.changed.clear()
                async with context.db() as session:
                    counts = await open_case_counts(
                        session=session,
                        group_by=CountGroup(group_by.value),
                        case_filter=case_filter,
                        scope=case_scope(context.principal),
                    )
                if counts != previous:
                    previous = counts
                    yield OpenCaseCounts(
                        group_by=group_by,
                        total=sum(c.count for c in counts),
                        groups=[CaseCount(key=c.key, label=c.label, count=c.count) for c in counts],
                    )
                await listener.changed.wait()
                await asyncio.sleep(min_interval)  # coalesce bursts of changes
        finally:
            live.unregister(listener)


async def _replay(
    context: Context, feed_filter: FeedFilter, after: FeedPosition, up_to: FeedPosition
) -> AsyncGenerator[tuple[FeedItem, bool], None]:
    """The matching events after `after` up to `up_to`, each with whether more
    of them were read with it."""
    position = after
    while position < up_to:
        async with context.db() as session:
            items = await read_after(
                session=session, after=position, up_to=up_to, limit=REPLAY_BATCH
            )
        matching = [item for item in items if feed_filter.matches(item)]
        for index, item in enumerate(matching, start=1):
            yield item, index < len(matching)
        if len(items) < REPLAY_BATCH:
            return
        position = items[-1].position
