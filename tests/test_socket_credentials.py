"""Open websockets lose what their credentials lost, within the delay after which
HTTP refuses them too: a revoked key or a suspended partner ends the socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.exceptions import ConnectionClosed

from api.auth import hash_key
from models import Partner, PartnerKey
from tests.conftest import add_partner_key, wipe_committed_cases
from tests.factories import SUBMIT, report_input
from tests.servers import Server, module_server
from tests.ws_client import graphql_socket

pytestmark = pytest.mark.usefixtures("reference_data")

KEY_CACHE_S = 1.0

CASE_EVENTS = """
subscription { caseEvents { event { type } case { ticket reporter { name } } } }
"""


@pytest.fixture(scope="module")
def server(
    test_database_url: str, tmp_path_factory: pytest.TempPathFactory, reference_data: None
) -> Iterator[Server]:
    with module_server(
        database_url=test_database_url,
        tmp_path_factory=tmp_path_factory,
        name="socket-credentials",
        PATRIOT_PARTNER_KEY_CACHE_S=str(KEY_CACHE_S),
    ) as started:
        yield started


@pytest.fixture
async def sorot_key(engine: AsyncEngine) -> AsyncIterator[str]:
    """A key of SOROT of its own, committed; SOROT is active again afterwards."""
    async with AsyncSession(bind=engine, expire_on_commit=False) as session, session.begin():
        key = await add_partner_key(session, "SOROT")
    try:
        yield key
    finally:
        async with AsyncSession(bind=engine) as session, session.begin():
            await session.execute(
                update(Partner).where(Partner.code == "SOROT").values(is_active=True)
            )
            await session.execute(delete(PartnerKey).where(PartnerKey.key_hash == hash_key(key)))
        await wipe_committed_cases(engine)


async def _submit(server: Server, key: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            server.http,
            json={"query": SUBMIT, "variables": {"input": report_input(source="SOROT")}},
            headers={"x-api-key": key},
        )


async def _closed_within(socket: Any, seconds: float) -> tuple[int, str, float]:
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await socket.receive(wait_s=seconds)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason, time.monotonic() - started


@pytest.mark.parametrize("withdrawn", ["key revoked", "partner suspended"])
async def test_an_open_socket_ends_when_its_credentials_are_withdrawn(
    server: Server, engine: AsyncEngine, sorot_key: str, withdrawn: str
) -> None:
    async with graphql_socket(server.ws, init_payload={"apiKey": sorot_key}) as socket:
        await socket.subscribe("1", CASE_EVENTS)
        await asyncio.sleep(0.3)
        submitted = await _submit(server, sorot_key)
        ticket = submitted.json()["data"]["submitReport"]["ticket"]
        # Until then it receives its cases, reporters included.
        received = (await socket.next_data())["caseEvents"]["case"]
        assert received == {"ticket": ticket, "reporter": {"name": "Siti Aminah"}}
        await socket.next_data()  # ROUTED

        async with AsyncSession(bind=engine) as session, session.begin():
            if withdrawn == "key revoked":
                await session.execute(
                    update(PartnerKey)
                    .where(PartnerKey.key_hash == hash_key(sorot_key))
                    .values(revoked_at=PartnerKey.created_at)
                )
            else:
                await session.execute(
                    update(Partner).where(Partner.code == "SOROT").values(is_active=False)
                )
        code, reason, after = await _closed_within(socket, seconds=KEY_CACHE_S * 2 + 3)
    assert (code, reason) == (4403, "API key no longer valid")
    # Within the key cache's delay (plus one check's time), as HTTP.
    assert after < KEY_CACHE_S * 2 + 1
    assert (await _submit(server, sorot_key)).status_code == 401


async def test_sockets_with_valid_keys_stay_open(
    server: Server, engine: AsyncEngine, sorot_key: str
) -> None:
    async with graphql_socket(server.ws, init_payload={"apiKey": sorot_key}) as socket:
        await socket.assert_silent(KEY_CACHE_S * 3)
        await socket.send({"type": "ping"})
        assert (await socket.connection.recv()) == '{"type":"pong"}'
    async with AsyncSession(bind=engine) as session:
        assert (
            await session.scalar(
                select(PartnerKey.revoked_at).where(PartnerKey.key_hash == hash_key(sorot_key))
            )
            is None
        )
