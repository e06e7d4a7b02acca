"""Live subscriptions across two real server processes, with a real websocket client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests import bekasi
from tests.conftest import wipe_committed_cases
from tests.factories import SUBMIT, make_case, report_input
from tests.servers import Server, running_servers
from tests.ws_client import graphql_socket

pytestmark = pytest.mark.usefixtures("reference_data")

CASE_EVENTS = """
subscription Events($filter: CaseEventFilterInput, $after: String) {
  caseEvents(filter: $filter, after: $after) {
    cursor
    event { type actor }
    case { ticket status kecamatan { code } dinas { code } }
  }
}
"""

COUNTS = """
subscription Counts($groupBy: CaseCountGroup!) {
  openCaseCounts(groupBy: $groupBy) { groupBy total groups { key label count } }
}
"""


@pytest.fixture(scope="module")
def servers(
    test_database_url: str, tmp_path_factory: pytest.TempPathFactory, reference_data: None
) -> Iterator[list[Server]]:
    with running_servers(
        2,
        database_url=test_database_url,
        tmp_path=tmp_path_factory.mktemp("servers"),
        PATRIOT_SWEEPER_ENABLED="false",
        # These tests submit many reports from one partner in a few seconds.
        PATRIOT_MUTATION_BURST="200",
    ) as started:
        yield started


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[None]:
    """These tests commit cases for real; wipe them afterwards."""
    try:
        yield
    finally:
        await wipe_committed_cases(engine)


@pytest.fixture(autouse=True)
def _credentials(committed_credentials: Any) -> None:
    global CREDENTIALS
    CREDENTIALS = committed_credentials


CREDENTIALS: Any = None


def poc_socket(url: str, spec: str = "POC_OPERATOR") -> Any:
    token = CREDENTIALS(spec)["authorization"]
    return graphql_socket(url, init_payload={"authorization": token})


async def _submit(server: Server, **overrides: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            server.http,
            json={"query": SUBMIT, "variables": {"input": report_input(**overrides)}},
            headers=CREDENTIALS("partner:POT"),
        )
    result: dict[str, Any] = response.json()["data"]["submitReport"]
    assert result["__typename"] == "Case", result
    return result


def _at(shared_data_dir: Path, code: str) -> dict[str, float]:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, code)
    return {"lat": lat, "lon": lon}


@pytest.mark.usefixtures("committed")
async def test_events_committed_on_one_process_reach_subscribers_on_the_other(
    servers: list[Server], shared_data_dir: Path
) -> None:
    a, b = servers
    async with poc_socket(b.ws) as socket:
        await socket.subscribe("1", CASE_EVENTS, {"filter": {"kecamatanCodes": ["32.75.08"]}})
        await asyncio.sleep(0.3)  # the subscription is registered
        elsewhere = await _submit(a, location=_at(shared_data_dir, "32.75.09.1002"))
        case = await _submit(a, location=_at(shared_data_dir, "32.75.08.1001"))
        created = (await socket.next_data())["caseEvents"]
        routed = (await socket.next_data())["caseEvents"]
        assert [created["event"]["type"], routed["event"]["type"]] == ["CREATED", "ROUTED"]
        assert created["case"]["ticket"] == routed["case"]["ticket"] == case["ticket"]
        assert created["case"]["kecamatan"] == {"code": "32.75.08"}
        assert created["cursor"] != routed["cursor"]
        await socket.assert_silent(0.5)  # nothing of the other kecamatan's case
        assert elsewhere["ticket"] != case["ticket"]


@pytest.mark.usefixtures("committed")
async def test_reconnecting_with_the_last_cursor_misses_nothing_and_repeats_nothing(
    servers: list[Server], shared_data_dir: Path
) -> None:
    a, b = servers
    async with poc_socket(b.ws) as socket:
        await socket.subscribe("1", CASE_EVENTS)
        await asyncio.sleep(0.3)
        first = await _submit(a)
        seen = [(await socket.next_data())["caseEvents"] for _ in range(2)]
        assert {s["case"]["ticket"] for s in seen} == {first["ticket"]}
    last_cursor = seen[-1]["cursor"]

    # The network drops; two more reports arrive meanwhile.
    missed = [await _submit(a), await _submit(a)]

    async with poc_socket(b.ws) as socket:
        await socket.subscribe("2", CASE_EVENTS, {"after": last_cursor})
        replayed = [(await socket.next_data())["caseEvents"] for _ in range(4)]
        assert [(r["case"]["ticket"], r["event"]["type"]) for r in replayed] == [
            (missed[0]["ticket"], "CREATED"),
            (missed[0]["ticket"], "ROUTED"),
            (missed[1]["ticket"], "CREATED"),
            (missed[1]["ticket"], "ROUTED"),
        ]
        live = await _submit(a)
        after_replay = [(await socket.next_data())["caseEvents"] for _ in range(2)]
        assert {r["case"]["ticket"] for r in after_replay} == {live["ticket"]}
        await socket.assert_silent(0.5)


@pytest.mark.usefixtures("committed")
async def test_a_cursor_taken_before_any_event_resumes_without_a_gap(
    servers: list[Server],
) -> None:
    """A screen that dropped before its first event (a quiet night) still gets
    every report made while it was away."""
    a, b = servers
    async with httpx.AsyncClient(timeout=10) as client:
        anonymous = await client.post(b.http, json={"query": "{ caseEventsCursor }"})
        assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        answer = await client.post(
            b.http, json={"query": "{ caseEventsCursor }"}, headers=CREDENTIALS("POC_OPERATOR")
        )
    cursor = answer.json()["data"]["caseEventsCursor"]

    missed = [await _submit(a), await _submit(a)]  # while no screen is connected

    async with poc_socket(b.ws) as socket:
        await socket.subscribe("1", CASE_EVENTS, {"after": cursor})
        replayed = [(await socket.next_data())["caseEvents"] for _ in range(4)]
        assert [(r["case"]["ticket"], r["event"]["type"]) for r in replayed] == [
            (missed[0]["ticket"], "CREATED"),
            (missed[0]["ticket"], "ROUTED"),
            (missed[1]["ticket"], "CREATED"),
            (missed[1]["ticket"], "ROUTED"),
        ]
        await socket.assert_silent(0.5)


@pytest.mark.usefixtures("committed")
async def test_events_of_a_rolled_back_transaction_are_never_delivered(
    servers: list[Server], engine: AsyncEngine
) -> None:
    a, b = servers
    async with poc_socket(b.ws) as socket:
        await socket.subscribe("1", CASE_EVENTS)
        await asyncio.sleep(0.3)
        async with AsyncSession(bind=engine) as session:
            transaction = await session.begin()
            await make_case(session, title="never committed")
            await session.execute(text("SELECT pg_notify('case_events', '')"))
            await transaction.rollback()
        # Wake the feed by hand as well: a notification alone never delivers anything.
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_notify('case_events', '')"))
            await conn.commit()
        await socket.assert_silent(1.5)
        committed_case = await _submit(a)
        received = (await socket.next_data())["caseEvents"]
        assert received["case"]["ticket"] == committed_case["ticket"]


@pytest.mark.usefixtures("committed")
async def test_a_stalled_subscriber_blocks_neither_mutations_nor_other_subscribers(
    servers: list[Server],
) -> None:
    a, b = servers
    async with poc_socket(b.ws) as stalled, poc_socket(b.ws) as healthy:
        await stalled.subscribe("s", CASE_EVENTS)
        await healthy.subscribe("h", CASE_EVENTS)
        await asyncio.sleep(0.3)
        # `stalled` never reads. Thirty reports still go through promptly...
        tickets = [
            (await asyncio.wait_for(_submit(a, title=f"Banjir {i}"), timeout=5))["ticket"]
            for i in range(30)
        ]
        # ...and the healthy subscriber receives all sixty events in order.
        received = [(await healthy.next_data())["caseEvents"] for _ in range(60)]
        assert [r["case"]["ticket"] for r in received[::2]] == tickets
        assert [r["event"]["type"] for r in received] == ["CREATED", "ROUTED"] * 30


@pytest.mark.usefixtures("committed")
async def test_open_case_counts_start_with_the_current_counts_then_follow_changes(
    servers: list[Server],
) -> None:
    a, b = servers
    async with poc_socket(b.ws) as socket:
        await socket.subscribe("c", COUNTS, {"groupBy": "STATUS"})
        initial = (await socket.next_data())["openCaseCounts"]
        assert initial["groupBy"] == "STATUS"
        before = initial["total"]
        await _submit(a)
        await _submit(a)
        totals = [before]
        while totals[-1] < before + 2:
            totals.append((await socket.next_data(wait_s=5))["openCaseCounts"]["total"])
        assert totals[-1] == before + 2
        assert all(x < y for x, y in itertools.pairwise(totals))


async def test_the_legacy_subscription_protocol_is_refused(servers: list[Server]) -> None:
    _, b = servers
    async with connect(b.ws, subprotocols=["graphql-ws"]) as connection:  # type: ignore[list-item]
        with pytest.raises(ConnectionClosed) as closed:
            await connection.send('{"type": "connection_init", "payload": {}}')
            await asyncio.wait_for(connection.recv(), 3)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4406


async def test_a_bad_cursor_is_an_error(servers: list[Server]) -> None:
    _, b = servers
    async with poc_socket(b.ws) as socket:
        await socket.subscribe("1", CASE_EVENTS, {"after": "not-a-cursor"})
        message = await socket.receive()
        assert message["type"] in {"error", "next"}
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert "cursor" in str(errors)


@pytest.mark.parametrize(
    "payload",
    [{}, {"authorization": "Bearer not-a-token"}, {"authorization": "Basic abc"}],
    ids=["missing", "invalid", "wrong-scheme"],
)
async def test_sockets_without_a_valid_token_are_closed_with_4403(
    servers: list[Server], payload: dict[str, str]
) -> None:
    _, b = servers
    async with connect(b.ws, subprotocols=["graphql-transport-ws"]) as connection:  # type: ignore[list-item]
        await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(connection.recv(), 3)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_a_socket_is_closed_when_its_token_expires(
    servers: list[Server], settings: Any
) -> None:
    from datetime import timedelta

    from api.auth import issue_token
    from domain.access import Role

    _, b = servers
    token = issue_token(
        settings=settings, subject="short", role=Role.POC_OPERATOR, lifetime=timedelta(seconds=2)
    )
    async with graphql_socket(b.ws, init_payload={"authorization": f"Bearer {token}"}) as socket:
        await socket.subscribe("1", CASE_EVENTS)
        with pytest.raises(ConnectionClosed) as closed:
            await socket.receive(wait_s=2 + settings.jwt_leeway_s + 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


@pytest.mark.usefixtures("committed")
async def test_subscribers_only_receive_cases_in_their_scope(
    servers: list[Server], shared_data_dir: Path
) -> None:
    a, b = servers
    async with poc_socket(b.ws, "CAMAT:32.75.09") as camat:
        await camat.subscribe("1", CASE_EVENTS)
        await asyncio.sleep(0.3)
        await _submit(a, location=_at(shared_data_dir, "32.75.08.1001"))
        mine = await _submit(a, location=_at(shared_data_dir, "32.75.09.1002"))
        received = [(await camat.next_data())["caseEvents"] for _ in range(2)]
        assert {r["case"]["ticket"] for r in received} == {mine["ticket"]}
        await camat.assert_silent(0.5)


@pytest.mark.usefixtures("committed")
async def test_subscription_matrix_every_caller_in_and_out_of_scope(
    servers: list[Server], shared_data_dir: Path
) -> None:
    """Generated from the same caller table as the HTTP authorization matrix."""
    from tests.test_authorization import CALLERS, KELURAHAN

    a, b = servers
    sockets: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        for spec in CALLERS:
            if spec is None:
                continue
            headers = CREDENTIALS(spec)
            payload = (
                {"apiKey": headers["x-api-key"]}
                if "x-api-key" in headers
                else {"authorization": headers["authorization"]}
            )
            socket = await stack.enter_async_context(graphql_socket(b.ws, init_payload=payload))
            await socket.subscribe("1", CASE_EVENTS)
            sockets[spec] = socket
        await asyncio.sleep(0.5)
        case = await _submit(a, location=_at(shared_data_dir, KELURAHAN))
        for spec, socket in sockets.items():
            if CALLERS[spec]:
                received = [(await socket.next_data())["caseEvents"] for _ in range(2)]
                assert {r["case"]["ticket"] for r in received} == {case["ticket"]}, spec
            else:
                await socket.assert_silent(0.3)
