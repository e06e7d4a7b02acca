"""Malformed requests against a running server, from a fixed seed: generated operations
(hypothesis-graphql) in malformed envelopes and with malformed variables, generated
bodies that are not GraphQL requests at all, and the inputs of issue #15's list.

None may get a 5xx, an INTERNAL error, or a message that gives internals away; the
server must log no unexpected exception. Like tests/test_fuzz.py, the server runs
on a database of its own, dropped afterwards.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
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
from tests.test_fuzz import LEAKS, _custom_scalars

SEED = 20_251_208
MODERN = "application/graphql-response+json"
# Generated examples per test; with the listed inputs, more than 1,000 requests.
ENVELOPES = 500
VARIABLES = 400
BODIES = 300


@pytest.fixture(scope="module")
async def malformed_database_url(
    test_database_url: str, shared_data_dir: Path
) -> AsyncIterator[str]:
    async with own_database(test_database_url, shared_data_dir, suffix="malformed") as url:
        yield url


@pytest.fixture(scope="module")
async def callers(malformed_database_url: str, settings: Settings) -> dict[str, dict[str, str]]:
    return await committed_credentials_in(
        malformed_database_url, settings, (None, "ADMIN", "POC_OPERATOR", "partner:POT")
    )


@pytest.fixture(scope="module")
def server(
    malformed_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with running_servers(
        1,
        database_url=malformed_database_url,
        tmp_path=tmp_path_factory.mktemp("fuzz-malformed"),
        PATRIOT_SWEEPER_ENABLED="false",
        PATRIOT_MUTATION_RATE_PER_MINUTE="1000000",
        PATRIOT_MUTATION_BURST="1000000",
    ) as [started]:
        yield started


@pytest.fixture(scope="module")
def schema(server: Server) -> graphql.GraphQLSchema:
    response = httpx.post(
        server.http, json={"query": graphql.get_introspection_query()}, timeout=30
    )
    response.raise_for_status()
    return graphql.build_client_schema(response.json()["data"])


# --- sending and judging ------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    body: bytes
    content_type: str = "application/json"
    accept: str = "application/json"
    caller: str = "anonymous"
    method: str = "POST"
    params: dict[str, str] = field(default_factory=dict)


def _json(value: Any) -> bytes:
    # allow_nan: Python's json writes NaN and Infinity, which JSON does not have.
    return json.dumps(value, allow_nan=True).encode()


@dataclass
class Answer:
    problems: list[str]
    # "data" for a result without errors, else the first error's code, else the status.
    outcome: str


def _judge(response: httpx.Response) -> Answer:
    """What is wrong with the server's answer to a malformed request."""
    status = f"HTTP {response.status_code}"
    if response.status_code >= 500:
        return Answer([f"{status}: {response.text[:300]}"], status)
    if "json" not in response.headers.get("content-type", ""):
        return Answer([], status)  # 404, 405, 413 and the like answered as text
    try:
        body = response.json()
    except json.JSONDecodeError:
        return Answer([f"{status} with a body that is not JSON: {response.text[:300]}"], status)
    if not isinstance(body, dict):
        return Answer([f"a JSON body that is not an object: {response.text[:300]}"], status)
    errors = body.get("errors") or []
    outcome = "data" if not errors else str((errors[0].get("extensions") or {}).get("code"))
    found = []
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        message = str(error.get("message"))
        if code == "INTERNAL":
            found.append(f"INTERNAL at {error.get('path')}")
        elif LEAKS.search(message):
            found.append(f"internals in a message: {message[:300]}")
    return Answer(found, outcome)


def _send(client: httpx.Client, server: Server, request: Request, callers: Any) -> Answer:
    headers = {"accept": request.accept, **callers[request.caller]}
    try:
        if request.method == "GET":
            response = client.get(server.http, params=request.params, headers=headers)
        else:
            headers["content-type"] = request.content_type
            response = client.post(server.http, content=request.body, headers=headers)
    except httpx.TransportError as error:
        return Answer([f"no answer: {type(error).__name__}"], "no answer")
    return _judge(response)


