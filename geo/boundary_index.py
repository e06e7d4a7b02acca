"""The active boundary set in memory, for the common case of a point lookup.

Nearly every point a caller sends lies well inside one kelurahan. Asking PostGIS
for it costs a connection, a transaction and several round trips; the lookup
pieces of the active set (the same `kelurahan_piece` rows PostGIS searches) fit
in a few megabytes. The index answers only when the answer cannot depend on
how the point-in-polygon test rounds: a tiny square around the point lies
strictly inside pieces of exactly one kelurahan and away from every other piece.
Everything else (an edge, an overlap, a gap, outside the city) returns None and
goes to PostGIS, which stays the source of truth, so the tie-break and snapping
rules of `geo.lookup` apply unchanged.

Each server process keeps its own copy (`BoundaryIndexKeeper`) and reloads it when
another set becomes active: `geo.store.activate_boundary_set` notifies
`BOUNDARY_SETS_CHANNEL` when its transaction commits, and a periodic check of the
active set's id catches a notification lost to a dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import asyncpg
import shapely
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from geo.coordinates import LatLon
from geo.store import BOUNDARY_SETS_CHANNEL, active_boundary_set_id
from models import Kecamatan, Kelurahan, KelurahanPiece

logger = logging.getLogger("patriot.boundary_index")

# Half the side of the square around a point, in degrees (about 0.1 mm). Two
# robust point-in-polygon tests can disagree only within rounding error of an
# edge (1e-14 degrees here), so a square this size that touches no edge
# leaves no doubt.
EDGE_MARGIN_DEG = 1e-9


@dataclass(frozen=True)
class KelurahanRow:
    id: int
    code: str
    name: str
    area_km2: float
    kecamatan_id: int
    boundary_set_id: int


@dataclass(frozen=True)
class KecamatanRow:
    id: int
    code: str
    name: str
    area_km2: float
    boundary_set_id: int


class BoundaryIndex:
    """The lookup pieces of one boundary set in a shapely STRtree, and the rows
    an answer names. Immutable once built, so requests share it freely."""

    def __init__(
        self,
        *,
        boundary_set_id: int,
        kelurahan: Mapping[int, KelurahanRow],
        kecamatan: Mapping[int, KecamatanRow],
        pieces: list[shapely.Geometry],
        piece_kelurahan: list[int],
    ) -> None:
        self.boundary_set_id = boundary_set_id
        self.kelurahan = kelurahan
        self.kecamatan = kecamatan
        self._pieces = pieces
        self._piece_kelurahan = piece_kelurahan
        self._tree = shapely.STRtree(pieces)

    def __len__(self) -> int:
        return len(self._pieces)

    def covering(self, point: LatLon) -> KelurahanRow | None:
        """The one kelurahan that certainly covers the point, else None (ask PostGIS)."""
        x, y = point.lon, point.lat
        square = shapely.box(
            x - EDGE_MARGIN_DEG, y - EDGE_MARGIN_DEG, x + EDGE_MARGIN_DEG, y + EDGE_MARGIN_DEG
        )
        found: int | None = None
        for piece in self._tree.query(square):
            geometry = self._pieces[piece]
            if shapely.contains_properly(geometry, square):
                kelurahan_id = self._piece_kelurahan[piece]
                if found is not None and found != kelurahan_id:
                    return None  # an overlap: the tie-break is PostGIS's
                found = kelurahan_id
            elif not shapely.disjoint(geometry, square):
                return None  # on or next to an edge
        return self.kelurahan[found] if found is not None else None


async def load_boundary_index(*, session: AsyncSession, boundary_set_id: int) -> BoundaryIndex:
    kelurahan = {
        row.id: KelurahanRow(
            row.id, row.code, row.name, row.area_km2, row.kecamatan_id, boundary_set_id
        )
        for row in await session.execute(
            select(
                Kelurahan.id,
                Kelurahan.code,
                Kelurahan.name,
                Kelurahan.area_km2,
                Kelurahan.kecamatan_id,
            ).where(Kelurahan.boundary_set_id == boundary_set_id)
        )
    }
    kecamatan = {
        row.id: KecamatanRow(row.id, row.code, row.name, row.area_km2, boundary_set_id)
        for row in await session.execute(
            select(Kecamatan.id, Kecamatan.code, Kecamatan.name, Kecamatan.area_km2).where(
                Kecamatan.boundary_set_id == boundary_set_id
            )
        )
    }
    piece_rows = (
        await session.execute(
            select(KelurahanPiece.kelurahan_id, KelurahanPiece.geom).where(
                KelurahanPiece.boundary_set_id == boundary_set_id
            )
        )
    ).all()
    pieces = list(shapely.from_wkb([bytes(row.geom.data) for row in piece_rows]))
    return BoundaryIndex(
        boundary_set_id=boundary_set_id,
        kelurahan=kelurahan,
        kecamatan=kecamatan,
        pieces=pieces,
        piece_kelurahan=[row.kelurahan_id for row in piece_rows],
    )


class _Subscription(Protocol):
    async def next(self) -> str: ...


class _PubSub(Protocol):
    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[_Subscription]: ...


class BoundaryIndexKeeper:
    """Holds this process's index of the active set and keeps it current."""

    def __init__(
        self,
        *,
        session_factory: Callable[[], AsyncSession],
        pubsub: _PubSub,
        check_interval_s: float,
    ) -> None:
        self._session_factory = session_factory
        self._pubsub = pubsub
        self._check_interval_s = check_interval_s
        self._task: asyncio.Task[None] | None = None
        self.current: BoundaryIndex | None = None

    async def start(self) -> None:
        # Loaded before the server takes requests; without an active set (or
        # with the database away) lookups use PostGIS until the next check.
        await self._refresh_logged()
        self._task = asyncio.create_task(self._keep_current(), name="boundary-index")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> None:
        """Load the active set unless it is the one already loaded."""
        async with self._session_factory() as session:
            set_id = await active_boundary_set_id(session=session)
            if set_id is None:
                self.current = None
            elif self.current is None or self.current.boundary_set_id != set_id:
                index = await load_boundary_index(session=session, boundary_set_id=set_id)
                self.current = index
                logger.info("boundary index: set %s, %s pieces", set_id, len(index))

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except (OSError, SQLAlchemyError, asyncpg.PostgresError) as error:
            # The old index stays: lookups it cannot answer still go to PostGIS.
            logger.warning("boundary index not refreshed: %s", type(error).__name__)

    async def _keep_current(self) -> None:
        async with self._pubsub.subscribe(BOUNDARY_SETS_CHANNEL) as subscription:
            # A set activated between start() and the subscription is seen here.
            await self._refresh_logged()
            async for _ in _wake_ups(subscription, self._check_interval_s):
                await self._refresh_logged()


async def _wake_ups(subscription: _Subscription, interval_s: float) -> AsyncIterator[None]:
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscription.next(), timeout=interval_s)
        yield
