"""Malformed input gets a specific 4xx-class answer: a 400 with a GraphQL-shaped
body when the request cannot be read, otherwise a GraphQL error with the code
BAD_USER_INPUT. Never a 5xx, a dropped connection or INTERNAL."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from core.errors import ValidationFailed
from domain.event_feed import FeedPosition

pytestmark = pytest.mark.usefixtures("reference_data")

MODERN = {"accept": "application/graphql-response+json"}
JSON_BODY = {"content-type": "application/json"}

CASES = (
    "query($f: CaseFilterInput, $a: String) { cases(filter: $f, after: $a) { edges { cursor } } }"
)
PUBLIC_CASES = (
    "query($f: PublicCaseFilterInput, $a: String) "
    "{ publicCases(filter: $f, after: $a) { edges { cursor } } }"
)
STATS = """query($from: DateTime!, $to: DateTime!) {
  caseStats(groupBy: DAY, from: $from, to: $to) { total { received } } }"""
SUBMIT = """mutation($i: SubmitReportInput!) {
  submitReport(input: $i) { __typename ... on ValidationError { fields { field message } } } }"""


@pytest.fixture
async def as_staff(credentials: Any) -> dict[str, str]:
    return dict(await credentials("POC_OPERATOR"))


@pytest.fixture
async def as_partner(credentials: Any) -> dict[str, str]:
    return dict(await credentials("partner:POT"))


def _codes(body: dict[str, Any]) -> set[str | None]:
    return {(e.get("extensions") or {}).get("code") for e in body.get("errors") or []}


async def _post(
    client: httpx.AsyncClient, headers: dict[str, str], *, modern: bool = False, **request: Any
) -> httpx.Response:
    return await client.post(
        "/graphql", headers={**JSON_BODY, **headers, **(MODERN if modern else {})}, **request
    )


async def _refused_as_bad_input(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    query: str,
    variables: dict[str, Any] | None = None,
) -> list[str]:
    """Sends the operation in both media types: BAD_USER_INPUT, no 5xx; the messages."""
    messages: list[str] = []
    for modern in (False, True):
        response = await _post(
            client, headers, modern=modern, json={"query": query, "variables": variables}
        )
        assert response.status_code < 500, response.text
        body = response.json()
        assert body["errors"], body
        assert _codes(body) == {"BAD_USER_INPUT"}, body
        messages += [e["message"] for e in body["errors"]]
    return messages


def _assert_bad_request(response: httpx.Response, says: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert "data" not in body
    assert _codes(body) == {"BAD_REQUEST"}, body
    assert says in body["errors"][0]["message"], body


# --- The body ----------------------------------------------------------------


@pytest.mark.parametrize("body", [b"null", b"5", b'"{ __typename }"', b"true", b" \n -1.5"])
async def test_a_body_that_is_not_a_json_object(client: httpx.AsyncClient, body: bytes) -> None:
    for modern in (False, True):
        response = await _post(client, {}, modern=modern, content=body)
        _assert_bad_request(response, "must be a JSON object")


async def test_a_json_array_is_a_batch_which_is_refused(client: httpx.AsyncClient) -> None:
    _assert_bad_request(await _post(client, {}, content=b"[]"), "Batching is not enabled")


async def test_invalid_utf8(client: httpx.AsyncClient) -> None:
    response = await _post(client, {}, content=b'{"query": "{ __typename \xff }"}')
    _assert_bad_request(response, "not valid UTF-8")


async def test_json_nested_5000_deep(client: httpx.AsyncClient) -> None:
    deep = b"[" * 5_000 + b"]" * 5_000
    response = await _post(
        client, {}, content=b'{"query": "{ __typename }", "variables": {"a": ' + deep + b"}}"
    )
    _assert_bad_request(response, "depth limit exceeded")


async def test_json_nested_as_deep_as_allowed(
    client: httpx.AsyncClient, as_staff: dict[str, str], credentials: Any
) -> None:
    # Within the decoder's limit of 1024, but deeper than Python's recursion limit.
    deep = "[" * 1_000 + "]" * 1_000
    filtered = '{"query": ' + json.dumps(CASES) + ', "variables": {"f": {"kinds": ' + deep + "}}}"
    response = await _post(client, as_staff, content=filtered.encode())
    assert response.status_code == 200, response.text
    assert response.json()["errors"] and "INTERNAL" not in response.text

    rule = (
        'mutation($a: GeoJSON!) { createRoutingRule(input: {categoryCode: "JALAN_RUSAK", '
        'dinasCode: "DLH", priority: 1, description: "uji", area: $a}) { __typename '
        "... on ValidationError { fields { field message } } } }"
    )
    area = '{"type": "Polygon", "coordinates": ' + deep + "}"
    body = '{"query": ' + json.dumps(rule) + ', "variables": {"a": ' + area + "}}"
    response = await _post(client, await credentials("ADMIN"), content=body.encode())
    assert response.status_code == 200, response.text
    assert response.json()["data"]["createRoutingRule"]["__typename"] == "ValidationError"


async def test_a_lone_surrogate(client: httpx.AsyncClient, as_partner: dict[str, str]) -> None:
    # PostgreSQL cannot store half of a UTF-16 pair: refused as the JSON is read.
    report = (
        '{"source": "POT", "kind": "ASPIRASI", "categoryCode": "JALAN_RUSAK", '
        '"title": "Jalan \\ud800 rusak", "description": "Lubang besar di jalan", '
        '"idempotencyKey": "surrogate-1"}'
    )
    body = '{"query": ' + json.dumps(SUBMIT) + ', "variables": {"i": ' + report + "}}"
    _assert_bad_request(await _post(client, as_partner, content=body.encode()), "surrogate")
    # In the document itself it is a syntax error, which GraphQL reports.
    literal = '{ publicCase(ticket: "BKS\\ud800") { ticket } }'
    response = await _post(client, {}, json={"query": literal})
    assert response.status_code == 200
    assert "Invalid Unicode escape sequence" in response.json()["errors"][0]["message"]


# --- Values ------------------------------------------------------------------


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "raw", ["case:99999999999999999999", "case:9223372036854775808", "case:-5", "case:1_0"]
)
async def test_cursors_beyond_64_bit_integers(
    client: httpx.AsyncClient, as_staff: dict[str, str], raw: str
) -> None:
    for query, headers in ((CASES, as_staff), (PUBLIC_CASES, {})):
        messages = await _refused_as_bad_input(client, headers, query, {"a": _cursor(raw)})
        assert all("not a cursor returned by this API" in m for m in messages), messages


def test_event_cursors_beyond_64_bit_integers() -> None:
    # Live feeds resume after such a cursor (caseEvents(after:)).
    largest = FeedPosition(2**63 - 1, 2**63 - 1)
    assert FeedPosition.from_cursor(largest.cursor()) == largest
    prefix = base64.urlsafe_b64decode(largest.cursor()).decode().partition(":")[0] + ":"
    for numbers in ("99999999999999999999.1", "1.9223372036854775808", "1.-2", "1.2.3"):
        with pytest.raises(ValidationFailed):
            FeedPosition.from_cursor(_cursor(prefix + numbers))


async def test_list_filters_over_32767_items(
    client: httpx.AsyncClient, as_staff: dict[str, str]
) -> None:
    codes = ["32.75.01.1001"] * 40_000
    for query, headers, field in (
        (CASES, as_staff, "kelurahanCodes"),
        (PUBLIC_CASES, {}, "categoryCodes"),
    ):
        messages = await _refused_as_bad_input(client, headers, query, {"f": {field: codes}})
        assert messages[0] == f"$f.{field} holds 40000 items; a list may hold at most 1000."
    # The same limit holds for a list written in the document.
    listed = ", ".join(['"POT"'] * 1_001)
    messages = await _refused_as_bad_input(
        client, as_staff, f"{{ cases(filter: {{ sources: [{listed}] }}) {{ edges {{ cursor }} }} }}"
    )
    assert "holds 1001 items" in messages[0]
    fits = await _post(
        client, as_staff, json={"query": CASES, "variables": {"f": {"sources": ["POT"] * 1_000}}}
    )
    assert "errors" not in fits.json(), fits.text


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00+14:00",  # year 0 in UTC
        "9999-12-31T23:59:59-12:00",  # year 10000 in UTC
        "9999-12-31T23:59:59+00:00",
    ],
)
async def test_dates_in_year_1_or_9999(
    client: httpx.AsyncClient,
    as_staff: dict[str, str],
    as_partner: dict[str, str],
    credentials: Any,
    moment: str,
) -> None:
    for query, headers, variables in (
        (CASES, as_staff, {"f": {"createdFrom": moment}}),
        (PUBLIC_CASES, {}, {"f": {"createdTo": moment}}),
        (STATS, as_staff, {"from": "2026-01-01T00:00:00Z", "to": moment}),
        (
            SUBMIT,
            as_partner,
            {
                "i": {
                    "source": "POT",
                    "kind": "ASPIRASI",
                    "categoryCode": "JALAN_RUSAK",
                    "title": "Trotoar rusak",
                    "description": "Trotoar berlubang di depan pasar",
                    "idempotencyKey": f"date-{moment}",
                    "occurredAt": moment,
                }
            },
        ),
    ):
        messages = await _refused_as_bad_input(client, headers, query, variables)
        assert all("between the years 1900 and 2999" in m for m in messages), messages
    # Written in the document, and as a Date.
    literal = f'{{ cases(filter: {{ createdFrom: "{moment}" }}) {{ edges {{ cursor }} }} }}'
    await _refused_as_bad_input(client, as_staff, literal)
    holiday = 'mutation($d: Date!) { addHoliday(input: {date: $d, name: "Uji"}) { __typename } }'
    await _refused_as_bad_input(client, await credentials("ADMIN"), holiday, {"d": moment[:10]})


async def test_a_20000_word_text_search(
    client: httpx.AsyncClient, as_staff: dict[str, str]
) -> None:
    words = " ".join(f"kata{i}" for i in range(20_000))
    messages = await _refused_as_bad_input(client, as_staff, CASES, {"f": {"text": words}})
    assert "filter.text: at most 200 characters" in messages[0]
    fits = await _post(
        client, as_staff, json={"query": CASES, "variables": {"f": {"text": "a " * 100}}}
    )
    assert "errors" not in fits.json(), fits.text


async def test_a_subscription_sent_over_http(
    client: httpx.AsyncClient, as_staff: dict[str, str]
) -> None:
    subscription = "subscription { caseEvents { cursor } }"
    messages = await _refused_as_bad_input(client, as_staff, subscription)
    assert all("websockets" in m for m in messages), messages
    modern = await _post(client, as_staff, modern=True, json={"query": subscription})
    assert modern.status_code == 400 and "data" not in modern.json()
    via_get = await client.get(
        "/graphql", params={"query": subscription}, headers={**as_staff, **MODERN}
    )
    assert via_get.status_code == 400, via_get.text
    assert _codes(via_get.json()) == {"BAD_USER_INPUT"}
