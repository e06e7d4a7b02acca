"""A small graphql-transport-ws client for the tests, over the websockets library."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

PROTOCOL = "graphql-transport-ws"


class GraphQLSocket:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, wait_s: float = 5.0) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(
                await asyncio.wait_for(self.connection.recv(), wait_s)
            )
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            return message

    async def subscribe(
        self, operation_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        await self.send(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )

    async def next_data(self, wait_s: float = 5.0) -> dict[str, Any]:
        message = await self.receive(wait_s)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def assert_silent(self, seconds: float) -> None:
        try:
            message = await self.receive(wait_s=seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {message}")


@asynccontextmanager
async def graphql_socket(
    url: str, *, init_payload: dict[str, Any] | None = None
) -> AsyncIterator[GraphQLSocket]:
    async with connect(url, subprotocols=[PROTOCOL]) as connection:  # type: ignore[list-item]
        socket = GraphQLSocket(connection)
        await socket.send({"type": "connection_init", "payload": init_payload or {}})
        ack = await socket.receive()
        assert ack["type"] == "connection_ack", ack
        yield socket
