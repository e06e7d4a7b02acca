"""uvicorn's websocket protocol, with a way to write whole frames to a socket.

A `caseEvents` group sends one payload to thousands of sockets (api/live.py).
Through ASGI each send is a message of its own: framed again for every socket
and written with a system call of its own. Below ASGI, the group frames each
message once per operation id and hands every socket all the frames of one read
of the event log in one write. ASGI has no such message, so the protocol offers
it as a scope extension; without it (another server, the test client) the
fan-out sends through ASGI as before.
"""

from __future__ import annotations

from asyncio import BaseTransport
from typing import Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request

FRAME_WRITER = "patriot.websocket.frames"


class FrameWriter(Protocol):
    def __call__(self, frames: bytes, /) -> bool:
        """Writes complete frames; False, having written nothing, when the socket
        cannot take them now: then the caller sends through ASGI, which waits."""
        ...


class FramingWebSocketProtocol(WebSocketsSansIOProtocol):
    """websockets' sans-I/O protocol as uvicorn runs it, plus FRAME_WRITER."""

    # Sockets of this process, for api/long_lived.py.
    opened = 0
    closed = 0

    @classmethod
    def socket_counts(cls) -> tuple[int, int]:
        return cls.opened, cls.closed

    def connection_made(self, transport: BaseTransport) -> None:
        FramingWebSocketProtocol.opened += 1
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        FramingWebSocketProtocol.closed += 1
        super().connection_lost(exc)

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The scope exists once the upgrade was accepted; the app starts later.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][FRAME_WRITER] = self.write_frames

    def write_frames(self, frames: bytes) -> bool:
        # Frames are whole, so they interleave safely with the protocol's own
        # (pings, close); nothing may follow a close, nor precede the accept.
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or not self.writable.is_set()  # its buffer is full: let ASGI wait for it
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frames)
        return True


def server_frame(message: str | bytes) -> bytes:
    """A whole unmasked frame, text for str and binary for bytes, never compressed
    (RFC 7692 lets a sender leave any message uncompressed)."""
    if isinstance(message, str):
        return Frame(Opcode.TEXT, message.encode()).serialize(mask=False)
    return Frame(Opcode.BINARY, message).serialize(mask=False)
