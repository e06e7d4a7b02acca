from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from core.settings import Settings
from domain import case_queries
from domain.access import ANONYMOUS, Action, Principal
from domain.intake import EACH_STATEMENT_COMMITS
from geo import boundaries
from geo.boundary_index import BoundaryIndex
from models import BoundarySet, CaseEvent, Category, Dinas, Kecamatan, Kelurahan, RoutingRule

ReferenceRow = TypeVar("ReferenceRow", Dinas, Category, RoutingRule)

GeometryKey = tuple[int, float | None]


@dataclass
class Context:
    """Per-operation state. The session opens lazily, so an operation that fails
    validation never touches the database; `api.transactions` commits or rolls it back."""

    request: Request | WebSocket
    response: Response | None
    settings: Settings
    session_factory: async_sessionmaker[AsyncSession]
    principal: Principal = ANONYMOUS
    # The graphql-transport-ws connection_init payload (credentials of a socket).
    connection_params: dict[str, Any] | None = None
    # This process's copy of the active boundary set, when loaded.
    boundary_index: BoundaryIndex | None = None
    _session: AsyncSession | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Made on first use: most operations never need one, and ten DataLoaders
    # per request were a measurable share of a simple query.
    _loaders: Loaders | None = field(default=None, init=False, repr=False)

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self)
        return self._loaders

    # A subscription lives as long as its socket: it must not hold a session (a
    # pooled connection) all that time, so each use gets a short one instead.
    short_sessions: bool = False
    # The operation is a mutation of one root field (set by `api.operations`):
    # nothing else shares its transaction.
    sole_mutation_field: bool = False

    @asynccontextmanager
    async def db(self, *, each_statement_commits: bool = False) -> AsyncIterator[AsyncSession]:
        """The operation's session, one user at a time.

        GraphQL resolves sibling fields concurrently, but a session (one
        connection) must not be used by two coroutines at once.

        `each_statement_commits` is asked for by a resolver whose only write is
        one statement: when the operation is that field alone, the session runs
        in autocommit, so the statement is the transaction and no `BEGIN` or
        `COMMIT` round trip holds its locks longer. The session then says so in
        `session.info[EACH_STATEMENT_COMMITS]`. Anywhere else (more root fields,
        a session already open, one joined to an outer transaction) it is the
        operation's ordinary transaction.
        """
        async with self._lock:
            if self.short_sessions:
                async with self.session_factory() as session:
                    yield session
                return
            if self._session is None:
                self._session = self.session_factory()
                if (
                    each_statement_commits
                    and self.sole_mutation_field
                    and isinstance(self._session.bind, AsyncEngine)
                ):
                    await self._session.connection(
                        execution_options={"isolation_level": "AUTOCOMMIT"}
                    )
                    self._session.info[EACH_STATEMENT_COMMITS] = True
            yield self._session

    @property
    def actor(self) -> str:
        """Who acts, as written to the event log."""
        return self.principal.subject

    def require(self, action: Action) -> Principal:
        self.principal.require(action)
        return self.principal

    def fresh_loaders(self) -> None:
        """Start a new DataLoader cache (per event batch of a subscription)."""
        self._loaders = None

    def take_session(self) -> AsyncSession | None:
        session, self._session = self._session, None
        return session


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
