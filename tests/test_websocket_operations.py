"""The operations of one websocket behave exactly as the same operations on
separate HTTP requests: each has its own session and transaction, and an
answered mutation is a committed one. Real server process, real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from models import Case
from tests.conftest import wipe_committed_cases
from tests.factories import SUBMIT, report_input
from tests.servers import Server, module_server
from tests.ws_client import GraphQLSocket, graphql_socket

pytestmark = pytest.mark.usefixtures("reference_data")

CONCURRENT = 30

OPEN_COUNTS = "subscription { openCaseCounts(groupBy: STATUS) { total groups { key count } } }"
VERIFY = """
mutation Verify($ticket: String!) {
  verifyCase(ticket: $ticket) { __typename ... on Case { ticket status } }
}
"""


@pytest.fixture(scope="module")
def server(
    test_database_url: str, tmp_path_factory: pytest.TempPathFactory, engine: AsyncEngine
) -> Iterator[Server]:
    with module_server(
        database_url=test_database_url,
        tmp_path_factory=tmp_path_factory,
        name="websocket-operations",
        # Thirty mutations at once from one partner are what this is about.
        PATRIOT_MUTATION_BURST="100",
        PATRIOT_MUTATION_RATE_PER_MINUTE="600",
    ) as started:
        yield started


@pytest.fixture(autouse=True)
async def committed_cases_wiped(engine: AsyncEngine) -> Any:
    yield
    await wipe_committed_cases(engine)


async def _answers(socket: GraphQLSocket, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Each operation's `next` payload, once its `complete` came too."""
    payloads: dict[str, dict[str, Any]] = {}
    completed: set[str] = set()
    while completed != ids:
        message = await socket.receive(wait_s=30)
        if message["type"] == "next" and message["id"] in ids:
            assert message["id"] not in payloads, message
            payloads[message["id"]] = message["payload"]
        elif message["type"] == "complete":
            completed.add(message["id"])
        else:
            assert message["id"] not in ids, message
    return payloads


async def _stored_tickets(engine: AsyncEngine, tickets: list[str]) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.scalars(select(Case.ticket).where(Case.ticket.in_(tickets)))
        return sorted(rows)


async def test_concurrent_mutations_on_one_socket_are_each_committed(
    server: Server, engine: AsyncEngine, committed_credentials: Any
) -> None:
    key = committed_credentials("partner:POT")["x-api-key"]
    inputs = [report_input(idempotencyKey=f"socket-{i}") for i in range(CONCURRENT)]
    ids = {str(i) for i in range(CONCURRENT)}
    async with graphql_socket(server.ws, init_payload={"apiKey": key}) as socket:
        for i, variables in enumerate(inputs):
            await socket.subscribe(str(i), SUBMIT, {"input": variables})
        answers = await _answers(socket, ids)
        # Acknowledged means committed: each ticket is in the database now.
        tickets = []
        for operation_id in sorted(ids, key=int):
            payload = answers[operation_id]
            assert "errors" not in payload, payload
            result = payload["data"]["submitReport"]
            assert result["__typename"] == "Case", result
            tickets.append(result["ticket"])
        assert len(set(tickets)) == CONCURRENT
        assert await _stored_tickets(engine, tickets) == sorted(tickets)

        # Retries on the same socket answer the same cases and write nothing new.
        for i, variables in enumerate(inputs[:5]):
            await socket.subscribe(f"retry-{i}", SUBMIT, {"input": variables})
        retried = await _answers(socket, {f"retry-{i}" for i in range(5)})
        assert [retried[f"retry-{i}"]["data"]["submitReport"]["ticket"] for i in range(5)] == (
            tickets[:5]
        )

    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(Case)) == CONCURRENT
    # Nothing was left holding the ticket counter: the next report goes through at once.
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.post(
            server.http,
            json={"query": SUBMIT, "variables": {"input": report_input()}},
            headers={"x-api-key": key},
        )
    assert response.json()["data"]["submitReport"]["__typename"] == "Case"


async def test_a_mutation_beside_a_running_subscription_is_committed(
    server: Server, engine: AsyncEngine, committed_credentials: Any
) -> None:
    key = committed_credentials("partner:POT")["x-api-key"]
    operator = committed_credentials("POC_OPERATOR")
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.post(
            server.http,
            json={"query": SUBMIT, "variables": {"input": report_input()}},
            headers={"x-api-key": key},
        )
    ticket = response.json()["data"]["submitReport"]["ticket"]
    token = operator["authorization"].removeprefix("Bearer ")

    async with graphql_socket(server.ws, init_payload={"authorization": f"Bearer {token}"}) as ws:
        await ws.subscribe("counts", OPEN_COUNTS)
        first = await ws.next_data()
        assert {"key": "RECEIVED", "count": 1} in first["openCaseCounts"]["groups"]

        await ws.subscribe("verify", VERIFY, {"ticket": ticket})
        answers: dict[str, Any] = {}
        while "verify" not in answers or "counts" not in answers:
            message = await ws.receive(wait_s=10)
            if message["type"] == "next":
                answers[message["id"]] = message["payload"]["data"]
        assert answers["verify"]["verifyCase"] == {
            "__typename": "Case",
            "ticket": ticket,
            "status": "VERIFIED",
        }
        # The subscription saw the committed change...
        assert {"key": "VERIFIED", "count": 1} in answers["counts"]["openCaseCounts"]["groups"]

    # ...and so does everyone else.
    async with engine.connect() as conn:
        status = await conn.scalar(select(Case.status).where(Case.ticket == ticket))
    assert status == "VERIFIED"
