"""Abuse limits: document size and cost, page size, body size, mutation rate,
statement timeout, production hardening, CORS and websocket origins, masking."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from graphql import OperationDefinitionNode, parse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import HTTPConnection
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from api.app import create_app
from api.document_limits import NUL_MESSAGE
from api.errors import INTERNAL_MESSAGE
from api.query_cost import operation_cost
from api.rate_limit import MutationRateLimiter, caller_identity, mutation_field_count
from core.settings import Environment, Settings
from schema import build_schema
from tests.conftest import joined_session, staff_headers
from tests.servers import Server, running_servers

MODERN = {"accept": "application/graphql-response+json"}
NO_SUCH_CASE = 'mutation { verifyCase(ticket: "BKS-0000-000000") { __typename } }'


@pytest.fixture
def caller() -> str:
    # Staff, so that `cases` is open to the `graphql` fixture.
    return "POC_OPERATOR"


def _configured(settings: Settings, **changes: Any) -> Settings:
    # model_copy skips validation on purpose: production-only requirements of
    # other settings (secrets) are not what these tests are about.
    return settings.model_copy(
        update={"pubsub_url": "memory://", "sweeper_enabled": False, **changes}
    )


@asynccontextmanager
async def _client(
    settings: Settings, connection: AsyncConnection | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An app built from `settings`; with `connection`, its sessions join the
    test's rolled-back transaction, otherwise they use the app's own engine."""
    application = create_app(settings)
    async with LifespanManager(application):
        if connection is not None:
            application.state.session_factory = functools.partial(joined_session, connection)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://patriot.test") as client:
            yield client


def _codes(body: dict[str, Any]) -> list[str]:
    return [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]


def _nested(field: str, levels: int, leaf: str) -> str:
    return "{ " + f"{field} {{ " * levels + leaf + " }" * levels + " }"


# --- Document limits ---------------------------------------------------------


def _category_chain(depth: int) -> str:
    # category(code:) -> parent -> parent ...: depth without any data behind it.
    inner = "code"
    for _ in range(depth - 1):
        inner = f"parent {{ {inner} }}"
    return f'{{ category(code: "NONE") {{ {inner} }} }}'


async def test_depth_limit(graphql: Any) -> None:
    allowed = await graphql(_category_chain(10))
    assert "errors" not in allowed, allowed
    refused = await graphql(_category_chain(11))
    assert "data" not in refused  # nothing was executed
    assert "exceeds maximum operation depth" in refused["errors"][0]["message"]


async def test_alias_limit(graphql: Any) -> None:
    def aliased(count: int) -> str:
        return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"

    assert "errors" not in await graphql(aliased(15))
    refused = await graphql(aliased(16))
    assert refused["errors"][0]["message"] == "16 aliases found. Allowed: 15"


