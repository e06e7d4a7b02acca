"""The in-memory boundary index against PostGIS, on the official Bekasi boundaries."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
from asgi_lifespan import LifespanManager
from shapely.geometry import shape
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from starlette.applications import Starlette

from api.app import create_app
from core.settings import Settings
from geo.areas import AreaInput, BoundarySetInput
from geo.boundary_index import BoundaryIndexKeeper, load_boundary_index
from geo.coordinates import LatLon
from geo.lookup import Located, locate_point
from geo.store import BOUNDARY_SETS_CHANNEL, activate_boundary_set, write_boundary_set
from live.pubsub import MemoryPubSub
from models import BoundarySet
from tests import bekasi

pytestmark = pytest.mark.usefixtures("bekasi_boundary_set")

SNAP_M = 50.0
LOCATE = """
  query ($lat: Float!, $lon: Float!) {
    locate(lat: $lat, lon: $lon) {
      __typename
      ... on Location { snapped distanceM kelurahan { code name areaKm2 } kecamatan { code name } }
    }
  }
"""


def _random_points(shared_data_dir: Path, count: int, rng: random.Random) -> list[LatLon]:
    features = json.loads((shared_data_dir / "kelurahan.geojson").read_text())["features"]
    west, south, east, north = shapely.total_bounds([shape(f["geometry"]) for f in features])
    return [
        LatLon(lat=rng.uniform(south, north), lon=rng.uniform(west, east)) for _ in range(count)
    ]


def _points_near_edges(shared_data_dir: Path, rng: random.Random) -> list[LatLon]:
    """Vertices of the file exactly, midpoints of its edges, and points a few
    centimetres to a few metres to either side of its edges."""
    features = json.loads((shared_data_dir / "kelurahan.geojson").read_text())["features"]
    points: list[LatLon] = []
    for feature in features:
        rings = shapely.get_rings(shape(feature["geometry"]))
        coordinates = [c for ring in rings for c in shapely.get_coordinates(ring).tolist()]
        for _ in range(20):
            i = rng.randrange(len(coordinates) - 1)
            (x0, y0), (x1, y1) = coordinates[i], coordinates[i + 1]
            points.append(LatLon(lat=y0, lon=x0))
            points.append(LatLon(lat=(y0 + y1) / 2, lon=(x0 + x1) / 2))
            t = rng.random()
            # About 1e-5 degrees per metre here.
            offset = rng.choice([1e-7, 1e-6, 1e-5, 3e-5]) * rng.choice([-1, 1])
            dx, dy = x1 - x0, y1 - y0
            norm = (dx * dx + dy * dy) ** 0.5 or 1.0
            points.append(
                LatLon(lat=y0 + t * dy + offset * dx / norm, lon=x0 + t * dx - offset * dy / norm)
            )
    return points


async def test_the_index_agrees_with_postgis_wherever_it_answers(
    session: AsyncSession, shared_data_dir: Path, bekasi_boundary_set: int
) -> None:
    index = await load_boundary_index(session=session, boundary_set_id=bekasi_boundary_set)
    rng = random.Random(7_2026)
    random_points = _random_points(shared_data_dir, 2_000, rng)
    edge_points = _points_near_edges(shared_data_dir, rng)
    assert len(edge_points) > 3_000

    answered = {"random": 0, "edge": 0}
    disagreements: list[str] = []
    for kind, points in (("random", random_points), ("edge", edge_points)):
        for point in points:
            known = index.covering(point)
            if known is None:
                continue
            answered[kind] += 1
            truth = await locate_point(session=session, point=point, snap_tolerance_m=SNAP_M)
            if not (
                isinstance(truth, Located) and not truth.snapped and truth.kelurahan_id == known.id
            ):
                disagreements.append(f"{point}: index {known.code}, PostGIS {truth}")
    assert disagreements == []
    # The random points cover the city's bounding box, about 60 % of it inside
    # the city; the index must answer nearly all of those itself.
    assert answered["random"] > 1_000
    assert answered["edge"] > 500


async def test_the_index_leaves_edges_overlaps_and_gaps_to_postgis(
    session: AsyncSession, shared_data_dir: Path, bekasi_boundary_set: int
) -> None:
    index = await load_boundary_index(session=session, boundary_set_id=bekasi_boundary_set)
    for point, _claimants in bekasi.overlap_points(shared_data_dir):
        lat, lon = bekasi.to_lat_lon(point)
        assert index.covering(LatLon(lat, lon)) is None
    for point in bekasi.gap_points(shared_data_dir):
        lat, lon = bekasi.to_lat_lon(point)
        assert index.covering(LatLon(lat, lon)) is None
    kel = bekasi.kelurahan_shapes(shared_data_dir)[0]
    features = json.loads((shared_data_dir / "kelurahan.geojson").read_text())["features"]
    vertex = next(f for f in features if f["properties"]["code"] == kel.code)
    lon, lat = shapely.get_coordinates(shape(vertex["geometry"]))[0].tolist()
    assert index.covering(LatLon(lat, lon)) is None
    assert index.covering(LatLon(-6.1754, 106.8272)) is None  # Jakarta


def _no_database(app: Starlette) -> None:
    def refuse() -> AsyncSession:
        raise AssertionError("a located point must not need the database")

    app.state.session_factory = refuse


async def test_a_point_inside_one_kelurahan_is_answered_without_the_database(
    app: Starlette, client: httpx.AsyncClient, shared_data_dir: Path
) -> None:
    assert app.state.boundary_index.current is not None
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, "32.75.08.1007")
    with_database = (await client.post("/graphql", json=_locate(lat, lon))).json()
    _no_database(app)
    without = (await client.post("/graphql", json=_locate(lat, lon))).json()
    assert without == with_database
    assert without["data"]["locate"] == {
        "__typename": "Location",
        "snapped": False,
        "distanceM": 0.0,
        "kelurahan": {
            "code": "32.75.08.1007",
            "name": "Jaticempaka",
            "areaKm2": pytest.approx(with_database["data"]["locate"]["kelurahan"]["areaKm2"]),
        },
        "kecamatan": {"code": "32.75.08", "name": "Pondokgede"},
    }


async def test_the_api_answers_alike_with_and_without_the_index(
    settings: Settings, connection: AsyncConnection, shared_data_dir: Path
) -> None:
    rng = random.Random(56)
    points = (
        _random_points(shared_data_dir, 150, rng) + _points_near_edges(shared_data_dir, rng)[:150]
    )
    points += [LatLon(*bekasi.to_lat_lon(p)) for p in bekasi.gap_points(shared_data_dir)[:20]]
    answers: dict[bool, list[Any]] = {}
    for enabled in (True, False):
        async with _app_client(
            settings.model_copy(update={"boundary_index": enabled}), connection
        ) as (app, client):
            assert (app.state.boundary_index.current is not None) is enabled
            answers[enabled] = [
                (await client.post("/graphql", json=_locate(p.lat, p.lon))).json() for p in points
            ]
    assert answers[True] == answers[False]


async def test_a_notification_or_a_check_reloads_the_index(connection: AsyncConnection) -> None:
    session = AsyncSession(bind=connection, join_transaction_mode="create_savepoint")
    pubsub = MemoryPubSub()
    keeper = BoundaryIndexKeeper(
        session_factory=_bound_to(connection), pubsub=pubsub, check_interval_s=3_600
    )
    await keeper.start()
    await asyncio.sleep(0.1)  # the keeper subscribed and waits: the connection is ours
    try:
        before = keeper.current
        assert before is not None
        square_set = await _write_square_set(session)
        await activate_boundary_set(session=session, boundary_set_id=square_set)
        await session.flush()
        await asyncio.sleep(0.05)
        assert keeper.current is before  # nothing said so yet
        await pubsub.publish(BOUNDARY_SETS_CHANNEL, str(square_set))
        await _until(lambda: _loaded(keeper) == square_set)
        assert keeper.current is not None
        located = keeper.current.covering(LatLon(lat=10.0, lon=20.0))
        assert located is not None and located.code == "K1.1"
    finally:
        await keeper.stop()
        await session.close()


async def test_activation_in_another_process_reloads_the_index(
    settings: Settings, engine: AsyncEngine, bekasi_boundary_set: int
) -> None:
    """End to end: the activation commits (as the importer's would, from another
    process), PostgreSQL notifies, and the server answers from the new set."""
    configured = settings.model_copy(update={"boundary_index_check_s": 3_600.0})
    async with _app_client(configured, None) as (app, client):
        keeper = app.state.boundary_index
        assert _loaded(keeper) == bekasi_boundary_set
        square_set: int | None = None
        try:
            async with AsyncSession(bind=engine) as session, session.begin():
                square_set = await _write_square_set(session)
                await activate_boundary_set(session=session, boundary_set_id=square_set)
            await _until(lambda: _loaded(keeper) == square_set)
            answer = (await client.post("/graphql", json=_locate(10.0, 20.0))).json()
            assert answer["data"]["locate"]["kelurahan"]["code"] == "K1.1"
        finally:
            async with AsyncSession(bind=engine) as session, session.begin():
                await activate_boundary_set(session=session, boundary_set_id=bekasi_boundary_set)
                if square_set is not None:
                    await session.execute(delete(BoundarySet).where(BoundarySet.id == square_set))
        await _until(lambda: _loaded(keeper) == bekasi_boundary_set)
        async with AsyncSession(bind=engine) as session:
            active = await session.scalar(select(BoundarySet.id).where(BoundarySet.is_active))
        assert active == bekasi_boundary_set


def _loaded(keeper: BoundaryIndexKeeper) -> int | None:
    return keeper.current.boundary_set_id if keeper.current is not None else None


def _locate(lat: float, lon: float) -> dict[str, Any]:
    return {"query": LOCATE, "variables": {"lat": lat, "lon": lon}}


async def _write_square_set(session: AsyncSession) -> int:
    square = shapely.MultiPolygon([shapely.box(19.9, 9.9, 20.1, 10.1)])
    return await write_boundary_set(
        session=session,
        boundary_set=BoundarySetInput(
            source="test",
            accuracy_note="test",
            is_approximate=True,
            kecamatan=[AreaInput("K1", "K", square)],
            kelurahan=[AreaInput("K1.1", "L", square, parent_code="K1")],
        ),
    )


def _bound_to(connection: AsyncConnection) -> Callable[[], AsyncSession]:
    def factory() -> AsyncSession:
        return AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )

    return factory


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


@asynccontextmanager
async def _app_client(
    settings: Settings, connection: AsyncConnection | None
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app built from `settings`; with `connection`, its request sessions join
    the test's rolled-back transaction (the index always reads what is committed)."""
    app = create_app(settings.model_copy(update={"sweeper_enabled": False}))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        if connection is not None:
            app.state.session_factory = _bound_to(connection)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://patriot.test") as client:
            yield app, client
