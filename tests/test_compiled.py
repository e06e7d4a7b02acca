"""Compiled queries (api/compiled.py) answer exactly what graphql-core answers."""

from __future__ import annotations

import functools
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
import shapely
from asgi_lifespan import LifespanManager
from graphql import parse
from shapely.geometry import shape
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from starlette.applications import Starlette

import api.compiled
from api.compiled import compile_query
from core.settings import Settings
from models import BoundarySet
from schema import build_schema
from tests import bekasi
from tests.conftest import joined_session

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
# Resolvers below the root: called as Strawberry calls them.
RESOLVERS = (
    "{ locate(lat: 1, lon: 2) { ... on Location "
    "{ boundarySet { id } kelurahan { kecamatan { code } } } } }"
)
NOT_COMPILED = [
    # An argument below the root, a list, a second root field, a fragment, a
    # mutation that is not idempotent.
    "{ locate(lat: 1, lon: 2) { ... on Location { kelurahan { geometry(simplifyM: 10) } } } }",
    "{ locate(lat: 1, lon: 2) { ... on ValidationError { fields { field } } } }",
    "{ locate(lat: 1, lon: 2) { __typename } kecamatanList { code } }",
    "query { locate(lat: 1, lon: 2) { ...L } } fragment L on Location { snapped }",
    "{ kecamatanList { code } }",
    'mutation { verifyCase(ticket: "BKS-2611-000001") { __typename } }',
]


def test_simple_locate_documents_compile_and_others_do_not() -> None:
    schema = build_schema()._schema
    for document in (BENCH, WIDER, LITERAL, RESOLVERS):
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
        app.state.session_factory = functools.partial(joined_session, connection)
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


SUBMIT_PLAIN = """
mutation Submit($input: SubmitReportInput!) {
  submitReport(input: $input) {
    __typename
    ... on Case {
      ticket kind source status statusLabel title description address occurredAt dueAt
      anonymous confidential externalId
      location { lat lon }
      kelurahan { code name kecamatan { code } } kecamatan { code name }
      dinas { code } category { code }
      routing { snapped distanceM reason boundarySet { id } }
      reporter { name phone email }
    }
    ... on ValidationError { message }
    ... on OutsideJurisdiction { message distanceM }
    ... on UnknownCategory { categoryCode message }
    ... on IdempotencyConflict { message ticket }
  }
}
"""


def _submissions(shared_data_dir: Path) -> list[tuple[str | None, dict[str, Any]]]:
    """(partner, variables): created, refused by each union member, retried, and
    variables that do not coerce."""
    from tests.factories import report_input

    inside = dict(
        zip(("lat", "lon"), bekasi.interior_lat_lon(shared_data_dir, "32.75.08.1002"), strict=True)
    )
    gap = dict(
        zip(("lat", "lon"), bekasi.to_lat_lon(bekasi.gap_points(shared_data_dir)[0]), strict=True)
    )
    first = report_input(idempotencyKey="compiled-1", location=inside)
    inputs: list[tuple[str | None, dict[str, Any]]] = [
        ("POT", first),
        ("POT", first),  # a retry: the original case
        ("POT", {**first, "title": "Another title"}),  # the key taken by another report
        ("POT", report_input(idempotencyKey="compiled-gap", location=gap, categoryCode="SAMPAH")),
        ("POT", report_input(idempotencyKey="compiled-min", reporter=None, mediaUrls=[])),
        (
            "POT",
            report_input(
                idempotencyKey="compiled-aspirasi",
                kind="ASPIRASI",
                categoryCode="RENCANA_TATA_RUANG",
                location=None,
                kelurahanCode="32.75.08.1002",
                occurredAt="2026-11-01T08:00:00+07:00",
                anonymous=True,
                confidential=True,
                externalId="  ext-1 ",
                address="Jl. Ahmad Yani\r\nNo. 1",
            ),
        ),
        (
            "POT",
            report_input(idempotencyKey="compiled-far", location={"lat": -6.1754, "lon": 106.8272}),
        ),
        ("POT", report_input(idempotencyKey="compiled-cat", categoryCode="NO_SUCH_CATEGORY")),
        (
            "POT",
            report_input(idempotencyKey="compiled-bad", title=" ", reporter={"phone": "021-555"}),
        ),
        ("POT", report_input(idempotencyKey="compiled-source", source="SOROT")),
        ("POT", report_input(idempotencyKey="compiled-kind", kind="NOPE")),
        ("POT", {"title": "no input object"}),
        (None, report_input(idempotencyKey="compiled-anonymous")),
    ]
    return inputs


