"""Real server processes for the tests that need them (several processes, websockets)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


@contextmanager
def running_servers(
    count: int, *, database_url: str, tmp_path: Path, **env: str
) -> Iterator[list[Server]]:
    servers: list[Server] = []
    try:
        for index in range(count):
            port = free_port()
            log = tmp_path / f"server-{index}.log"
            with log.open("wb") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", "api"],
                    cwd=ROOT,
                    env={
                        **os.environ,
                        "PATRIOT_DATABASE_URL": database_url,
                        "PATRIOT_PORT": str(port),
                        "PATRIOT_ENVIRONMENT": "test",
                        "PATRIOT_LOG_LEVEL": "WARNING",
                        **env,
                    },
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            servers.append(Server(port=port, process=process, log=log))
        for server in servers:
            _wait_until_up(server)
        yield servers
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def _wait_until_up(server: Server, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not start:\n{server.log.read_text()}")


@contextmanager
def module_server(
    *, database_url: str, tmp_path_factory: pytest.TempPathFactory, name: str, **env: str
) -> Iterator[Server]:
    """One server process for a test module; it sweeps nothing on its own."""
    with running_servers(
        1,
        database_url=database_url,
        tmp_path=tmp_path_factory.mktemp(name),
        PATRIOT_SWEEPER_ENABLED="false",
        **env,
    ) as [started]:
        yield started
