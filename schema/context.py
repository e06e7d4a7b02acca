from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from graphql import FieldNode, InlineFragmentNode, OperationDefinitionNode, SelectionNode
from graphql.pyutils import Path
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from core.settings import Settings
from domain import case_queries
from domain.access import ANONYMOUS, Action, Principal
from domain.access_log import Sighting
from domain.reference_cache import ReferenceCache
from geo import boundaries
from geo.boundary_index import BoundaryIndex, BoundaryIndexKeeper
from live.feed import LiveFeed
from live.groups import SharedSubscriptions
from live.pubsub import PubSub
from models import BoundarySet, CaseEvent, Category, Dinas, Kecamatan, Kelurahan, RoutingRule

ReferenceRow = TypeVar("ReferenceRow", Dinas, Category, RoutingRule)

GeometryKey = tuple[int, float | None]


@dataclass(frozen=True)
class Services:
    """What the app's lifespan starts once per process and operations use."""

    live: LiveFeed
    shared_subscriptions: SharedSubscriptions
    pubsub: PubSub
    # Intake's copy of the reference data; it checks its version on every use.
    intake_reference: ReferenceCache
    boundary_index: BoundaryIndexKeeper


@dataclass
class Context:
    """Who calls, over which connection: one per HTTP request, one per websocket.

    What belongs to one GraphQL operation (its session and transaction, its
    DataLoaders) lives in its `Operation`: the operations of one websocket run
    concurrently and never share a session."""

    request: Request | WebSocket
    response: Response | None
    settings: Settings
    session_factory: Callable[[], AsyncSession]
    services: Services
    principal: Principal = ANONYMOUS
    # The graphql-transport-ws connection_init payload (credentials of a socket).
    connection_params: dict[str, Any] | None = None
    # The caller accepts `application/graphql-response+json` (GraphQL over HTTP):
    # the answer then carries that media type and the spec's status codes.
    graphql_response_json: bool = False
    # Set on the copy each operation runs with (`for_operation`).
    _operation: Operation | None = field(default=None, repr=False)

    def for_operation(self) -> Context:
        """A copy for one operation, with its own unit of work: the resolvers of
        that operation see it as `info.context`."""
        copy = replace(self)
        copy._operation = Operation(copy)
        return copy

    @property
    def operation(self) -> Operation:
        if self._operation is None:
            raise RuntimeError("this context belongs to no operation (see Context.for_operation)")
        return self._operation

    def db(self) -> AbstractAsyncContextManager[AsyncSession]:
        """The running operation's session, one user at a time."""
        return self.operation.db()

    @property
    def loaders(self) -> Loaders:
        return self.operation.loaders

    def fresh_loaders(self) -> None:
        """Start a new DataLoader cache (per event batch of a subscription)."""
        self.operation.fresh_loaders()

    @property
    def boundary_index(self) -> BoundaryIndex | None:
        """This process's copy of the active boundary set, when loaded."""
        return self.services.boundary_index.current

    @property
    def actor(self) -> str:
        """Who acts, as written to the event log."""
        return self.principal.subject

    def require(self, action: Action) -> Principal:
        self.principal.require(action)
        return self.principal


