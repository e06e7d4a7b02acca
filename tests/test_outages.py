"""A database outage is answered 503 with Retry-After and the code
SERVICE_UNAVAILABLE (HTTP, websockets, /readyz), never as an INTERNAL bug, and
the server serves again once the database is back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from starlette.applications import Starlette
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from api.app import create_app
from core.settings import Settings
from tests.conftest import staff_headers
from tests.db_proxy import DatabaseProxy
from tests.servers import free_port, running_servers
from tests.ws_client import PROTOCOL, graphql_socket

pytestmark = pytest.mark.usefixtures("reference_data")

MODERN = {"accept": "application/graphql-response+json"}
RETRY_AFTER_S = 7


def _unavailable(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
    body: dict[str, Any] = response.json()
    assert [e["extensions"] for e in body["errors"]] == [
        {"code": "SERVICE_UNAVAILABLE", "retryAfterSeconds": RETRY_AFTER_S}
    ] * len(body["errors"])
    # Nothing of the failure itself: no address, driver, SQL or trace.
    for leak in ("127.0.0.1", "connect", "asyncpg", "sqlalchemy", "select", "traceback"):
        assert leak not in response.text.lower(), leak
    return body


@pytest.fixture(scope="module")
async def down(settings: Settings) -> AsyncIterator[Starlette]:
    """A started app whose database then became unreachable: nothing listens
    where its sessions connect."""
    configured = settings.model_copy(
        update={
            "pubsub_url": "memory://",
            "unavailable_retry_after_s": RETRY_AFTER_S,
            "partner_key_cache_s": 0.0,
        }
    )
    application = create_app(configured)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        nowhere = create_async_engine(
            f"postgresql+asyncpg://patriot@127.0.0.1:{free_port()}/patriot",
            connect_args={"timeout": 2},
        )
        saved = application.state.session_factory
        application.state.session_factory = async_sessionmaker(nowhere, expire_on_commit=False)
        try:
            yield application
        finally:
            application.state.session_factory = saved
            await nowhere.dispose()


@pytest.fixture
async def client(down: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=down)
    async with httpx.AsyncClient(transport=transport, base_url="http://patriot.test") as client:
        yield client


@pytest.mark.parametrize("accept", [{}, MODERN], ids=["json", "graphql-response-json"])
async def test_queries_and_mutations_are_answered_503_with_retry_after(
    client: httpx.AsyncClient, settings: Settings, accept: dict[str, str]
) -> None:
    query = await client.post(
        "/graphql", json={"query": "{ kecamatanList { code } }"}, headers=accept
    )
    assert _unavailable(query).get("data") is None
    mutation = await client.post(
        "/graphql",
        json={"query": 'mutation { verifyCase(ticket: "BKS-2601-000001") { __typename } }'},
        headers={**accept, **staff_headers("POC_OPERATOR", settings=settings)},
    )
    _unavailable(mutation)
    expected_type = "application/graphql-response+json" if accept else "application/json"
    assert query.headers["content-type"].startswith(expected_type)


async def test_a_partner_key_that_cannot_be_checked_is_answered_503(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"x-api-key": "ptk_" + "k" * 43}
    )
    _unavailable(response)


async def test_what_needs_no_database_is_still_answered(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_readiness_says_the_database_is_unreachable(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "unreachable", "boundary_set": "unknown"},
    }
    assert (await client.get("/healthz")).status_code == 200


async def test_outage_errors_are_counted_by_their_code(
    client: httpx.AsyncClient, down: Starlette
) -> None:
    answer = await client.post("/graphql", json={"query": "{ kecamatanList { code } }"})
    assert answer.status_code == 503, answer.text
    metrics = (await client.get("/metrics")).text
    assert 'patriot_graphql_errors_total{code="SERVICE_UNAVAILABLE"}' in metrics
    assert 'code="INTERNAL"' not in metrics


# --- A real server process whose database goes away and comes back -----------

COUNT = "{ cases(first: 1) { totalCount } }"


async def _until(check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = await check()
        if outcome or time.monotonic() > deadline:
            return outcome
        await asyncio.sleep(0.2)


async def test_a_server_answers_503_while_its_database_is_away_then_serves_again(
    test_database_url: str, tmp_path: Path, committed_credentials: Any
) -> None:
    url = make_url(test_database_url)
    assert url.host and url.port
    proxy = DatabaseProxy(host=url.host, port=url.port)
    await proxy.start()
    staff = committed_credentials("POC_OPERATOR")
    partner_key = committed_credentials("partner:SOROT")["x-api-key"]
    servers = running_servers(
        1,
        database_url=url.set(port=proxy.port).render_as_string(hide_password=False),
        tmp_path=tmp_path,
        PATRIOT_SWEEPER_ENABLED="false",
        PATRIOT_UNAVAILABLE_RETRY_AFTER_S=str(RETRY_AFTER_S),
        PATRIOT_DATABASE_CONNECT_TIMEOUT_S="2",
    )
    stack = contextlib.ExitStack()
    try:
        # Started from a thread: this loop must keep relaying the database meanwhile.
        [server] = await asyncio.to_thread(stack.enter_context, servers)
        base = server.http.removesuffix("/graphql")
        async with httpx.AsyncClient(timeout=10) as client:

            async def count() -> httpx.Response:
                return await client.post(server.http, json={"query": COUNT}, headers=staff)

            assert (await count()).status_code == 200
            async with graphql_socket(server.ws, init_payload=staff_headers_ws(staff)) as socket:
                await proxy.cut()

                _unavailable(await count())
                ready = await client.get(f"{base}/readyz")
                assert ready.status_code == 503
                assert ready.json()["checks"]["database"] == "unreachable"

                # An operation over a socket opened before: the same code.
                await socket.send({"id": "1", "type": "subscribe", "payload": {"query": COUNT}})
                message = await socket.receive(wait_s=10)
                errors = (
                    message["payload"]
                    if message["type"] == "error"
                    else (message["payload"]["errors"])
                )
                assert [e["extensions"]["code"] for e in errors] == ["SERVICE_UNAVAILABLE"]

                # A new socket whose key cannot be checked: try again later (1013).
                async with connect(server.ws, subprotocols=[PROTOCOL]) as fresh:  # type: ignore[list-item]
                    await fresh.send(
                        json.dumps({"type": "connection_init", "payload": {"apiKey": partner_key}})
                    )
                    with pytest.raises(ConnectionClosed) as closed:
                        await asyncio.wait_for(fresh.recv(), 10)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1013
                assert "SERVICE_UNAVAILABLE" in closed.value.rcvd.reason

            await proxy.start()

            async def served() -> bool:
                return (await count()).status_code == 200

            assert await _until(served, timeout_s=15), "still unavailable after the outage"
            assert (await client.get(f"{base}/readyz")).status_code == 200
        # Every failure was answered; none escaped to the server as unhandled.
        log = server.log.read_text()
        assert "Exception in ASGI application" not in log, log[-3000:]
    finally:
        await asyncio.to_thread(stack.close)
        await proxy.stop()


def staff_headers_ws(headers: dict[str, str]) -> dict[str, str]:
    return {"authorization": headers["authorization"]}
