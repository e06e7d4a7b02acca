"""Compiled queries (api/compiled.py) answer exactly what graphql-core answers."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
from asgi_lifespan import LifespanManager
from graphql import parse
from shapely.geometry import shape
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.applications import Starlette

import api.compiled
from api.compiled import compile_query
from api.settings import Settings
from models import BoundarySet
from schema import build_schema
from tests import bekasi

pytestmark = pytest.mark.usefixtures("bekasi_boundary_set")

BENCH = (
    "query Locate($lat: Float!, $lon: Float!) { locate(lat: $lat, lon: $lon) { __typename "
    "... on Location { kelurahan { code name } kecamatan { code name } } } }"
)
WIDER = """
  query ($lat: Float!, $lon: Float!) {
    here: locate(lat: $lat, lon: $lon) {
      kind: __typename
      ... on LocateResult { __typename }
      ... on Location {
        snapped distanceM
        kelurahan { __typename code name areaKm2 }
        district: kecamatan { name code areaKm2 }
      }
      ... on OutsideJurisdiction { distanceM message }
    }
  }
"""
LITERAL = "{ locate(lat: -6.2529, lon: 107.0075) { ... on Location { kelurahan { code } } } }"
NOT_COMPILED = [
    # A resolver below the root, a list, a second root field, a fragment, a mutation.
    "{ locate(lat: 1, lon: 2) { ... on Location { boundarySet { id } } } }",
    "{ locate(lat: 1, lon: 2) { ... on ValidationError { fields { field } } } }",
    "{ locate(lat: 1, lon: 2) { __typename } kecamatanList { code } }",
    "query { locate(lat: 1, lon: 2) { ...L } } fragment L on Location { snapped }",
    "{ kecamatanList { code } }",
]


def test_simple_locate_documents_compile_and_others_do_not() -> None:
    schema = build_schema()._schema
    for document in (BENCH, WIDER, LITERAL):
        assert compile_query(schema, parse(document)) is not None, document
    for document in NOT_COMPILED:
        assert compile_query(schema, parse(document)) is None, document


def _points(shared_data_dir: Path) -> list[dict[str, float]]:
    rng = random.Random(83)
    features = json.loads((shared_data_dir / "kelurahan.geojson").read_text())["features"]
    west, south, east, north = shapely.total_bounds([shape(f["geometry"]) for f in features])
    points = [
        {
            "lat": rng.uniform(south - 0.05, north + 0.05),
            "lon": rng.uniform(west - 0.05, east + 0.05),
        }
        for _ in range(200)
    ]
    points += [
        dict(zip(("lat", "lon"), bekasi.to_lat_lon(p), strict=True))
        for p in bekasi.gap_points(shared_data_dir)[:10]
    ]
    # Swapped, out of range, and a variable of the wrong type.
    points += [{"lat": 106.9721, "lon": -6.2383}, {"lat": -91.0, "lon": 107.0}]
    return points


@asynccontextmanager
async def _client(
    settings: Settings, connection: AsyncConnection
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    from api.app import create_app

    app = create_app(settings.model_copy(update={"sweeper_enabled": False}))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):

        def session_factory() -> AsyncSession:
            return AsyncSession(
                bind=connection,
                expire_on_commit=False,
                autoflush=False,
                join_transaction_mode="create_savepoint",
            )

        app.state.session_factory = session_factory
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://patriot.test") as client:
            yield app, client


async def _answers(
    settings: Settings, connection: AsyncConnection, requests: list[dict[str, Any]]
) -> list[tuple[int, Any]]:
    async with _client(settings, connection) as (_app, client):
        answers = []
        for body in requests:
            response = await client.post("/graphql", json=body)
            answers.append((response.status_code, response.json()))
        return answers


def _requests(shared_data_dir: Path) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = [
        {"query": document, "variables": point}
        for document in (BENCH, WIDER)
        for point in _points(shared_data_dir)
    ]
    requests += [
        {"query": LITERAL},
        {"query": BENCH, "variables": {"lat": "north", "lon": 107.0}},
        {"query": BENCH, "variables": {"lat": -6.25}},
    ]
    return requests


async def test_compiled_answers_equal_graphql_core_answers(
    settings: Settings,
    connection: AsyncConnection,
    shared_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests = _requests(shared_data_dir)
    compiled = await _answers(settings, connection, requests)
    monkeypatch.setattr(api.compiled, "COMPILED_ROOT_FIELDS", frozenset())
    executed = await _answers(settings, connection, requests)
    assert compiled == executed
    located = [a for _, a in compiled if "Location" in json.dumps(a)]
    assert len(located) > 100


async def test_a_failing_resolver_is_answered_by_graphql_core(
    settings: Settings,
    connection: AsyncConnection,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without an active set (in this test's transaction), a point the index
    # cannot answer makes the resolver raise; the error is graphql-core's.
    await session.execute(update(BoundarySet).values(is_active=False))
    await session.flush()
    requests = [{"query": BENCH, "variables": {"lat": -6.1754, "lon": 106.8272}}]
    compiled = await _answers(settings, connection, requests)
    monkeypatch.setattr(api.compiled, "COMPILED_ROOT_FIELDS", frozenset())
    executed = await _answers(settings, connection, requests)
    assert compiled == executed
    assert compiled[0][1]["errors"][0]["extensions"]["code"] == "NO_ACTIVE_BOUNDARY_SET"
