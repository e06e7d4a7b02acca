"""One process of websocket subscribers for bench/fanout/run.py.

Started by run.py, never by hand. It opens its share of the sockets, subscribes
each to `caseEvents`, then answers run.py's commands, one JSON object a line
on stdin, with one JSON line on stdout:

- {"cmd": "wait", "tickets": {...}, "timeout_s": s}: wait until every socket
  has received every event of the tickets its filter selects;
- {"cmd": "collect", ...}: the same, then write the latency of every delivery
  (seconds after the mutation's response, as float64) to a file and report
  events lost, repeated and unexpected;
- {"cmd": "exit"}.

Receipt times are taken with time.monotonic(), one clock for every process
of the machine, so they compare with the commit times run.py records.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import resource
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

PROTOCOL = Subprotocol("graphql-transport-ws")
OPEN_CONCURRENCY = 64


@dataclass(eq=False)
class Subscriber:
    filter_index: int
    # (ticket, event type, cursor, monotonic receipt time) of every `next` received.
    received: list[tuple[str, str, str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    closed: bool = False

    def has_all(self, expected: set[tuple[str, str]]) -> bool:
        if not expected:
            return True
        seen = {(ticket, kind) for ticket, kind, _, _ in self.received}
        return expected <= seen


def raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < needed:
        sys.exit(f"need {needed} open files but the hard limit is {hard}: raise it (ulimit -Hn)")


class GraphQLSocket(asyncio.Protocol):
    """One subscriber: the websockets library's sans-I/O protocol for the
    handshake and what the client sends, frames from the server parsed here.

    No task and no queue per socket, and the cheapest parsing that still checks
    every frame: with client and server on one machine, every microsecond the
    measuring side spends on a frame is taken from the server it measures.
    """

    def __init__(
        self,
        *,
        url: str,
        token: str,
        document: str,
        variables: dict[str, Any],
        subscriber: Subscriber,
        compression: bool,
    ) -> None:
        self.connection = ClientProtocol(
            parse_uri(url),
            subprotocols=[PROTOCOL],
            extensions=enable_client_permessage_deflate(None) if compression else None,
        )
        # Compressed frames need the library's decoder: the fast path is for
        # uncompressed ones only.
        self.compression = compression
        self.upgraded = False
        self.buffer = bytearray()
        self.token = token
        self.document = document
        self.variables = variables
        self.subscriber = subscriber
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are no subclass
        self.connection.send_request(self.connection.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if self.upgraded:
            self._parse_frames(data, now)
            return
        self.connection.receive_data(data)
        for event in self.connection.events_received():
            if isinstance(event, Response):
                if event.status_code != 101:
                    self._fail(f"handshake refused: {event.status_code}")
                    return
                self._send({"type": "connection_init", "payload": {"authorization": self.token}})
                # The server says nothing before connection_init: no frame of
                # it can be left in the library's buffer.
                self.upgraded = not self.compression
            elif isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY):
                self._on_message(orjson.loads(event.data), now)
            elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                self._fail(f"closed by the server: {self.connection.close_rcvd}")
        self._flush()

    def _parse_frames(self, data: bytes, now: float) -> None:
        """RFC 6455 frames from a server: unmasked, unfragmented (uvicorn sends
        every message in one frame; anything else is reported as an error)."""
        buffer = self.buffer
        buffer += data
        start = 0
        size = len(buffer)
        while size - start >= 2:
            head, length = buffer[start], buffer[start + 1]
            offset = start + 2
            if length & 0x80:
                self._fail("masked frame from the server")
                return
            if length == 126:
                if size - offset < 2:
                    break
                length = int.from_bytes(buffer[offset : offset + 2], "big")
                offset += 2
            elif length == 127:
                if size - offset < 8:
                    break
                length = int.from_bytes(buffer[offset : offset + 8], "big")
                offset += 8
            end = offset + length
            if end > size:
                break
            opcode = head & 0x0F
            if not head & 0x80 or head & 0x70:
                self._fail(f"unexpected frame header {head:#x}")
                return
            if opcode == 1 or opcode == 2:  # text, binary
                self._on_message(orjson.loads(buffer[offset:end]), now)
            elif opcode == 9:  # ping
                self.connection.send_pong(bytes(buffer[offset:end]))
                self._flush()  # the server closes a socket that does not answer
            elif opcode == 8:  # close
                self._fail(f"closed by the server: {bytes(buffer[offset:end])[2:]!r}")
                return
            start = end
        if start:
            del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {exc}")

    def _on_message(self, message: dict[str, Any], now: float) -> None:
        kind = message.get("type")
        if kind == "next":
            payload = message["payload"]
            if payload.get("errors"):
                self.subscriber.errors.append(str(payload["errors"])[:200])
                return
            update = payload["data"]["caseEvents"]
            self.subscriber.received.append(
                (update["case"]["ticket"], update["event"]["type"], update["cursor"], now)
            )
        elif kind == "connection_ack":
            self._send(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": self.document, "variables": self.variables},
                }
            )
            if not self.subscribed.done():
                self.subscribed.set_result(None)
        elif kind == "ping":
            self._send({"type": "pong"})
        else:
            self.subscriber.errors.append(str(message)[:200])

    def _send(self, message: dict[str, Any]) -> None:
        self.connection.send_text(orjson.dumps(message))
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.connection.data_to_send():
            if data:
                self.transport.write(data)

    def _fail(self, reason: str) -> None:
        if not self.subscriber.closed:
            self.subscriber.closed = True
            self.subscriber.errors.append(reason)
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(reason))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _expected(
    tickets_by_filter: dict[str, dict[str, list[str]]], index: int
) -> set[tuple[str, str]]:
    return {
        (ticket, kind)
        for ticket, kinds in tickets_by_filter.get(str(index), {}).items()
        for kind in kinds
    }


async def _wait_all(
    subscribers: list[Subscriber],
    tickets_by_filter: dict[str, dict[str, list[str]]],
    timeout_s: float,
) -> int:
    """Waits until every open socket has its events; returns how many still lack some."""
    expected = {i: _expected(tickets_by_filter, i) for i in {s.filter_index for s in subscribers}}
    pending = [s for s in subscribers if not s.closed]
    deadline = time.monotonic() + timeout_s
    received = -1
    while pending and time.monotonic() < deadline:
        # The full check is costly: run it only once deliveries have paused, so
        # that it never competes with the deliveries it is waiting for.
        now_received = sum(len(s.received) for s in pending)
        if now_received == received:
            pending = [
                s for s in pending if not s.closed and not s.has_all(expected[s.filter_index])
            ]
        received = now_received
        if pending:
            await asyncio.sleep(0.2)
    return len(pending)


def _position(cursor: str) -> tuple[int, int]:
    # "ev:<txid>.<event id>", base64: see domain/event_feed.py.
    txid, event_id = base64.urlsafe_b64decode(cursor).decode().removeprefix("ev:").split(".")
    return int(txid), int(event_id)


def _collect(
    subscribers: list[Subscriber],
    tickets_by_filter: dict[str, dict[str, list[str]]],
    commit_times: dict[str, float],
    output: Path,
) -> dict[str, Any]:
    latencies = array("d")
    slowest: dict[str, float] = {}  # per report, its slowest delivery
    lost = repeated = unexpected = out_of_order = 0
    for subscriber in subscribers:
        expected = _expected(tickets_by_filter, subscriber.filter_index)
        seen: set[tuple[str, str]] = set()
        last = (-1, -1)
        for ticket, kind, cursor, at in subscriber.received:
            position = _position(cursor)
            if position <= last:
                out_of_order += 1  # the feed promises increasing positions
            last = max(last, position)
            if ticket not in commit_times:
                continue  # an event of a warm-up report
            key = (ticket, kind)
            if key not in expected:
                unexpected += 1
                continue
            if key in seen:
                repeated += 1
                continue
            seen.add(key)
            latency = at - commit_times[ticket]
            latencies.append(latency)
            slowest[ticket] = max(latency, slowest.get(ticket, 0.0))
        lost += len(expected - seen)
    with output.open("wb") as file:
        latencies.tofile(file)
    return {
        "deliveries": len(latencies),
        "lost": lost,
        "repeated": repeated,
        "unexpected": unexpected,
        "out_of_order": out_of_order,
        "slowest": slowest,
        "closed": sum(s.closed for s in subscribers),
        "errors": sorted({e for s in subscribers for e in s.errors})[:5],
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True, help="JSON: token, document, filters")
    parser.add_argument("--first", type=int, default=0, help="index of this process's first socket")
    parser.add_argument("--compression", choices=["deflate", "none"], default="none")
    args = parser.parse_args()
    config = orjson.loads(args.config.read_bytes())
    filters: list[dict[str, Any]] = config["filters"]
    raise_open_files_limit(args.count + 256)

    subscribers = [
        Subscriber(filter_index=(args.first + i) % len(filters)) for i in range(args.count)
    ]
    host, port = parse_uri(args.url).host, parse_uri(args.url).port
    loop = asyncio.get_running_loop()
    sockets: list[GraphQLSocket] = []
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    failures: list[str] = []

    async def open_one(subscriber: Subscriber) -> None:
        socket = GraphQLSocket(
            url=args.url,
            token=config["token"],
            document=config["document"],
            variables=filters[subscriber.filter_index],
            subscriber=subscriber,
            compression=args.compression == "deflate",
        )
        async with gate:
            try:
                await loop.create_connection(lambda: socket, host, port)
                await asyncio.wait_for(socket.subscribed, 60)
            except (OSError, TimeoutError) as error:
                failures.append(f"{type(error).__name__}: {error}")
                subscriber.closed = True
                socket.close()
                return
        sockets.append(socket)

    started = time.monotonic()
    await asyncio.gather(*(open_one(s) for s in subscribers))
    # A full garbage collection over thousands of sockets and the deliveries
    # recorded so far pauses every socket of this process for up to seconds:
    # latency that would be the measuring tool's, not the server's. Nothing here
    # makes reference cycles worth collecting before the process exits.
    gc.collect()
    gc.freeze()
    gc.disable()
    _reply(
        {
            "connected": len(sockets),
            "failed": len(failures),
            "failures": sorted(set(failures))[:3],
            "seconds": round(time.monotonic() - started, 2),
        }
    )

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            command = orjson.loads(line)
            if command["cmd"] == "wait":
                missing = await _wait_all(subscribers, command["tickets"], command["timeout_s"])
                _reply({"incomplete": missing})
            elif command["cmd"] == "collect":
                missing = await _wait_all(subscribers, command["tickets"], command["timeout_s"])
                summary = _collect(
                    subscribers,
                    command["tickets"],
                    command["commit_times"],
                    Path(command["output"]),
                )
                _reply({"incomplete": missing, **summary})
            elif command["cmd"] == "exit":
                break
    finally:
        for socket in sockets:
            socket.close()
    return 0


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(message).decode() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        raise SystemExit(asyncio.run(main())) from None
    raise SystemExit(uvloop.run(main()))
