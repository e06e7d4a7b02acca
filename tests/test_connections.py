"""Connection limits of a real server process: time to send headers and body,
header size, idle and uninitialised sockets, websocket frame size, sockets per
caller, operations per socket, and connections per process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.servers import Server, module_server
from tests.ws_client import PROTOCOL, graphql_socket

pytestmark = pytest.mark.usefixtures("reference_data")

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
MAX_HEADER_BYTES = 4_096
MAX_BODY_BYTES = 16_384
PER_PRINCIPAL = 2
MAX_OPERATIONS = 2


@pytest.fixture(scope="module")
def server(
    test_database_url: str, tmp_path_factory: pytest.TempPathFactory, reference_data: None
) -> Iterator[Server]:
    with module_server(
        database_url=test_database_url,
        tmp_path_factory=tmp_path_factory,
        name="connections",
        PATRIOT_HTTP_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        PATRIOT_HTTP_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        PATRIOT_HTTP_MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
        PATRIOT_MAX_BODY_BYTES=str(MAX_BODY_BYTES),
        PATRIOT_WEBSOCKETS_PER_PRINCIPAL=str(PER_PRINCIPAL),
        PATRIOT_WEBSOCKET_INIT_TIMEOUT_S="1",
        PATRIOT_WEBSOCKET_MAX_OPERATIONS=str(MAX_OPERATIONS),
    ) as started:
        yield started


@contextlib.asynccontextmanager
async def raw(server: Server) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def until_closed(reader: asyncio.StreamReader, within_s: float) -> tuple[bytes, float]:
    """Everything the server sent until it closed the connection, and when."""
    started = time.monotonic()
    received = b""
    async with asyncio.timeout(within_s):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65_536):
                received += chunk
    return received, time.monotonic() - started


# --- HTTP ----------------------------------------------------------------------


async def test_headers_that_never_end_are_answered_408_and_the_connection_closed(
    server: Server,
) -> None:
    async with raw(server) as (reader, writer):
        writer.write(b"POST /graphql HTTP/1.1\r\nHost: patriot\r\nContent-Type: appl")
        received, after = await until_closed(reader, within_s=HEADER_TIMEOUT_S + 4)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert after >= HEADER_TIMEOUT_S * 0.8


async def test_headers_sent_a_byte_at_a_time_are_cut_at_the_header_timeout(
    server: Server,
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: patriot\r\nX-Slow: " + b"a" * 200

    async def trickle(writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            for byte in request:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)

    async with raw(server) as (reader, writer):
        sending = asyncio.create_task(trickle(writer))
        try:
            # Each byte comes in time; the headers as a whole do not.
            received, after = await until_closed(reader, within_s=HEADER_TIMEOUT_S + 3)
        finally:
            sending.cancel()
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert after < HEADER_TIMEOUT_S + 3


async def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    async with raw(server) as (reader, _):
        received, after = await until_closed(reader, within_s=HEADER_TIMEOUT_S + 4)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert after >= HEADER_TIMEOUT_S * 0.8


async def test_a_body_that_never_ends_is_cut_at_the_body_timeout(server: Server) -> None:
    async with raw(server) as (reader, writer):
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: patriot\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"query": "{ __typename'
        )
        received, after = await until_closed(reader, within_s=BODY_TIMEOUT_S + 4)
    assert b" 200 " not in received
    assert after >= BODY_TIMEOUT_S * 0.8


@pytest.mark.parametrize("pieces", [1, 8], ids=["at-once", "in-pieces"])
async def test_headers_over_the_limit_are_refused_with_431(server: Server, pieces: int) -> None:
    request = (
        b"GET /healthz HTTP/1.1\r\nHost: patriot\r\n"
        + b"".join(b"X-Padding-%d: %s\r\n" % (i, b"p" * 600) for i in range(8))
        + b"\r\n"
    )
    assert len(request) > MAX_HEADER_BYTES
    async with raw(server) as (reader, writer):
        size = -(-len(request) // pieces)
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(request), size):
                writer.write(request[start : start + size])
                await writer.drain()
                await asyncio.sleep(0.02)
        received, _ = await until_closed(reader, within_s=3)
    assert received.startswith(b"HTTP/1.1 431 "), received


async def test_ordinary_requests_are_untouched(server: Server) -> None:
    """Several requests on one kept-alive connection, a body sent in pieces well
    within the limits, and time spent between requests rather than inside one."""
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(3):
            response = await client.post(server.http, json={"query": "{ __typename }"})
            assert response.json() == {"data": {"__typename": "Query"}}
            await asyncio.sleep(HEADER_TIMEOUT_S * 0.6)  # idle between requests is not slow

        async def pieces() -> AsyncIterator[bytes]:
            for piece in (b'{"query": ', b'"{ __typename }"', b"}"):
                yield piece
                await asyncio.sleep(BODY_TIMEOUT_S / 5)

        streamed = await client.post(
            server.http, content=pieces(), headers={"content-type": "application/json"}
        )
        assert streamed.json() == {"data": {"__typename": "Query"}}
        metrics = (await client.get(server.http.removesuffix("graphql") + "metrics")).text
    assert 'patriot_connections_refused_total{reason="header_timeout"}' in metrics


# --- Websockets ------------------------------------------------------------------


def staff(settings: Any, subject: str) -> dict[str, str]:
    from api.auth import issue_token
    from domain.access import Role

    token = issue_token(settings=settings, subject=subject, role=Role.POC_OPERATOR)
    return {"authorization": f"Bearer {token}"}


async def closed_with(connection: Any, within_s: float = 5) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(connection.recv(), within_s)
    assert closed.value.rcvd is not None, closed.value
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_frames_larger_than_a_request_body_are_refused_before_authentication(
    server: Server,
) -> None:
    async with connect(server.ws, subprotocols=[PROTOCOL], max_size=None) as connection:  # type: ignore[list-item]
        padding = "x" * MAX_BODY_BYTES
        await connection.send(
            json.dumps({"type": "connection_init", "payload": {"padding": padding}})
        )
        code, _ = await closed_with(connection)
    assert code == 1009  # message too big


async def test_a_socket_that_never_initialises_is_closed(server: Server) -> None:
    async with connect(server.ws, subprotocols=[PROTOCOL]) as connection:  # type: ignore[list-item]
        code, _ = await closed_with(connection, within_s=5)
    assert code == 4408


async def test_each_caller_may_hold_only_so_many_sockets(server: Server, settings: Any) -> None:
    mine = staff(settings, "capped")
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(PER_PRINCIPAL):
            await stack.enter_async_context(graphql_socket(server.ws, init_payload=mine))
        async with connect(server.ws, subprotocols=[PROTOCOL]) as extra:  # type: ignore[list-item]
            await extra.send(json.dumps({"type": "connection_init", "payload": mine}))
            code, reason = await closed_with(extra)
        assert code == 4429 and "Too many connections" in reason
        # Another caller is not affected by this one's sockets.
        async with graphql_socket(server.ws, init_payload=staff(settings, "other")):
            pass
    # Closed sockets no longer count.
    await asyncio.sleep(0.3)
    async with graphql_socket(server.ws, init_payload=mine):
        pass


async def test_each_socket_may_run_only_so_many_operations_at_once(
    server: Server, settings: Any
) -> None:
    counts = "subscription { openCaseCounts(groupBy: STATUS) { total } }"
    async with graphql_socket(server.ws, init_payload=staff(settings, "busy")) as socket:
        for index in range(MAX_OPERATIONS):
            await socket.subscribe(str(index), counts)
            assert (await socket.next_data())["openCaseCounts"]["total"] >= 0
        await socket.subscribe("over", counts)
        message = await socket.receive()
    assert message["type"] == "error" and message["id"] == "over"
    assert "limit" in message["payload"][0]["message"]


# --- Connections per process -------------------------------------------------------


async def test_connections_beyond_the_process_limit_are_answered_503(
    test_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    limit = 10
    with module_server(
        database_url=test_database_url,
        tmp_path_factory=tmp_path_factory,
        name="max-connections",
        PATRIOT_MAX_CONNECTIONS=str(limit),
    ) as limited:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(limit):
                await stack.enter_async_context(raw(limited))
            async with httpx.AsyncClient(timeout=10) as client:
                crowded = await client.get(limited.http.removesuffix("graphql") + "healthz")
        assert crowded.status_code == 503
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(timeout=10) as client:
            calm = await client.get(limited.http.removesuffix("graphql") + "healthz")
        assert calm.status_code == 200


def test_the_read_guard_wraps_uvicorns_protocol_or_steps_aside_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from api.http_guard import ReadLimits, http_protocol

    guarding: list[bool] = []
    limits = ReadLimits(
        header_timeout_s=1, body_timeout_s=1, max_header_bytes=1024, on_guard=guarding.append
    )
    assert not isinstance(http_protocol(limits), str)  # the uvicorn this project pins
    moved = http_protocol(limits, protocol_path="uvicorn.protocols.http.no_such_module")
    assert moved == "httptools"
    assert guarding == [True, False]
    assert "WITHOUT the read guard" in caplog.text
