"""Fuzzing a running server with generated GraphQL operations (hypothesis-graphql,
the generator behind schemathesis's GraphQL support), from a fixed seed.

Valid queries and mutations, and operations with one schema violation each, go
to a real server process; none may get a 5xx and the server must log no
unexpected exception. Generated mutations can succeed and commit (new dinas,
categories, holidays, cases), so the server runs on a database of its own,
dropped afterwards: the reference data other tests rely on is never touched.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import strategies as gql_st

from core.settings import Settings
from tests.databases import committed_credentials_in, own_database
from tests.servers import Server, running_servers

SEED = 20_251_117
OPERATIONS = 1_050
MODERN = "application/graphql-response+json"
LEAKS = re.compile(r"Traceback|sqlalchemy|asyncpg|psycopg|\bSELECT\b|\bINSERT INTO\b|File \"")


@pytest.fixture(scope="module")
async def fuzz_database_url(test_database_url: str, shared_data_dir: Path) -> AsyncIterator[str]:
    async with own_database(test_database_url, shared_data_dir, suffix="fuzz") as url:
        yield url


@pytest.fixture(scope="module")
async def fuzz_callers(fuzz_database_url: str, settings: Settings) -> dict[str, dict[str, str]]:
    """Headers per caller: anonymous, staff with every power, and a partner app."""
    return await committed_credentials_in(
        fuzz_database_url, settings, (None, "ADMIN", "POC_OPERATOR", "partner:POT")
    )


@pytest.fixture(scope="module")
def server(fuzz_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_servers(
        1,
        database_url=fuzz_database_url,
        tmp_path=tmp_path_factory.mktemp("fuzz"),
        PATRIOT_SWEEPER_ENABLED="false",
        # Every generated mutation must reach the resolvers, not the rate limit.
        PATRIOT_MUTATION_RATE_PER_MINUTE="1000000",
        PATRIOT_MUTATION_BURST="1000000",
    ) as [started]:
        yield started


def _introspect(server: Server) -> graphql.GraphQLSchema:
    response = httpx.post(
        server.http, json={"query": graphql.get_introspection_query()}, timeout=30
    )
    response.raise_for_status()
    return graphql.build_client_schema(response.json()["data"])


def _node(value: Any) -> graphql.ValueNode:
    """A Python JSON value as a GraphQL literal."""
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, bool):
        return graphql.BooleanValueNode(value=value)
    if isinstance(value, int):
        return graphql.IntValueNode(value=str(value))
    if isinstance(value, float):
        return graphql.FloatValueNode(value=repr(value))
    if isinstance(value, str):
        return graphql.StringValueNode(value=value)
    if isinstance(value, list):
        return graphql.ListValueNode(values=tuple(_node(v) for v in value))
    return graphql.ObjectValueNode(
        fields=tuple(
            graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=_node(v))
            for k, v in value.items()
        )
    )


_lon = st.floats(106.85, 107.1)
_lat = st.floats(-6.45, -6.1)
_point = st.builds(lambda x, y: {"type": "Point", "coordinates": [x, y]}, _lon, _lat)
_square = st.builds(
    lambda x, y, d: {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]],
    },
    _lon,
    _lat,
    st.floats(-0.05, 0.05),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31 - 1) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
_datetimes = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "Date": st.dates().map(lambda d: d.isoformat()),
    "DateTime": _datetimes.map(lambda d: d.isoformat()),
    "GeoJSON": st.one_of(_point, _square, _json),
    "JSON": _json,
}


def _custom_scalars(schema: graphql.GraphQLSchema) -> dict[str, st.SearchStrategy[Any]]:
    custom = [
        t
        for t in schema.type_map.values()
        if isinstance(t, graphql.GraphQLScalarType)
        and not graphql.is_specified_scalar_type(t)
        and not t.name.startswith("__")
    ]
    # A scalar added later without a strategy here is still fuzzed, with strings.
    return {t.name: SCALARS.get(t.name, st.text(max_size=30)).map(_node) for t in custom}


def test_fuzz_running_server(server: Server, fuzz_callers: dict[str, dict[str, str]]) -> None:
    schema = _introspect(server)
    scalars = _custom_scalars(schema)
    operations = st.one_of(
        gql_st.queries(schema, custom_scalars=scalars),
        gql_st.mutations(schema, custom_scalars=scalars),
        gql_st.from_schema(schema, custom_scalars=scalars, mode=gql_st.Mode.NEGATIVE),
    )
    statuses: Counter[int] = Counter()
    kinds: Counter[str] = Counter()
    # Failures the server survived but should not have had: masked internal
    # errors, or messages that give internals away. First document per message.
    findings: dict[str, str] = {}

    def send(client: httpx.Client, document: str, headers: dict[str, str]) -> None:
        response = client.post(server.http, json={"query": document}, headers=headers)
        statuses[response.status_code] += 1
        assert response.status_code < 500, (document, response.text)
        body = response.json()
        assert "data" in body or "errors" in body, (document, response.text)
        for error in body.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            if code == "INTERNAL" or LEAKS.search(error["message"]):
                findings.setdefault(f"{error['message'][:300]} at {error.get('path')}", document)

    # Generating is the slow part: one worker sends each operation while the
    # next is generated. Still one request at a time, in the generated order.
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(max_workers=1) as sender:
        sent: list[Future[None]] = []

        @seed(SEED)
        @settings(
            max_examples=OPERATIONS,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(
            document=operations,
            accept=st.sampled_from([MODERN, "application/json"]),
            caller=st.sampled_from(sorted(fuzz_callers)),
        )
        def generate(document: str, accept: str, caller: str) -> None:
            kinds[document.split(None, 1)[0]] += 1
            headers = {"accept": accept, **fuzz_callers[caller]}
            sent.append(sender.submit(send, client, document, headers))

        generate()
        for outcome in sent:
            outcome.result()

    assert not findings, "\n\n".join(f"{m}\n{d}" for m, d in findings.items())
    assert sum(statuses.values()) >= 1_000, statuses
    assert kinds["mutation"] >= 200, kinds
    assert server.process.poll() is None, "the server died"
    log = server.log.read_text()
    assert "Traceback" not in log, log[-5_000:]
    assert "unexpected error" not in log, log[-5_000:]