class Findings:
    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.by_problem: dict[str, Request] = {}

    def record(self, request: Request, answer: Answer) -> None:
        self.outcomes[answer.outcome] += 1
        for problem in answer.problems:
            self.by_problem.setdefault(problem, request)

    def report(self) -> str:
        return "\n\n".join(
            f"{problem}\n  body: {request.body[:500]!r}"
            for problem, request in self.by_problem.items()
        )


def _run(
    server: Server,
    callers: dict[str, dict[str, str]],
    strategy: st.SearchStrategy[Request],
    examples: int,
) -> Findings:
    findings = Findings()
    # Generating is the slow part: one worker sends each request while the next is
    # generated, still one at a time and in order.
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(max_workers=1) as sender:
        pending: list[tuple[Request, Future[Answer]]] = []

        @seed(SEED)
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(request=strategy)
        def generate(request: Request) -> None:
            pending.append((request, sender.submit(_send, client, server, request, callers)))

        generate()
        for request, outcome in pending:
            findings.record(request, outcome.result())
    return findings


def _log_size(server: Server) -> int:
    return server.log.stat().st_size


def _assert_server_survived(server: Server, *, log_from: int) -> None:
    assert server.process.poll() is None, "the server died"
    with server.log.open("rb") as file:
        file.seek(log_from)
        log = file.read().decode(errors="replace")
    assert "Traceback" not in log, log[-5_000:]
    assert "unexpected error" not in log, log[-5_000:]


# --- generated operations in malformed envelopes -------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_callers = st.sampled_from(["anonymous", "ADMIN", "POC_OPERATOR", "partner:POT"])
_accepts = st.sampled_from([MODERN, "application/json", "*/*", "text/html", ""])


def _envelopes(document: st.SearchStrategy[str]) -> st.SearchStrategy[Request]:
    """A generated document sent with odd companions: variables, operation names and
    extensions of every JSON type, through POST or GET."""

    def build(
        query: str,
        variables: Any,
        operation_name: Any,
        extensions: Any,
        caller: str,
        accept: str,
        via_get: bool,
    ) -> Request:
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        if operation_name is not None:
            payload["operationName"] = operation_name
        if extensions is not None:
            payload["extensions"] = extensions
        if via_get:
            params = {
                key: value if isinstance(value, str) else json.dumps(value)
                for key, value in payload.items()
            }
            return Request(b"", method="GET", params=params, caller=caller, accept=accept)
        return Request(_json(payload), caller=caller, accept=accept)

    return st.builds(
        build,
        document,
        st.none() | _json_values,
        st.none() | st.text(max_size=20) | _json_values,
        st.none() | _json_values,
        _callers,
        _accepts,
        st.booleans(),
    )


def test_generated_operations_in_malformed_envelopes(
    server: Server, schema: graphql.GraphQLSchema, callers: dict[str, dict[str, str]]
) -> None:
    scalars = _custom_scalars(schema)
    documents = st.one_of(
        gql_st.queries(schema, custom_scalars=scalars),
        gql_st.mutations(schema, custom_scalars=scalars),
        gql_st.from_schema(schema, custom_scalars=scalars, mode=gql_st.Mode.NEGATIVE),
    )

    log_from = _log_size(server)
    findings = _run(server, callers, _envelopes(documents), ENVELOPES)

    assert not findings.by_problem, findings.report()
    assert findings.outcomes.total() == ENVELOPES
    # Some ran, some were refused as the caller's mistake.
    assert findings.outcomes["data"] > 0, findings.outcomes
    assert findings.outcomes["BAD_USER_INPUT"] + findings.outcomes["HTTP 400"] > 0
    _assert_server_survived(server, log_from=log_from)


# --- operations with variables, and malformed values for them -------------------------