@pytest.mark.usefixtures("reference_data")
async def test_compiled_submissions_answer_as_graphql_core(
    settings: Settings,
    connection: AsyncConnection,
    session: AsyncSession,
    shared_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both paths on the same inputs, each from the same database state (a
    savepoint rolled back after each run), so even the ticket numbers agree."""
    from api import operations
    from tests.conftest import add_partner_key

    assert compile_query(build_schema()._schema, parse(SUBMIT_PLAIN)) is not None
    keys = {"POT": await add_partner_key(session, "POT")}
    executed_by_graphql_core = 0
    graphql_core_execute = graphql.execute  # what api.operations calls

    def counting_execute(*args: Any, **kwargs: Any) -> Any:
        nonlocal executed_by_graphql_core
        executed_by_graphql_core += 1
        return graphql_core_execute(*args, **kwargs)

    monkeypatch.setattr(operations, "execute", counting_execute)

    async def answers() -> list[tuple[int, Any]]:
        savepoint = await connection.begin_nested()
        try:
            async with _client(settings, connection) as (_app, client):
                found = []
                for partner, variables in _submissions(shared_data_dir):
                    response = await client.post(
                        "/graphql",
                        json={"query": SUBMIT_PLAIN, "variables": {"input": variables}},
                        headers={"x-api-key": keys[partner]} if partner else {},
                    )
                    found.append((response.status_code, response.json()))
                return found
        finally:
            await savepoint.rollback()

    compiled = await answers()
    by_plan = len(compiled) - executed_by_graphql_core
    monkeypatch.setattr(api.compiled, "COMPILED_ROOT_FIELDS", frozenset())
    executed = await answers()
    assert compiled == executed
    kinds = [
        (answer.get("data") or {}).get("submitReport", {}).get("__typename")
        for _, answer in compiled
    ]
    assert kinds[:10] == [
        "Case",
        "Case",
        "IdempotencyConflict",
        "Case",
        "Case",
        "Case",
        "OutsideJurisdiction",
        "UnknownCategory",
        "ValidationError",
        "ValidationError",
    ]
    assert compiled[0][1]["data"]["submitReport"]["routing"]["snapped"] is False
    assert compiled[3][1]["data"]["submitReport"]["routing"]["snapped"] is True
    # Every union answer came from the plan; only the variables that do not
    # coerce and the anonymous caller's error went to graphql-core.
    assert by_plan == len(compiled) - 3


@pytest.mark.usefixtures("reference_data")
async def test_a_compiled_submission_commits_on_its_own_and_a_retry_answers_the_same(
    settings: Settings,
    engine: AsyncEngine,
    committed_credentials: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the real pool, where the lone mutation runs in autocommit and writes on
    asyncpg's connection: the plan's answer is the one graphql-core gives for the
    retry, and the case and its two events are committed once."""
    from asgi_lifespan import LifespanManager

    from api.app import create_app
    from tests.conftest import wipe_committed_cases
    from tests.factories import report_input

    variables = {"input": report_input(idempotencyKey="compiled-committed")}
    headers = committed_credentials("partner:POT")

    async def submit() -> Any:
        app = create_app(settings.model_copy(update={"sweeper_enabled": False}))
        async with (
            LifespanManager(app, startup_timeout=30, shutdown_timeout=30),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://patriot.test"
            ) as client,
        ):
            response = await client.post(
                "/graphql", json={"query": SUBMIT_PLAIN, "variables": variables}, headers=headers
            )
            return response.json()

    try:
        created = await submit()
        retried = await submit()
        monkeypatch.setattr(api.compiled, "COMPILED_ROOT_FIELDS", frozenset())
        retried_by_graphql_core = await submit()
        assert created["data"]["submitReport"]["__typename"] == "Case", created
        assert created == retried == retried_by_graphql_core
        async with engine.connect() as conn:
            counts = (
                await conn.execute(
                    text(
                        'SELECT count(DISTINCT c.id), count(e.id) FROM "case" c '
                        "JOIN case_event e ON e.case_id = c.id "
                        "WHERE c.idempotency_key = 'compiled-committed'"
                    )
                )
            ).one()
        assert tuple(counts) == (1, 2)
    finally:
        await wipe_committed_cases(engine)
