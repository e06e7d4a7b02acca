"""A database outage is answered 503 with Retry-After and the code
SERVICE_UNAVAILABLE (HTTP, websockets, /readyz), never as an INTERNAL bug, and
the server serves again once the database is back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from starlette.applications import Starlette

from api.app import create_app
from core.settings import Settings
from tests.conftest import staff_headers
from tests.servers import free_port

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
    await client.post("/graphql", json={"query": "{ kecamatanList { code } }"})
    metrics = (await client.get("/metrics")).text
    assert 'patriot_graphql_errors_total{code="SERVICE_UNAVAILABLE"}' in metrics
    assert 'code="INTERNAL"' not in metrics
