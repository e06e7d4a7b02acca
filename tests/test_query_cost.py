"""Every list and every data-sized field is priced by what it holds, and a response
has a byte budget, over HTTP and websockets alike."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    get_named_type,
    parse,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.applications import Starlette

from api.app import create_app
from api.graphql_http import GraphQLView, SocketCounts
from api.observability import Metrics
from api.query_cost import (
    FIELD_WEIGHTS,
    GEOMETRY,
    KECAMATAN,
    KELURAHAN,
    KELURAHAN_PER_KECAMATAN,
    LIST_SIZES,
    PAGE_ARGUMENTS,
    SIMPLIFIED_GEOMETRY,
    operation_cost,
)
from api.sockets import SocketRegistry
from core.settings import Settings
from schema import build_schema
from tests.conftest import joined_session, staff_headers
from tests.servers import Server, module_server
from tests.ws_client import graphql_socket

pytestmark = pytest.mark.usefixtures("reference_data")

MODERN = {"accept": "application/graphql-response+json"}
ROOT = Path(__file__).resolve().parent.parent
DATA_SIZED = ("JSON", "GeoJSON")


@functools.cache
def _schema() -> GraphQLSchema:
    return build_schema()._schema


def _cost(document: str, variables: dict[str, Any] | None = None) -> int:
    parsed = parse(document)
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    return operation_cost(_schema(), parsed, operation, variables)


def _codes(body: dict[str, Any]) -> list[str]:
    return [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]


# --- The prices --------------------------------------------------------------


def test_every_list_and_data_sized_field_has_a_price() -> None:
    unpriced: list[str] = []
    fields: set[tuple[str, str]] = set()
    for type_ in _schema().type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            key = (type_.name, name)
            fields.add(key)
            returned = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            paged = any(argument in field.args for argument in PAGE_ARGUMENTS)
            if isinstance(returned, GraphQLList) and not paged and key not in LIST_SIZES:
                unpriced.append(f"{type_.name}.{name} (a list)")
            if get_named_type(field.type).name in DATA_SIZED and key not in FIELD_WEIGHTS:
                unpriced.append(f"{type_.name}.{name} (answers JSON)")
    assert unpriced == [], "add them to LIST_SIZES or FIELD_WEIGHTS in api/query_cost.py"
    stale = sorted((set(LIST_SIZES) | set(FIELD_WEIGHTS)) - fields)
    assert stale == []


def test_lists_cost_what_they_hold() -> None:
    assert _cost("{ kecamatanList { code } }") == 1 + KECAMATAN
    assert _cost("{ kelurahanList { code name } }") == 1 + KELURAHAN * 2
    narrowed = '{ kelurahanList(kecamatanCode: "32.75.08") { code } }'
    assert _cost(narrowed) == 1 + KELURAHAN_PER_KECAMATAN
    assert _cost("{ kecamatanList { kelurahan { code } } }") == 1 + KECAMATAN * (
        1 + KELURAHAN_PER_KECAMATAN
    )
    # A list of scalars costs its size too; a connection's edges are counted by its page.
    assert _cost('{ case(ticket: "X") { mediaUrls } }') == 1 + 10
    assert _cost("{ cases(first: 100) { edges { node { ticket title } } } }") == 401


def test_data_sized_answers_cost_their_size() -> None:
    one = '{ kelurahan(code: "32.75.08.1001") { geometry } }'
    assert _cost(one) == 1 + GEOMETRY
    assert _cost(one.replace("geometry", "geometry(simplifyM: 20)")) == 1 + SIMPLIFIED_GEOMETRY
    variable = 'query($s: Float) { kelurahan(code: "32.75.08.1001") { geometry(simplifyM: $s) } }'
    assert _cost(variable, {"s": 50}) == 1 + SIMPLIFIED_GEOMETRY
    assert _cost(variable, {}) == 1 + GEOMETRY
    # The choropleth holds every kelurahan's outline, simplified by default.
    choropleth = (
        '{ kelurahanChoropleth(metric: RECEIVED, from: "2026-01-01T00:00:00Z", '
        'to: "2026-02-01T00:00:00Z") }'
    )
    assert _cost(choropleth) == KELURAHAN * SIMPLIFIED_GEOMETRY
    full = choropleth.replace(") }", ", simplifyM: null) }")
    assert _cost(full) == KELURAHAN * GEOMETRY
    # A heatmap by the hexagons of its box: ten times the cells of ten times the area.
    heatmap = "{ heatmap(bbox: {west: 106.9, south: -6.4, east: %s, north: -6.2}, cellM: 500) }"
    small, large = _cost(heatmap % "106.95"), _cost(heatmap % "107.4")
    assert 15 <= small <= 40 and 8 * small <= large <= 12 * small
    assert _cost("query($b: BBoxInput!) { heatmap(bbox: $b, cellM: 50) }", {}) == 5_000
    # Nonsense is priced as the largest heatmap; the heatmap itself refuses it.
    for cell_m, west in (("1e-200", "106.9"), ("500", "-1e300"), ("500", "1" + "0" * 400)):
        assert _cost(heatmap.replace("106.9", west).replace("500", cell_m) % "107") == 5_000
    assert _cost(heatmap.replace("500", "1e200") % "107") <= 5
    assert _cost("{ heatmap(bbox: [1, 2], cellM: 500) }") == 5_000  # invalid, still priced


async def test_the_alias_bomb_is_refused_before_it_runs(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """15 aliases of kecamatanList / kelurahan / geometry returned 194.5 MB and
    stalled the process; it is refused by its cost, without touching the database."""
    bomb = "{ " + " ".join(f"a{i}: kecamatanList {{ kelurahan {{ geometry }} }}" for i in range(15))
    bomb += " }"
    assert _cost(bomb) == 15 * (1 + KECAMATAN * (1 + KELURAHAN_PER_KECAMATAN * GEOMETRY))

    sessions = 0
    factory = app.state.session_factory

    def counting() -> Any:
        nonlocal sessions
        sessions += 1
        return factory()

    app.state.session_factory = counting
    for simplified in (bomb, bomb.replace("geometry", "geometry(simplifyM: 100)")):
        response = await client.post("/graphql", json={"query": simplified}, headers=MODERN)
        assert response.status_code == 400, response.text
        body = response.json()
        assert "data" not in body and _codes(body) == ["COST_LIMIT"], body
        assert len(response.content) < 1_000
    assert sessions == 0  # nothing was executed

    # One kecamatan's outlines in full, or the whole city simplified, still fit.
    for fits in (
        '{ kelurahanList(kecamatanCode: "32.75.08") { code geometry } }',
        "{ kelurahanList { code kecamatan { code } geometry(simplifyM: 20) } }",
    ):
        response = await client.post("/graphql", json={"query": fits}, headers=MODERN)
        assert response.status_code == 200, response.text
        assert "errors" not in response.json()


def _poc_documents() -> dict[str, str]:
    source = (ROOT / "poc" / "src" / "queries.js").read_text()
    constants = dict(re.findall(r"const (\w+) = `([^`]*)`", source))
    return {
        name: re.sub(r"\$\{(\w+)\}", lambda m: constants[m.group(1)], text)
        for name, text in constants.items()
        if re.match(r"\s*(query|subscription)", text)
    }


def test_the_poc_screen_stays_within_the_limit(settings: Settings) -> None:
    documents = _poc_documents()
    assert {"REFERENCE", "OPEN_CASES", "TABLES", "CASE_EVENTS"} <= set(documents)
    for name, document in documents.items():
        assert _cost(document, {"first": 10}) <= settings.max_query_cost, name


# --- The byte budget ---------------------------------------------------------

BIG = "{ kecamatanList { code geometry } }"  # about 130 kB of outlines
SMALL = "{ kecamatanList { code } }"
BUDGET = 65_536


@asynccontextmanager
async def _budgeted(
    settings: Settings, connection: AsyncConnection
) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(
        update={"pubsub_url": "memory://", "max_response_bytes": BUDGET}
    )
    application = create_app(configured)
    async with LifespanManager(application):
        application.state.session_factory = functools.partial(joined_session, connection)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://patriot.test") as c:
            yield c


async def test_an_answer_over_the_byte_budget_is_replaced_by_an_error(
    settings: Settings, connection: AsyncConnection, client: httpx.AsyncClient
) -> None:
    unlimited = await client.post("/graphql", json={"query": BIG})
    assert len(unlimited.content) > BUDGET, "the outlines must be larger than the budget"
    async with _budgeted(settings, connection) as budgeted:
        for accept in ({}, MODERN):
            response = await budgeted.post("/graphql", json={"query": BIG}, headers=accept)
            assert response.status_code == 200
            body = response.json()
            assert body["data"] is None and _codes(body) == ["RESPONSE_TOO_LARGE"], body
            assert f"over the limit of {BUDGET}" in body["errors"][0]["message"]
            assert len(response.content) < 1_000
        small = await budgeted.post("/graphql", json={"query": SMALL})
        assert "errors" not in small.json() and len(small.json()["data"]["kecamatanList"]) == 12


def test_every_payload_shape_is_budgeted(settings: Settings) -> None:
    budgeted = settings.model_copy(update={"max_response_bytes": BUDGET})
    metrics = Metrics.create()
    view = GraphQLView(
        schema=build_schema(),
        settings=budgeted,
        sockets=SocketCounts(),
        registry=SocketRegistry(settings=budgeted, metrics=metrics),
        metrics=metrics,
    )
    large = {"data": {"x": "y" * BUDGET}}
    expected = {
        "data": None,
        "errors": [
            {
                "message": f"The response would be {BUDGET + 17} bytes, over the limit of "
                f"{BUDGET}; select fewer fields or ask for smaller pages.",
                "extensions": {"code": "RESPONSE_TOO_LARGE"},
            }
        ],
    }
    # An HTTP body, and a shared subscription's payload (spliced into its frames).
    assert orjson.loads(view.encode_json(large)) == expected
    # A graphql-transport-ws message keeps its id and type.
    message = {"id": "7", "type": "next", "payload": large}
    replaced = orjson.loads(view.encode_json(message))
    assert replaced["id"] == "7" and replaced["type"] == "next"
    assert replaced["payload"]["errors"][0]["extensions"]["code"] == "RESPONSE_TOO_LARGE"
    assert view.encode_json({"data": {"x": 1}}) == '{"data":{"x":1}}'


@pytest.fixture(scope="module")
def server(
    test_database_url: str, tmp_path_factory: pytest.TempPathFactory, engine: AsyncEngine
) -> Iterator[Server]:
    with module_server(
        database_url=test_database_url,
        tmp_path_factory=tmp_path_factory,
        name="budget",
        PATRIOT_PUBSUB_URL="memory://",
        PATRIOT_MAX_RESPONSE_BYTES=str(BUDGET),
    ) as started:
        yield started


async def test_a_websocket_answer_over_the_byte_budget(
    server: Server, settings: Settings, bekasi_boundary_set: int
) -> None:
    token = staff_headers("POC_OPERATOR", settings=settings)["authorization"]
    async with graphql_socket(server.ws, init_payload={"authorization": token}) as socket:
        await socket.subscribe("big", BIG)
        message = await socket.receive()
        assert message["type"] == "next" and message["id"] == "big", message
        assert message["payload"]["data"] is None
        assert _codes(message["payload"]) == ["RESPONSE_TOO_LARGE"]
        assert (await socket.receive())["type"] == "complete"
        await socket.subscribe("small", SMALL)
        assert len((await socket.next_data())["kecamatanList"]) == 12