async def test_token_limit(graphql: Any) -> None:
    def sources(count: int) -> str:
        # 23 tokens around the lists, one per string; two lists, as one may
        # hold at most 1000 items.
        sources = " ".join(['"POT"'] * (count // 2))
        dinas = " ".join(['"DLH"'] * (count - count // 2))
        return (
            f"{{ cases(filter: {{ sources: [{sources}] dinasCodes: [{dinas}] }}) "
            "{ edges { cursor } } }"
        )

    assert "errors" not in await graphql(sources(2_000 - 23))
    refused = await graphql(sources(2_001 - 23))
    assert "data" not in refused  # nothing was executed
    assert "more than 2000 tokens" in refused["errors"][0]["message"]


def _cost(document: str, variables: dict[str, Any] | None = None) -> int:
    schema = build_schema()._schema
    parsed = parse(document)
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    return operation_cost(schema, parsed, operation, variables)


def test_cost_formula() -> None:
    # The example documented in api/query_cost.py.
    assert _cost("{ cases(first: 100) { edges { node { ticket title } } } }") == 401
    # The argument's default (20) when absent; from a variable when given one.
    assert _cost("{ cases { edges { node { ticket } } } }") == 1 + 20 * 3
    page = "query($n: Int!) { cases(first: $n) { edges { node { ticket } } } }"
    assert _cost(page, {"n": 7}) == 1 + 7 * 3
    # Nested pages multiply; every branch of a union and every fragment counts.
    nested = """
      { cases(first: 10) { edges { node { ...Dups } } } }
      fragment Dups on Case { possibleDuplicates(limit: 5) { distanceM case { ticket } } }
    """
    assert _cost(nested) == 1 + 10 * (1 + (1 + (1 + 5 * (1 + 2))))
    union = """{ locate(lat: 0, lon: 0) {
        ... on Location { snapped } ... on ValidationError { message } } }"""
    assert _cost(union) == 1 + 2


async def test_cost_limit_refuses_before_execution(
    client: httpx.AsyncClient, credentials: Any
) -> None:
    staff = {**MODERN, **await credentials("POC_OPERATOR")}
    query = """
      { cases(first: 100) { edges { node {
          ticket possibleDuplicates(limit: 100) { distanceM case { ticket } } } } } }
    """
    response = await client.post("/graphql", json={"query": query}, headers=staff)
    assert response.status_code == 400
    body = response.json()
    assert body.get("data") is None
    assert _codes(body) == ["COST_LIMIT"]
    assert "exceeds the limit of 5000" in body["errors"][0]["message"]

    # The same page with fewer cases per page fits.
    cheaper = query.replace("first: 100", "first: 10").replace("limit: 100", "limit: 10")
    response = await client.post("/graphql", json={"query": cheaper}, headers=staff)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text


async def test_page_size_is_at_most_100(graphql: Any) -> None:
    assert "errors" not in await graphql("{ cases(first: 100) { edges { cursor } } }")
    refused = await graphql("{ cases(first: 101) { edges { cursor } } }")
    assert _codes(refused) == ["BAD_USER_INPUT"]
    assert "between 1 and 100" in refused["errors"][0]["message"]


async def test_nul_characters_are_refused(graphql: Any) -> None:
    literal = await graphql('{ case(ticket: "BKS\\u0000") { ticket } }')
    variable = await graphql("query($t: String!) { case(ticket: $t) { ticket } }", {"t": "BKS\x00"})
    nested = await graphql(
        "query($f: CaseFilterInput) { cases(filter: $f) { edges { cursor } } }",
        {"f": {"text": "lubang\x00"}},
    )
    for body in (literal, variable, nested):
        assert "data" not in body
        assert _codes(body) == ["BAD_USER_INPUT"]
        assert body["errors"][0]["message"] == NUL_MESSAGE


# --- Request body ------------------------------------------------------------


async def test_body_limit_by_content_length(client: httpx.AsyncClient) -> None:
    padded = {"query": "{ __typename }", "variables": {"pad": "x" * 1_048_576}}
    response = await client.post("/graphql", json=padded)
    assert response.status_code == 413
    assert response.json() == {"errors": [{"message": "Request body larger than 1048576 bytes."}]}

    fits = {"query": "{ __typename }", "variables": {"pad": "x" * 1_000_000}}
    assert (await client.post("/graphql", json=fits)).status_code == 200


async def test_body_limit_while_streaming(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(20):
            yield b"x" * 65_536
        yield b'"}}'

    # No Content-Length: the body is counted as it arrives.
    response = await client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["message"].startswith("Request body larger than")


# --- Mutation rate -----------------------------------------------------------


async def test_rate_limiter_windows(settings: Settings) -> None:
    # 60 a minute with bursts of 3: at most 3 in any 3 seconds.
    limiter = MutationRateLimiter(
        _configured(settings, mutation_rate_per_minute=60, mutation_burst=3)
    )
    assert [await limiter.wait_s("a", 1) for _ in range(3)] == [None, None, None]
    wait_s = await limiter.wait_s("a", 1)
    assert wait_s is not None and 1 <= wait_s <= 3
    assert await limiter.wait_s("b", 1) is None  # every caller has its own bucket
    # An operation of more mutations than a burst allows is never executed.
    assert await limiter.wait_s("c", 4) is not None
    assert await limiter.wait_s("c", 3) is None


@pytest.mark.parametrize(
    ("document", "count"),
    [
        ("mutation { a: submitReport(input: $i) { __typename } }", 1),
        ("mutation { a: x b: x c: x __typename }", 3),
        ("mutation { a: x a: x }", 1),  # one response key is one execution
        ("mutation { ... on Mutation { a: x b: x } ... on Mutation { c: x } }", 3),
        ("mutation { ...F ...F } fragment F on Mutation { a: x b: x }", 2),
        (
            "mutation { ...F } fragment F on Mutation { ...G a: x } "
            "fragment G on Mutation { b: x }",
            2,
        ),
    ],
)
def test_every_mutation_field_is_counted(document: str, count: int) -> None:
    from graphql import parse

    assert mutation_field_count(parse(document), None) == count


def test_callers_are_their_principals() -> None:
    from domain.access import ANONYMOUS, Principal

    def context(principal: Principal) -> Any:
        request = HTTPConnection(
            {"type": "http", "headers": [], "client": ("203.0.113.9", 5555), "path": "/"}
        )
        return type("C", (), {"principal": principal, "request": request})()

    partner = Principal(kind="partner", subject="partner:POT", partner_code="POT")
    assert caller_identity(context(partner)) == "partner:partner:POT"
    assert caller_identity(context(ANONYMOUS)) == "ip:203.0.113.9"


async def test_mutations_are_rate_limited(settings: Settings, connection: AsyncConnection) -> None:
    limited = _configured(settings, mutation_rate_per_minute=1, mutation_burst=2)
    async with _client(limited, connection) as client:
        for _ in range(2):
            body = (await client.post("/graphql", json={"query": NO_SUCH_CASE})).json()
            assert "RATE_LIMITED" not in _codes(body), body

        modern = await client.post("/graphql", json={"query": NO_SUCH_CASE}, headers=MODERN)
        assert modern.status_code == 429
        # Two in any 120 s (a sliding window): room comes back within two minutes.
        retry_after = int(modern.headers["retry-after"])
        assert 1 <= retry_after <= 120
        body = modern.json()
        assert "data" not in body  # nothing was executed
        assert _codes(body) == ["RATE_LIMITED"]
        assert body["errors"][0]["extensions"]["retryAfterSeconds"] == retry_after
        assert f"retry after {retry_after} s" in body["errors"][0]["message"]

        # Plain JSON keeps status 200, with the same header and error.
        plain = await client.post("/graphql", json={"query": NO_SUCH_CASE})
        assert plain.status_code == 200
        assert int(plain.headers["retry-after"]) == pytest.approx(retry_after, abs=1)
        assert _codes(plain.json()) == ["RATE_LIMITED"]

        # Queries are not limited; another principal has its own bucket.
        query = await client.post("/graphql", json={"query": "{ dinasList { code } }"})
        assert "errors" not in query.json()
        staff = staff_headers("POC_OPERATOR", settings=limited)
        keyed = await client.post("/graphql", json={"query": NO_SUCH_CASE}, headers=staff)
        assert "RATE_LIMITED" not in _codes(keyed.json())
        # The same token written another way is the same caller, not a new bucket.
        token = staff["authorization"].removeprefix("Bearer ")
        codes = [
            _codes(
                (
                    await client.post(
                        "/graphql",
                        json={"query": NO_SUCH_CASE},
                        headers={"authorization": spelling},
                    )
                ).json()
            )
            for spelling in (f"Bearer   {token}", f"bearer {token}", f"Bearer {token} ")
        ]
        assert ["RATE_LIMITED" in c for c in codes] == [False, True, True]
        # A junk credential opens no bucket of its own: it is refused.
        junk = await client.post(
            "/graphql", json={"query": NO_SUCH_CASE}, headers={"x-api-key": "sorot"}
        )
        assert junk.status_code == 401


async def test_aliased_mutations_in_fragments_each_take_a_token(
    settings: Settings, connection: AsyncConnection
) -> None:
    limited = _configured(settings, mutation_rate_per_minute=1, mutation_burst=2)
    many = (
        "mutation { ... on Mutation { a: __typename "
        + " ".join(
            f'm{i}: verifyCase(ticket: "BKS-0000-{i:06d}") {{ __typename }}' for i in range(3)
        )
        + " } }"
    )
    async with _client(limited, connection) as client:
        body = (await client.post("/graphql", json={"query": many})).json()
        assert _codes(body) == ["RATE_LIMITED"], body


# --- Database ----------------------------------------------------------------


async def test_statement_timeout_cancels_long_statements(settings: Settings) -> None:
    application = create_app(_configured(settings, database_statement_timeout_ms=200))
    async with LifespanManager(application):
        engine: AsyncEngine = application.state.engine
        started = time.monotonic()
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError, match="statement timeout"):
                await conn.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 3


async def test_database_failure_is_masked(
    settings: Settings, engine: AsyncEngine, bekasi_boundary_set: int
) -> None:
    """A resolver whose SQL hits the statement timeout (a table locked by another
    transaction) answers with the masked INTERNAL error: no trace, no SQL."""
    timed = _configured(settings, database_statement_timeout_ms=200)
    async with _client(timed) as client, engine.connect() as locker:
        await locker.begin()
        await locker.execute(text("LOCK TABLE kecamatan IN ACCESS EXCLUSIVE MODE"))
        response = await client.post("/graphql", json={"query": "{ kecamatanList { code } }"})
        await locker.rollback()
    assert response.status_code == 200
    body = response.json()
    assert body.get("data") is None
    assert [e["message"] for e in body["errors"]] == [INTERNAL_MESSAGE]
    assert _codes(body) == ["INTERNAL"]
    for leak in ("Traceback", "SELECT", "kecamatan", "timeout", "asyncpg", "sqlalchemy"):
        assert leak.lower() not in response.text.lower().replace("kecamatanlist", ""), leak


# --- Production mode ---------------------------------------------------------

TYPOS = [
    "{ kecamatn { code } }",  # field
    "{ cases(frist: 10) { edges { cursor } } }",  # argument
    "{ cases(filter: { statuses: [RECIEVED] }) { edges { cursor } } }",  # enum value
    "{ cases(filter: { statusses: [RECEIVED] }) { edges { cursor } } }",  # input field
    "query($f: CaseFiltr) { cases(filter: $f) { edges { cursor } } }",  # type
    "{ kecamatanList }",  # selection missing
]


@pytest.fixture
async def production(
    settings: Settings, connection: AsyncConnection
) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(_configured(settings, environment=Environment.PRODUCTION), connection) as c:
        yield c


async def test_production_hides_graphiql_introspection_and_suggestions(
    production: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    html = {"accept": "text/html"}
    assert (await client.get("/graphql", headers=html)).status_code == 200
    assert (await production.get("/graphql", headers=html)).status_code == 404

    introspection = {"query": "{ __schema { queryType { name } } }"}
    assert (await client.post("/graphql", json=introspection)).json()["data"]["__schema"]
    refused = (await production.post("/graphql", json=introspection)).json()
    assert "data" not in refused  # nothing was executed
    assert "introspection" in refused["errors"][0]["message"].lower()
    # __typename is not introspection of the schema: clients rely on it.
    typename = (await production.post("/graphql", json={"query": "{ __typename }"})).json()
    assert typename == {"data": {"__typename": "Query"}}

    development = [(await client.post("/graphql", json={"query": q})).text for q in TYPOS]
    assert all("Did you mean" in text for text in development), development
    for query in TYPOS:
        response = await production.post("/graphql", json={"query": query})
        assert response.json()["errors"], query
        assert "Did you mean" not in response.text, response.text

    bad_variable = {
        "query": "query($f: CaseFilterInput) { cases(filter: $f) { edges { cursor } } }",
        "variables": {"f": {"statuses": ["RECIEVED"], "textt": "x"}},
    }
    response = await production.post("/graphql", json=bad_variable)
    assert response.json()["errors"]
    assert "Did you mean" not in response.text, response.text


# --- CORS and websocket origins ----------------------------------------------

ALLOWED_ORIGIN = "https://poc.bekasi.example"
OTHER_ORIGIN = "https://evil.example"


async def test_cors_allow_list(settings: Settings, connection: AsyncConnection) -> None:
    configured = _configured(settings, cors_origins=[ALLOWED_ORIGIN])
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": ""}
    async with _client(configured, connection) as client:
        allowed = await client.options(
            "/graphql",
            headers={
                **preflight,
                "origin": ALLOWED_ORIGIN,
                "access-control-request-headers": "content-type, authorization",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()

        other = await client.options("/graphql", headers={**preflight, "origin": OTHER_ORIGIN})
        assert "access-control-allow-origin" not in other.headers

        simple = await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": ALLOWED_ORIGIN}
        )
        assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        foreign = await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": OTHER_ORIGIN}
        )
        assert "access-control-allow-origin" not in foreign.headers


async def test_no_cross_origin_by_default(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"origin": ALLOWED_ORIGIN}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


@pytest.fixture(scope="module")
def server(
    test_database_url: str, tmp_path_factory: pytest.TempPathFactory, engine: AsyncEngine
) -> Iterator[Server]:
    with running_servers(
        1,
        database_url=test_database_url,
        tmp_path=tmp_path_factory.mktemp("limits"),
        PATRIOT_SWEEPER_ENABLED="false",
        PATRIOT_PUBSUB_URL="memory://",
        PATRIOT_WEBSOCKET_ORIGINS=f'["{ALLOWED_ORIGIN}"]',
        PATRIOT_MAX_BODY_BYTES="4096",
    ) as [started]:
        yield started


async def _handshake(server: Server, origin: str | None) -> str | None:
    """The subprotocol the server accepted the websocket with."""
    protocol = Subprotocol("graphql-transport-ws")
    async with connect(
        server.ws, subprotocols=[protocol], origin=Origin(origin) if origin else None
    ) as socket:
        return socket.subprotocol


async def test_websocket_origins(server: Server) -> None:
    assert await _handshake(server, ALLOWED_ORIGIN) == "graphql-transport-ws"
    assert await _handshake(server, None) == "graphql-transport-ws"  # not a browser
    with pytest.raises(InvalidStatus) as refused:
        await _handshake(server, OTHER_ORIGIN)
    assert refused.value.response.status_code == 403


async def test_body_limit_on_a_real_server(server: Server) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(8):
            yield b"x" * 1_024
        yield b'"}}'

    async with httpx.AsyncClient(timeout=10) as client:
        declared = await client.post(
            server.http, json={"query": "{ __typename }", "variables": {"pad": "x" * 5_000}}
        )
        assert declared.status_code == 413
        streamed = await client.post(
            server.http, content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert streamed.json()["errors"][0]["message"] == "Request body larger than 4096 bytes."
        fine = await client.post(server.http, json={"query": "{ __typename }"})
        assert fine.json() == {"data": {"__typename": "Query"}}
    assert "Traceback" not in server.log.read_text()