# Operations whose variables reach the resolvers: each gets values of the right type
# over their whole range (most of the time, so that the operation runs), values of
# every other type, or none.
_statuses = st.lists(st.sampled_from(["RECEIVED", "VERIFIED", "CLOSED", "REOPENED"]), max_size=4)
_datetime_text = st.datetimes().map(lambda d: d.isoformat() + "Z")
_finite = st.floats(allow_nan=False, allow_infinity=False)
OPERATIONS_WITH_VARIABLES: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "query($lat: Float!, $lon: Float!) { locate(lat: $lat, lon: $lon) { __typename } }": {
        "lat": _finite,
        "lon": _finite,
    },
    "query($f: PublicCaseFilterInput, $n: Int!, $a: String)"
    " { publicCases(filter: $f, first: $n, after: $a) { edges { cursor } } }": {
        "f": st.fixed_dictionaries(
            {},
            optional={
                "categoryCodes": st.lists(st.text(max_size=8), max_size=50),
                "kelurahanCodes": st.lists(st.text(max_size=16), max_size=50),
                "createdFrom": _datetime_text,
                "createdTo": _datetime_text,
                "statuses": _statuses,
                "near": st.fixed_dictionaries({"lat": _finite, "lon": _finite, "radiusM": _finite}),
                "bbox": st.fixed_dictionaries(
                    {
                        "west": _finite,
                        "south": _finite,
                        "east": _finite,
                        "north": _finite,
                    }
                ),
            },
        ),
        "n": st.integers(1, 100) | st.integers(-(2**40), 2**40),
        # Beyond 64 bits: one of the listed inputs below.
        "a": st.integers(0, 2**63 - 1).map(
            lambda n: base64.urlsafe_b64encode(f"case:{n}".encode()).decode()
        )
        | st.text(max_size=40),
    },
    "query($t: String!) { publicCase(ticket: $t) { ticket } }": {"t": st.text(max_size=200)},
    "query($n: String) { kecamatan(name: $n) { code } }": {"n": st.text(max_size=100)},
    "query($f: CaseFilterInput, $n: Int!) { cases(filter: $f, first: $n) { edges { cursor } } }": {
        "f": st.fixed_dictionaries(
            {},
            optional={
                "text": st.text(max_size=500),
                "sources": st.lists(st.text(max_size=10), max_size=20),
                "dinasCodes": st.lists(st.text(max_size=10), max_size=20),
                "createdFrom": _datetime_text,
                "statuses": _statuses,
            },
        ),
        "n": st.integers(1, 100) | st.integers(-(2**40), 2**40),
    },
    "mutation($i: SubmitReportInput!) { submitReport(input: $i) { __typename } }": {
        "i": st.fixed_dictionaries(
            {
                "source": st.sampled_from(["POT", "SOROT", ""]) | st.text(max_size=10),
                "kind": st.sampled_from(["LAPORAN", "ASPIRASI", "INFORMASI"]),
                "categoryCode": st.sampled_from(["JALAN_RUSAK", "SAMPAH"]) | st.text(max_size=10),
                "title": st.text(max_size=300),
                "description": st.text(max_size=300),
                "idempotencyKey": st.text(min_size=1, max_size=80),
            },
            optional={
                "location": st.fixed_dictionaries({"lat": _finite, "lon": _finite}),
                "reporter": st.fixed_dictionaries(
                    {},
                    optional={
                        "name": st.text(max_size=100),
                        "phone": st.text(max_size=30),
                        "email": st.text(max_size=60),
                    },
                ),
                "mediaUrls": st.lists(st.text(max_size=60), max_size=5),
                "occurredAt": _datetime_text,
                "kelurahanCode": st.text(max_size=20),
            },
        ),
    },
}


@st.composite
def _operations_with_variables(draw: st.DrawFn) -> Request:
    query = draw(st.sampled_from(sorted(OPERATIONS_WITH_VARIABLES)))
    fitting = OPERATIONS_WITH_VARIABLES[query]
    variables: dict[str, Any] = {}
    for name, strategy in fitting.items():
        form = draw(st.sampled_from(["fitting"] * 7 + ["any"] * 2 + ["left out"]))
        if form != "left out":
            variables[name] = draw(strategy if form == "fitting" else _json_values)
    caller = "partner:POT" if query.startswith("mutation") else draw(_callers)
    return Request(
        _json({"query": query, "variables": variables}), caller=caller, accept=draw(_accepts)
    )


