"""The websockets of one server process by who opened them: a cap per caller,
and credentials that keep being checked while a socket lives.

A socket authenticates once, in connection_init; without a second look, a
revoked key, a suspended partner or an expired token would keep receiving
cases for as long as the socket stays open. Each socket therefore ends when
its token expires, and partner keys are checked again against the database
every PATRIOT_PARTNER_KEY_CACHE_S, the delay after which HTTP sees a
revocation too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from starlette.types import Message, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from api.auth import Authenticator, api_key_of, hash_key
from api.observability import Metrics
from core.database import database_unavailable
from core.settings import Settings
from domain.access import Principal

logger = logging.getLogger("patriot.sockets")

# graphql-transport-ws speaks 44xx close codes (4403: Forbidden); 1013 is the
# WebSocket protocol's own "try again later".
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 4429
CLOSE_TRY_LATER = 1013
# Keys are checked again at least this often when the key cache is off (0 s).
MIN_RECHECK_S = 1.0
SCOPE_KEY = "patriot.socket"


class SocketRefused(Exception):
    """connection_init is refused with this close code and reason."""

    def __init__(self, code: int, reason: str, *, metric: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.metric = metric


class Socket:
    """One websocket connection, from its handshake until it ends."""

    __slots__ = ("_expiry", "close_as", "key_digest", "principal", "websocket")

    def __init__(self) -> None:
        self.websocket: WebSocket | None = None
        self.principal: Principal | None = None
        self.key_digest: str | None = None  # partner sockets: the key to check again
        # Strawberry closes a refused connection_init with 4403 "Forbidden"; a
        # refusal that means something else (too many sockets, retry later)
        # says so with its own code instead.
        self.close_as: tuple[int, str] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    def send_through(self, send: Send) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "websocket.close" and self.close_as is not None:
                code, reason = self.close_as
                message = {**message, "code": code, "reason": reason}
            await send(message)

        return sending


class SocketRegistry:
    def __init__(self, *, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._admitted: set[Socket] = set()
        self._per_principal: Counter[str] = Counter()
        self._authenticator: Authenticator | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def count(self, principal: Principal) -> int:
        return self._per_principal[principal.subject]

    def refuse(self, socket: Socket, refused: SocketRefused) -> None:
        """The socket's connection_init is refused with `refused`'s code."""
        socket.close_as = (refused.code, refused.reason)
        self._metrics.connections_refused.labels(reason=refused.metric).inc()

    def admit(
        self,
        socket: Socket,
        *,
        websocket: WebSocket,
        principal: Principal,
        params: Mapping[str, Any],
    ) -> None:
        """Counts the socket for its principal, or refuses it over the cap."""
        subject = principal.subject
        if self._per_principal[subject] >= self._settings.websockets_per_principal:
            raise SocketRefused(
                CLOSE_TOO_MANY,
                f"Too many connections: at most {self._settings.websockets_per_principal} "
                "per caller",
                metric="websockets_per_principal",
            )
        key = api_key_of(params)
        socket.websocket = websocket
        socket.principal = principal
        socket.key_digest = hash_key(key) if key and principal.is_partner else None
        self._per_principal[subject] += 1
        self._admitted.add(socket)
        if principal.expires_at is not None:
            socket._expiry = asyncio.get_running_loop().call_later(
                max(0.0, principal.expires_at - time.time()),
                self._close,
                socket,
                "Token expired",
                "token_expired",
            )

    def release(self, socket: Socket) -> None:
        if socket._expiry is not None:
            socket._expiry.cancel()
            socket._expiry = None
        if socket not in self._admitted:
            return
        self._admitted.discard(socket)
        assert socket.principal is not None
        subject = socket.principal.subject
        self._per_principal[subject] -= 1
        if self._per_principal[subject] <= 0:
            del self._per_principal[subject]

    def start(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator
        self._task = asyncio.create_task(self._recheck_forever(), name="socket-credentials")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def recheck(self) -> None:
        """Closes every socket whose partner key was revoked or whose partner
        was suspended since it connected."""
        digests = {s.key_digest for s in self._admitted if s.key_digest is not None}
        if not digests or self._authenticator is None:
            return
        valid = await self._authenticator.valid_key_digests(digests)
        for socket in tuple(self._admitted):
            if socket.key_digest is not None and socket.key_digest not in valid:
                self._close(socket, "API key no longer valid", "credentials_revoked")

    async def _recheck_forever(self) -> None:
        interval = max(self._settings.partner_key_cache_s, MIN_RECHECK_S)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.recheck()
            except Exception as error:  # the checker must outlive any one failure
                if not database_unavailable(error):
                    logger.exception("checking the keys of open sockets failed")
                # During an outage sockets stay open: their operations answer
                # SERVICE_UNAVAILABLE, and the keys are checked once it is back.

    def _close(self, socket: Socket, reason: str, metric: str) -> None:
        websocket = socket.websocket
        if websocket is None or websocket.application_state is not WebSocketState.CONNECTED:
            return
        self._metrics.connections_refused.labels(reason=metric).inc()
        task = asyncio.create_task(_close(websocket, reason), name="close-socket")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _close(websocket: WebSocket, reason: str) -> None:
    # It may have closed meanwhile (RuntimeError: Starlette's WebSocketDisconnected).
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=CLOSE_FORBIDDEN, reason=reason)
