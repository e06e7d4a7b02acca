"""Live feeds and the reporter's rights, on a real server process: a socket that may
be shown reporters is recorded when it subscribes, and the event log a feed
replays holds nothing of an erased reporter."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.event_feed import START
from models import PersonalDataAccess
from tests.conftest import wipe_committed_cases
from tests.factories import SUBMIT, report_input
from tests.servers import Server, module_server
from tests.ws_client import graphql_socket

pytestmark = pytest.mark.usefixtures("reference_data")

WITH_REPORTER = """
subscription($after: String) {
  caseEvents(after: $after) {
    event { type details } case { ticket reporter { name phone email } }
  }
}
"""
WITHOUT_REPORTER = "subscription { caseEvents { event { type } case { ticket } } }"


@pytest.fixture(scope="module")
def server(
    test_database_url: str, tmp_path_factory: pytest.TempPathFactory, engine: AsyncEngine
) -> Iterator[Server]:
    with module_server(
        database_url=test_database_url, tmp_path_factory=tmp_path_factory, name="personal-data"
    ) as started:
        yield started


@pytest.fixture(autouse=True)
async def committed_cases_wiped(engine: AsyncEngine) -> Any:
    yield
    await wipe_committed_cases(engine)


async def _records(engine: AsyncEngine) -> list[tuple[str, int | None, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                PersonalDataAccess.subject,
                PersonalDataAccess.case_id,
                PersonalDataAccess.operation,
            ).order_by(PersonalDataAccess.subject)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def _records_once_settled(engine: AsyncEngine, count: int) -> list[Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if len(await _records(engine)) >= count:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # and no more come
    return await _records(engine)


async def test_sockets_that_may_be_shown_reporters_are_recorded_when_they_subscribe(
    server: Server, engine: AsyncEngine, committed_credentials: Any
) -> None:
    sockets = {
        "POC_OPERATOR": WITH_REPORTER,  # shares one execution with the next
        "MAYOR": WITH_REPORTER,
        "partner:POT": WITHOUT_REPORTER,  # asks for no reporter
        "ADMIN": WITH_REPORTER,  # never shown reporters
    }
    async with contextlib.AsyncExitStack() as stack:
        for spec, document in sockets.items():
            headers = committed_credentials(spec)
            payload = {"apiKey": headers["x-api-key"]} if "x-api-key" in headers else headers
            socket = await stack.enter_async_context(
                graphql_socket(server.ws, init_payload=payload)
            )
            await socket.subscribe("1", document, {})
        records = await _records_once_settled(engine, 2)
    assert records == [
        ("staff:test-mayor", None, "caseEvents"),
        ("staff:test-poc_operator", None, "caseEvents"),
    ]


async def test_a_replay_after_an_erasure_holds_nothing_of_the_reporter(
    server: Server, engine: AsyncEngine, committed_credentials: Any
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        submitted = await client.post(
            server.http,
            json={"query": SUBMIT, "variables": {"input": report_input()}},
            headers=committed_credentials("partner:POT"),
        )
        ticket = submitted.json()["data"]["submitReport"]["ticket"]
        await client.post(
            server.http,
            json={
                "query": 'mutation($t: String!) { commentCase(ticket: $t, text: "Bu Siti '
                'Aminah minta dihubungi di 0812-3456-7890") { __typename } }',
                "variables": {"t": ticket},
            },
            headers=committed_credentials("POC_OPERATOR"),
        )
        erased = await client.post(
            server.http,
            json={
                "query": "mutation($t: String!) { eraseReporter(ticket: $t, reason: "
                '"permintaan pelapor") { __typename } }',
                "variables": {"t": ticket},
            },
            headers=committed_credentials("partner:POT"),
        )
        assert erased.json()["data"]["eraseReporter"]["__typename"] == "Case"

    token = committed_credentials("POC_OPERATOR")
    async with graphql_socket(server.ws, init_payload=token) as socket:
        await socket.subscribe("1", WITH_REPORTER, {"after": START.cursor()})
        replayed = [(await socket.next_data())["caseEvents"] for _ in range(4)]

    assert [r["event"]["type"] for r in replayed] == [
        "CREATED",
        "ROUTED",
        "COMMENTED",
        "REPORTER_ERASED",
    ]
    assert {r["case"]["ticket"] for r in replayed} == {ticket}
    assert all(r["case"]["reporter"] is None for r in replayed)
    text = str(replayed)
    assert "Aminah" not in text and "3456" not in text and "siti@example.id" not in text
    # Resuming after a cursor runs alone, outside any group: recorded all the same.
    assert await _records(engine) == [("staff:test-poc_operator", None, "caseEvents")]