def test_operations_with_malformed_variables(
    server: Server, callers: dict[str, dict[str, str]]
) -> None:
    log_from = _log_size(server)
    findings = _run(server, callers, _operations_with_variables(), VARIABLES)

    assert not findings.by_problem, findings.report()
    assert findings.outcomes["data"] > VARIABLES / 10, findings.outcomes
    assert findings.outcomes["BAD_USER_INPUT"] > VARIABLES / 10, findings.outcomes
    _assert_server_survived(server, log_from=log_from)


# --- bodies that are not GraphQL requests ----------------------------------------------

# JSON objects whose members have any JSON type; the query is now and then one that
# runs, so that its companions are read too.
_object_bodies = st.fixed_dictionaries(
    {},
    optional={
        "query": st.sampled_from(
            ["{ __typename }", "query Q { categories { code } }", "mutation { __typename }"]
        )
        | _json_values,
        "variables": _json_values,
        "operationName": _json_values,
        "extensions": _json_values,
        "id": _json_values,
    },
).map(lambda value: Request(_json(value)))
# Anything else: bytes, other JSON values, text that is not UTF-8, other media types.
_other_bodies = st.one_of(
    st.binary(max_size=200).map(lambda raw: Request(raw)),
    _json_values.filter(lambda value: not isinstance(value, dict)).map(
        lambda value: Request(_json(value))
    ),
    st.text(max_size=200).map(lambda text: Request(text.encode("utf-8", "surrogatepass"))),
    st.builds(
        lambda body, content_type: Request(body, content_type=content_type),
        st.binary(max_size=100),
        st.sampled_from(
            [
                "text/plain",
                "application/graphql",
                "multipart/form-data",
                "",
                "application/json; charset=latin-1",
            ]
        ),
    ),
)


def test_bodies_that_are_json_objects_of_any_shape(
    server: Server, callers: dict[str, dict[str, str]]
) -> None:
    log_from = _log_size(server)
    findings = _run(server, callers, _object_bodies, BODIES)

    assert not findings.by_problem, findings.report()
    assert findings.outcomes["data"] > 0, findings.outcomes
    _assert_server_survived(server, log_from=log_from)


def test_bodies_that_are_not_json_objects(
    server: Server, callers: dict[str, dict[str, str]]
) -> None:
    log_from = _log_size(server)
    findings = _run(server, callers, _other_bodies, BODIES)

    assert not findings.by_problem, findings.report()
    _assert_server_survived(server, log_from=log_from)


# --- the inputs of the issue, one by one -----------------------------------------------


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _query(document: str, variables: dict[str, Any] | None = None, **extra: Any) -> bytes:
    return _json({"query": document, "variables": variables, **extra})


_PUBLIC_CASES = (
    "query($f: PublicCaseFilterInput, $a: String)"
    " { publicCases(filter: $f, after: $a) { edges { cursor } } }"
)
_SUBMIT = "mutation($i: SubmitReportInput!) { submitReport(input: $i) { __typename } }"
_REPORT = {
    "source": "POT",
    "kind": "LAPORAN",
    "categoryCode": "JALAN_RUSAK",
    "title": "Jalan berlubang",
    "description": "Lubang besar di lajur kiri.",
    "location": {"lat": -6.2529, "lon": 107.0075},
    "idempotencyKey": "malformed-1",
}