class Operation:
    """One GraphQL operation's unit of work: its session, opened on first use
    and committed or rolled back by the API when the operation ends
    (`api.transactions`), and its DataLoaders.

    A subscription lives as long as its socket: it must not hold a session (a
    pooled connection) all that time, so each of its uses gets a short one."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.short_sessions = False
        self._session: AsyncSession | None = None
        self._lock = asyncio.Lock()
        self._loaders: Loaders | None = None
        self._finished = False
        # Reporters this operation showed, written with its transaction (api.transactions).
        self.reporter_sightings: set[Sighting] = set()

    def saw_reporter(self, case_id: int, path: Path, operation: OperationDefinitionNode) -> None:
        """A resolver at `path` of `operation` shows the reporter of the case."""
        # A subscription is recorded once per socket when it subscribes (live.audit):
        # collecting its every event here would grow for as long as the socket lives.
        if not self.short_sessions:
            sighting = Sighting(case_id=case_id, operation=_root_field(path, operation))
            self.reporter_sightings.add(sighting)

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        # GraphQL resolves sibling fields concurrently, but a session (one
        # connection) must not be used by two coroutines at once.
        async with self._lock:
            if self._finished:
                raise RuntimeError("the operation has ended; its session is gone")
            if self.short_sessions:
                async with self.context.session_factory() as session:
                    yield session
                return
            if self._session is None:
                self._session = self.context.session_factory()
            yield self._session

    @property
    def loaders(self) -> Loaders:
        # Made on first use: most operations never need one.
        if self._loaders is None:
            self._loaders = Loaders(self.context)
        return self._loaders

    def fresh_loaders(self) -> None:
        self._loaders = None

    def finish(self) -> AsyncSession | None:
        """Ends the operation; its session, if it opened one, for the caller to
        commit or roll back and close."""
        self._finished = True
        session, self._session = self._session, None
        return session


def _root_field(path: Path, operation: OperationDefinitionNode) -> str:
    """The name of the root field a path starts under (the path has its alias)."""
    while path.prev is not None:
        path = path.prev
    key = str(path.key)
    pending: list[SelectionNode] = list(operation.selection_set.selections)
    while pending:
        selection = pending.pop()
        if isinstance(selection, FieldNode):
            if (selection.alias or selection.name).value == key:
                return selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            pending.extend(selection.selection_set.selections)
    return key  # under a named fragment: its response key


class Loaders:
    """DataLoaders of one operation: batched, and cached for that operation only."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self.kecamatan = DataLoader[int, Kecamatan | None](self._load_kecamatan)
        self.kelurahan = DataLoader[int, Kelurahan | None](self._load_kelurahan)
        self.kelurahan_of_kecamatan = DataLoader[int, list[Kelurahan]](
            self._load_kelurahan_of_kecamatan
        )
        self.boundary_set = DataLoader[int, BoundarySet | None](self._load_boundary_set)
        self.dinas = DataLoader[int, Dinas | None](self._by_id_loader(Dinas))
        self.category = DataLoader[int, Category | None](self._by_id_loader(Category))
        self.routing_rule = DataLoader[int, RoutingRule | None](self._by_id_loader(RoutingRule))
        self.case_events = DataLoader[int, list[CaseEvent]](self._load_case_events)
        self.kecamatan_geometry = DataLoader[GeometryKey, dict[str, Any]](
            self._load_kecamatan_geometry
        )
        self.kelurahan_geometry = DataLoader[GeometryKey, dict[str, Any]](
            self._load_kelurahan_geometry
        )

    def _by_id_loader(
        self, model: type[ReferenceRow]
    ) -> Callable[[Sequence[int]], Awaitable[list[ReferenceRow | None]]]:
        async def load(ids: Sequence[int]) -> list[ReferenceRow | None]:
            async with self._context.db() as session:
                rows = await session.scalars(select(model).where(model.id.in_(ids)))
                found = {row.id: row for row in rows}
            return [found.get(i) for i in ids]

        return load

    async def _load_case_events(self, case_ids: Sequence[int]) -> list[list[CaseEvent]]:
        async with self._context.db() as session:
            grouped = await case_queries.events_by_case_ids(session=session, case_ids=case_ids)
        return [grouped[i] for i in case_ids]

    async def _load_kecamatan(self, ids: Sequence[int]) -> list[Kecamatan | None]:
        async with self._context.db() as session:
            found = await boundaries.areas_by_ids(session=session, model=Kecamatan, ids=ids)
        return [found.get(i) for i in ids]

    async def _load_kelurahan(self, ids: Sequence[int]) -> list[Kelurahan | None]:
        async with self._context.db() as session:
            found = await boundaries.areas_by_ids(session=session, model=Kelurahan, ids=ids)
        return [found.get(i) for i in ids]

    async def _load_kelurahan_of_kecamatan(self, ids: Sequence[int]) -> list[list[Kelurahan]]:
        async with self._context.db() as session:
            grouped = await boundaries.kelurahan_by_kecamatan_ids(
                session=session, kecamatan_ids=ids
            )
        return [grouped[i] for i in ids]

    async def _load_boundary_set(self, ids: Sequence[int]) -> list[BoundarySet | None]:
        async with self._context.db() as session:
            found = await boundaries.boundary_sets_by_ids(session=session, ids=ids)
        return [found.get(i) for i in ids]

    async def _load_geometries(
        self, model: type[boundaries.Area], keys: Sequence[GeometryKey]
    ) -> list[dict[str, Any]]:
        by_tolerance: dict[float | None, list[int]] = defaultdict(list)
        for area_id, tolerance in keys:
            by_tolerance[tolerance].append(area_id)
        found: dict[GeometryKey, dict[str, Any]] = {}
        async with self._context.db() as session:
            for tolerance, ids in by_tolerance.items():
                geometries = await boundaries.geometries_as_geojson(
                    session=session, model=model, ids=ids, simplify_m=tolerance
                )
                found.update({(i, tolerance): g for i, g in geometries.items()})
        return [found[key] for key in keys]

    async def _load_kecamatan_geometry(self, keys: Sequence[GeometryKey]) -> list[dict[str, Any]]:
        return await self._load_geometries(Kecamatan, keys)

    async def _load_kelurahan_geometry(self, keys: Sequence[GeometryKey]) -> list[dict[str, Any]]:
        return await self._load_geometries(Kelurahan, keys)
