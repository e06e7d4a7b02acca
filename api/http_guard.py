"""Limits on reading an HTTP request, around uvicorn's HTTP protocol: time for
the request line and headers, time for the body, and the size of the headers.

uvicorn's httptools protocol has none of them: a client sending its headers or
body a byte at a time, or nothing at all after connecting, held a connection
(and its memory) for as long as it liked, and headers could grow without
bound. The ASGI app cannot help: it is called only once the headers are in.

The guard is an asyncio protocol of its own that hands every event to
uvicorn's protocol unchanged; it follows the requests with its own httptools
parser (only their start, end of headers and end), so it relies on nothing
inside uvicorn but the name of the protocol class it wraps, which uvicorn does
not document: uvicorn is pinned exactly in pyproject.toml, and a release that
moved that class makes `python -m api` serve without the guard, saying so in
its log and in `patriot_http_read_guard` (0), rather than not start.
It steps aside once a websocket takes the connection over.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import httptools

logger = logging.getLogger("patriot.http")


@dataclass(frozen=True)
class ReadLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_header_bytes: int
    # Told the reason of every connection the guard ends (for a metric).
    on_refused: Callable[[str], None] = lambda reason: None
    # Told whether the guard is in place (for a metric).
    on_guard: Callable[[bool], None] = lambda guarding: None


_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)


def http_protocol(
    limits: ReadLimits, *, protocol_path: str = "uvicorn.protocols.http.httptools_impl"
) -> type[asyncio.Protocol] | str:
    """uvicorn's `http` setting: its httptools protocol behind the guard, or the
    plain protocol by name when this uvicorn release lacks the class."""
    try:
        inner = importlib.import_module(protocol_path).HttpToolsProtocol
    except (ImportError, AttributeError):
        logger.error(
            "http: uvicorn's httptools protocol moved; serving WITHOUT the read guard "
            "(header and body timeouts, header size): see api/http_guard.py"
        )
        limits.on_guard(False)
        return "httptools"
    limits.on_guard(True)
    return guarded(inner, limits)


def guarded(inner: type[asyncio.Protocol], limits: ReadLimits) -> type[asyncio.Protocol]:
    """A protocol class for uvicorn's `http` setting: `inner` behind the guard."""

    class Guarded(RequestReadGuard):
        inner_class = inner
        read_limits = limits

    return Guarded


class RequestReadGuard(asyncio.Protocol):
    inner_class: ClassVar[type[asyncio.Protocol]]
    read_limits: ClassVar[ReadLimits]

    def __init__(self, **kwargs: Any) -> None:
        # Whatever uvicorn passes is for its own protocol.
        self._inner = self.inner_class(**kwargs)
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reading_headers = True  # from the connection's start: the first request
        self._header_bytes = 0  # of the headers parsed so far
        self._unfinished_bytes = 0  # received while the headers were still coming
        self._requests_begun = 0
        self._guarding = True

    # --- asyncio.Protocol: everything goes on to uvicorn's protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, but behave as them.
        self._transport = cast(asyncio.Transport, transport)
        self._inner.connection_made(transport)
        self._arm(self.read_limits.header_timeout_s, "header_timeout")

    def data_received(self, data: bytes) -> None:
        if self._guarding:
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self._inner.data_received(data)
                self._upgraded()
                return
            except httptools.HttpParserError:
                self._step_aside()  # uvicorn answers it with 400
            else:
                if self._reading_headers:
                    # What the parser still holds back (a header not finished yet) counts too.
                    self._unfinished_bytes += len(data)
                limit = self.read_limits.max_header_bytes
                if self._header_bytes > limit or self._unfinished_bytes > limit:
                    self._end("header_too_large", _HEADERS_TOO_LARGE)
                    return
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    # --- httptools parser callbacks ---

    def on_message_begin(self) -> None:
        self._requests_begun += 1
        self._reading_headers = True
        self._header_bytes = self._unfinished_bytes = 0
        self._arm(self.read_limits.header_timeout_s, "header_timeout")

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._arm(self.read_limits.body_timeout_s, "body_timeout")

    def on_message_complete(self) -> None:
        # Until the next request begins, uvicorn's keep-alive timeout applies.
        self._disarm()

    # --- the guard ---

    def _upgraded(self) -> None:
        transport = self._transport
        if transport is not None and transport.get_protocol() is not self:
            # A websocket took the connection over: its frames have limits of their own.
            self._step_aside()
        # Any other upgrade is answered as a plain request, and the guard, as
        # uvicorn's parser, reads what follows as the next request.

    def _step_aside(self) -> None:
        self._guarding = False
        self._disarm()

    def _arm(self, delay_s: float, reason: str) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._end, reason, None)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _end(self, reason: str, answer: bytes | None) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            self._step_aside()
            return
        if answer is None and not transport.is_reading():
            # uvicorn paused reading (a pipelined request waits for the one
            # before): the client cannot send, so the time does not count.
            self._arm(
                self.read_limits.body_timeout_s
                if not self._reading_headers
                else self.read_limits.header_timeout_s,
                reason,
            )
            return
        self._step_aside()
        if reason == "header_timeout":
            answer = _REQUEST_TIMEOUT
        # Only the first request may be answered here: for a later one uvicorn
        # could still be writing the answer to the previous one.
        if answer is not None and self._requests_begun <= 1:
            transport.write(answer)
        transport.close()
        self.read_limits.on_refused(reason)