LISTED = [
    pytest.param(
        Request(b"null"),
        id="json-null",
    ),
    pytest.param(Request(b"[]"), id="json-empty-array"),
    pytest.param(
        Request(b"42"),
        id="json-number",
    ),
    pytest.param(
        Request(b'"{ __typename }"'),
        id="json-string",
    ),
    pytest.param(
        Request(b'{"query": "{ __typename \xff }"}'),
        id="invalid-utf8",
    ),
    pytest.param(
        Request(b'{"query": "{ __typename }", "variables": ' + _deep(5_000).encode() + b"}"),
        id="nested-5000-variables",
    ),
    pytest.param(
        Request(_deep(5_000).encode()),
        id="nested-5000-body",
    ),
    pytest.param(
        Request(
            _query(_PUBLIC_CASES, {"a": base64.urlsafe_b64encode(b"case:" + b"9" * 30).decode()})
        ),
        id="cursor-beyond-64-bit",
    ),
    pytest.param(
        Request(_query(_PUBLIC_CASES, {"f": {"categoryCodes": ["X"] * 40_000}})),
        id="list-filter-40000",
    ),
    pytest.param(
        Request(_query(_PUBLIC_CASES, {"f": {"createdFrom": "0001-01-01T00:00:00Z"}})),
        id="date-year-1",
    ),
    pytest.param(
        Request(_query(_PUBLIC_CASES, {"f": {"createdTo": "9999-12-31T23:59:59Z"}})),
        id="date-year-9999",
    ),
    pytest.param(
        Request(
            _query(
                "query($f: CaseFilterInput) { cases(filter: $f) { edges { cursor } } }",
                {"f": {"text": " ".join(["kata"] * 20_000)}},
            ),
            caller="POC_OPERATOR",
        ),
        id="search-20000-words",
    ),
    pytest.param(
        Request(
            b'{"query": "'
            + _SUBMIT.encode()
            + b'", "variables": {"i": '
            + _json({**_REPORT, "title": "TITLE"}).replace(b'"TITLE"', b'"\\ud800"')
            + b"}}",
            caller="partner:POT",
        ),
        id="lone-surrogate-in-title",
    ),
    pytest.param(
        Request(_query("subscription { caseEvents { cursor } }"), caller="POC_OPERATOR"),
        id="subscription-over-http",
    ),
    pytest.param(
        Request(
            _query("query($n: Int!) { overdueCases(first: $n) { ticket } }", {"n": 2**70}),
            caller="POC_OPERATOR",
        ),
        id="int-beyond-32-bit",
    ),
    pytest.param(
        Request(
            b'{"query": "query($x: Float!) { locate(lat: $x, lon: $x) { __typename } }",'
            b' "variables": {"x": NaN}}'
        ),
        id="nan-variable",
    ),
    pytest.param(
        Request(_query("{ __typename }", None, operationName=7)), id="operation-name-number"
    ),
    pytest.param(
        Request(_json({"query": "{ __typename }", "variables": [1]})), id="variables-array"
    ),
    pytest.param(
        Request(_json({"query": "{ __typename }", "extensions": "x"})), id="extensions-string"
    ),
    pytest.param(Request(_json({"query": ["{ __typename }"]})), id="query-array"),
    pytest.param(Request(_json([{"query": "{ __typename }"}] * 3)), id="batch"),
    pytest.param(
        Request(
            b'{"query": "{ __typename }"',
        ),
        id="truncated",
    ),
    pytest.param(
        Request(b"{ __typename }", content_type="application/graphql"), id="graphql-media-type"
    ),
    pytest.param(
        Request(b"", method="GET", params={"query": "{ __typename }", "variables": "{"}),
        id="get-broken-variables",
    ),
    pytest.param(
        Request(b"", method="GET", params={"query": "mutation { __typename }"}), id="get-mutation"
    ),
    pytest.param(
        Request(b"", method="GET", params={"query": "{ __typename }", "variables": _deep(5_000)}),
        id="get-nested-5000",
    ),
]


@pytest.mark.parametrize("request_", LISTED)
def test_listed_malformed_input(
    server: Server, callers: dict[str, dict[str, str]], request_: Request
) -> None:
    log_from = _log_size(server)
    with httpx.Client(timeout=30) as client:
        answer = _send(client, server, request_, callers)

    assert answer.problems == []
    _assert_server_survived(server, log_from=log_from)
