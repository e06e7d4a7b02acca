"""Sockets with the same `caseEvents` subscription and the same access share one
execution per event (live/groups.py). The server runs in this process, so that the
tests can count executions; the sockets and reports are real."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

import api.graphql_http
import live.groups
from api.app import create_app
from api.auth import issue_token
from core.settings import Settings
from domain.access import Role
from domain.event_feed import FeedPosition
from live.groups import Group, Member
from live.handler import SharedSubscriptionsHandler
from live.sharing import FeedRoot
from tests import bekasi
from tests.conftest import wipe_committed_cases
from tests.factories import SUBMIT, report_input
from tests.servers import free_port
from tests.ws_client import GraphQLSocket, graphql_socket

pytestmark = pytest.mark.usefixtures("reference_data")

CASE_EVENTS = """
subscription Events($filter: CaseEventFilterInput, $after: String) {
  caseEvents(filter: $filter, after: $after) {
    cursor
    event { type }
    case { ticket kecamatan { code } reporter { name } }
  }
}
"""


@dataclass
class Running:
    app: Starlette
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def groups(self) -> list[Group]:
        groups: list[Group] = self.app.state.services.shared_subscriptions.groups
        return groups


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Starlette]:
    """The app on a real uvicorn server in this process, on `settings.port`."""
    app = create_app(settings)
    uvicorn_server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
        )
    )
    task = asyncio.create_task(uvicorn_server.serve())
    try:
        deadline = time.monotonic() + 30
        while not uvicorn_server.started:
            assert not task.done(), "the server did not start"
            assert time.monotonic() < deadline, "the server did not start in time"
            await asyncio.sleep(0.05)
        yield app
    finally:
        uvicorn_server.should_exit = True
        await task


@pytest.fixture
async def server(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Running]:
    port = free_port()
    try:
        async with serving(settings.model_copy(update={"port": port})) as app:
            yield Running(app=app, port=port)
    finally:
        # These tests commit cases for real.
        await wipe_committed_cases(engine)


@pytest.fixture
def staff(settings: Settings) -> Callable[..., dict[str, str]]:
    def token(subject: str, role: Role, **scope: str) -> dict[str, str]:
        bearer = issue_token(settings=settings, subject=subject, role=role, scope=scope or None)
        return {"authorization": f"Bearer {bearer}"}

    return token


async def _submit(server: Running, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            server.http,
            json={"query": SUBMIT, "variables": {"input": report_input(**overrides)}},
            headers=headers,
        )
    result: dict[str, Any] = response.json()["data"]["submitReport"]
    assert result["__typename"] == "Case", result
    return result


def _at(shared_data_dir: Path, code: str) -> dict[str, float]:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, code)
    return {"lat": lat, "lon": lon}


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)


async def _events(socket: GraphQLSocket, count: int) -> list[dict[str, Any]]:
    return [(await socket.next_data())["caseEvents"] for _ in range(count)]


async def test_sockets_with_the_same_subscription_share_one_execution(
    server: Running, staff: Any, committed_credentials: Any
) -> None:
    first = staff("operator-1", Role.POC_OPERATOR)
    second = staff("operator-2", Role.POC_OPERATOR)
    async with (
        graphql_socket(server.ws, init_payload=first) as a,
        graphql_socket(server.ws, init_payload=second) as b,
    ):
        await a.subscribe("1", CASE_EVENTS, {"filter": {"kinds": ["LAPORAN"]}})
        await b.subscribe("other-id", CASE_EVENTS, {"filter": {"kinds": ["LAPORAN"]}})
        await _until(lambda: sum(len(g.members) for g in server.groups) == 2, "both joined")
        [group] = server.groups

        case = await _submit(server, committed_credentials("partner:POT"))
        received_a = await _events(a, 2)
        received_b = await _events(b, 2)

        assert [r["event"]["type"] for r in received_a] == ["CREATED", "ROUTED"]
        assert {r["case"]["ticket"] for r in received_a} == {case["ticket"]}
        # The same result, down to the reporter only POC operators may see...
        assert received_a == received_b
        assert received_a[0]["case"]["reporter"] == {"name": "Siti Aminah"}
        # ...computed once per event for both sockets.
        assert group.executions == 2

    await _until(lambda: not server.groups, "the group ends with its last member")


async def test_callers_with_different_scopes_never_share(
    server: Running, staff: Any, committed_credentials: Any, shared_data_dir: Path
) -> None:
    operator = staff("operator", Role.POC_OPERATOR)
    camat = staff("camat", Role.CAMAT, kecamatan="32.75.09")
    async with (
        graphql_socket(server.ws, init_payload=operator) as city,
        graphql_socket(server.ws, init_payload=camat) as local,
    ):
        await city.subscribe("1", CASE_EVENTS)
        await local.subscribe("1", CASE_EVENTS)
        await _until(lambda: len(server.groups) == 2, "one group per scope")
        assert all(len(g.members) == 1 for g in server.groups)

        partner = committed_credentials("partner:POT")
        elsewhere = await _submit(server, partner, location=_at(shared_data_dir, "32.75.08.1001"))
        mine = await _submit(server, partner, location=_at(shared_data_dir, "32.75.09.1002"))

        seen_by_city = await _events(city, 4)
        assert [r["case"]["ticket"] for r in seen_by_city] == [elsewhere["ticket"]] * 2 + [
            mine["ticket"]
        ] * 2
        seen_locally = await _events(local, 2)
        assert {r["case"]["ticket"] for r in seen_locally} == {mine["ticket"]}
        await local.assert_silent(0.5)


async def test_a_subscription_resuming_after_a_cursor_runs_alone(
    server: Running, staff: Any, committed_credentials: Any
) -> None:
    operator = staff("operator", Role.POC_OPERATOR)
    partner = committed_credentials("partner:POT")
    async with graphql_socket(server.ws, init_payload=operator) as socket:
        await socket.subscribe("1", CASE_EVENTS)
        await _until(lambda: len(server.groups) == 1, "it joined a group")
        first = await _submit(server, partner)
        seen = await _events(socket, 2)
    await _until(lambda: not server.groups, "the group ended")

    missed = await _submit(server, partner)
    async with graphql_socket(server.ws, init_payload=operator) as socket:
        await socket.subscribe("2", CASE_EVENTS, {"after": seen[-1]["cursor"]})
        replayed = await _events(socket, 2)
        assert {r["case"]["ticket"] for r in replayed} == {missed["ticket"]}
        assert not server.groups
    assert first["ticket"] != missed["ticket"]


async def test_a_member_that_falls_behind_continues_alone_and_misses_nothing(
    server: Running, staff: Any, committed_credentials: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A socket whose every send has to wait, and no room to queue behind it: the
    # second event of a report already pushes it out of its group.
    monkeypatch.setattr(live.groups, "MEMBER_BACKLOG", 0)
    send = Member._send

    async def slow_send(self: Member, frame: str | bytes) -> None:
        await asyncio.sleep(0.05)
        await send(self, frame)

    monkeypatch.setattr(Member, "_send", slow_send)
    resumed_after: list[FeedPosition | None] = []
    run_alone = SharedSubscriptionsHandler._run_alone

    async def spy(self: SharedSubscriptionsHandler, operation: Any, root: FeedRoot) -> None:
        resumed_after.append(root.resume_after)
        await run_alone(self, operation, root)

    monkeypatch.setattr(SharedSubscriptionsHandler, "_run_alone", spy)

    partner = committed_credentials("partner:POT")
    async with graphql_socket(
        server.ws, init_payload=staff("operator", Role.POC_OPERATOR)
    ) as socket:
        await socket.subscribe("1", CASE_EVENTS)
        await _until(lambda: len(server.groups) == 1, "it joined a group")
        reports = [await _submit(server, partner) for _ in range(3)]
        received = await _events(socket, 6)
        # It left after the first event, and the group ended with it.
        assert resumed_after == [FeedPosition.from_cursor(received[0]["cursor"])]
        assert not server.groups
        assert [(r["case"]["ticket"], r["event"]["type"]) for r in received] == [
            (report["ticket"], kind) for report in reports for kind in ("CREATED", "ROUTED")
        ]
        await socket.assert_silent(0.5)


async def test_events_held_back_by_an_older_transaction_go_out_soon_after_it_ends(
    settings: Settings, engine: AsyncEngine, staff: Any, committed_credentials: Any
) -> None:
    # Without a wake-up the reader would look again only after a minute.
    port = free_port()
    slow_poll = settings.model_copy(update={"port": port, "live_poll_interval_s": 60.0})
    try:
        async with (
            serving(slow_poll) as app,
            graphql_socket(
                f"ws://127.0.0.1:{port}/graphql",
                init_payload=staff("operator", Role.POC_OPERATOR),
            ) as socket,
        ):
            server = Running(app=app, port=port)
            await socket.subscribe("1", CASE_EVENTS)
            await _until(lambda: len(server.groups) == 1, "it joined a group")
            async with engine.connect() as older:
                # A transaction with an id, begun before the report's: until it
                # ends, the report's events may not be read (domain/event_feed.py).
                await older.execute(text("SELECT pg_current_xact_id()"))
                case = await _submit(server, committed_credentials("partner:POT"))
                await socket.assert_silent(0.5)
                await older.rollback()
            received = await _events(socket, 2)  # each within 5 s
            assert [(r["case"]["ticket"], r["event"]["type"]) for r in received] == [
                (case["ticket"], "CREATED"),
                (case["ticket"], "ROUTED"),
            ]
    finally:
        await wipe_committed_cases(engine)


def test_the_sharing_relies_on_what_strawberry_has_today() -> None:
    from live.handler import sharing_supported

    assert sharing_supported()

    class Changed:  # a release that renamed what the shared handler builds on
        def __init__(self) -> None:
            self.operations: dict[str, Any] = {}

        def run_operation(self) -> None: ...

    assert not sharing_supported(Changed)


async def test_without_sharing_subscriptions_still_work_and_say_so(
    settings: Settings,
    engine: AsyncEngine,
    staff: Any,
    committed_credentials: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api.graphql_http, "sharing_supported", lambda: False)
    port = free_port()
    try:
        async with (
            serving(settings.model_copy(update={"port": port})) as app,
            graphql_socket(
                f"ws://127.0.0.1:{port}/graphql",
                init_payload=staff("operator", Role.POC_OPERATOR),
            ) as socket,
        ):
            server = Running(app=app, port=port)
            await socket.subscribe("1", CASE_EVENTS)
            await asyncio.sleep(0.3)
            case = await _submit(server, committed_credentials("partner:POT"))
            received = await _events(socket, 2)
            assert {r["case"]["ticket"] for r in received} == {case["ticket"]}
            assert not server.groups  # served on its own, by Strawberry's handler
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            assert "patriot_live_shared_subscriptions 0.0" in metrics
    finally:
        await wipe_committed_cases(engine)
