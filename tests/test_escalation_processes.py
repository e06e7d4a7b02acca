"""Two real server processes sweep the same database: every escalation happens once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from models import Case, CaseEvent, EventType
from tests.conftest import ROOT, wipe_committed_cases
from tests.factories import make_case

pytestmark = pytest.mark.usefixtures("reference_data")

CASES = 200
CHUNK = 10
# The POC hears of a case 3.6 s after its due time: half of the cases reach it
# while both processes are sweeping, in a later sweep than their first escalation.
POC_AFTER_HOURS = 0.001
DEADLINE_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, database_url: str) -> None:
        self.port = _free_port()
        self.database_url = database_url
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        env = {
            **os.environ,
            "PATRIOT_DATABASE_URL": self.database_url,
            "PATRIOT_PORT": str(self.port),
            "PATRIOT_ENVIRONMENT": "test",
            "PATRIOT_SWEEPER_ENABLED": "true",
            "PATRIOT_SWEEP_INTERVAL_S": "0.2",
            "PATRIOT_POC_ESCALATION_AFTER_HOURS": str(POC_AFTER_HOURS),
            "PATRIOT_LOG_LEVEL": "INFO",
        }
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "api",
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        # Always drained, so that a chatty server never blocks on a full pipe.
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode(errors="replace").rstrip())

    async def wait_ready(self, client: httpx.AsyncClient) -> None:
        async with asyncio.timeout(DEADLINE_S):
            while True:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise AssertionError("server exited:\n" + "\n".join(self.lines[-30:]))
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get(f"http://127.0.0.1:{self.port}/healthz")
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            await self._reader

    def sweeps(self) -> list[dict[str, Any]]:
        found = []
        for line in self.lines:
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("event") == "sweep":
                        found.append(record)
        return found


async def _commit_overdue_cases(engine: AsyncEngine, count: int) -> None:
    """Commit cases in small chunks while the servers sweep; odd ones are due long ago,
    even ones only just now."""
    for start in range(0, count, CHUNK):
        async with AsyncSession(bind=engine, expire_on_commit=False) as session, session.begin():
            cases = [await make_case(session) for _ in range(CHUNK)]
            now = datetime.now(UTC)
            for i, case in enumerate(cases):
                late = timedelta(days=2) if (start + i) % 2 else timedelta(seconds=1)
                await session.execute(
                    update(Case).where(Case.id == case.id).values(due_at=now - late)
                )
        await asyncio.sleep(0.05)


async def _count_at_level_two(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                select(func.count()).select_from(Case).where(Case.escalation_level == 2)
            )
            or 0
        )


async def test_two_processes_escalate_each_case_exactly_once(
    engine: AsyncEngine, test_database_url: str
) -> None:
    servers = [Server(test_database_url), Server(test_database_url)]
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for server in servers:
                await server.start()
            for server in servers:
                await server.wait_ready(client)
        await _commit_overdue_cases(engine, CASES)
        async with asyncio.timeout(DEADLINE_S):
            while True:
                if await _count_at_level_two(engine) == CASES:
                    break
                await asyncio.sleep(0.2)
        for server in servers:
            await server.stop()

        async with engine.connect() as conn:
            levels = Counter(
                (case_id, int(level))
                for case_id, level in await conn.execute(
                    select(CaseEvent.case_id, CaseEvent.details["level"].as_integer()).where(
                        CaseEvent.type == EventType.ESCALATED.value
                    )
                )
            )
            case_ids = list(await conn.scalars(select(Case.id)))
        assert len(case_ids) == CASES
        assert levels == Counter({(case_id, level): 1 for case_id in case_ids for level in (1, 2)})

        # Each process reports what it did: together exactly the work, and both took part.
        sweeps = [server.sweeps() for server in servers]
        for level in ("escalated_to_dinas", "escalated_to_poc"):
            assert sum(s[level] for process in sweeps for s in process) == CASES
        assert all(sum(s["escalated_cases"] for s in process) > 0 for process in sweeps), [
            sum(s["escalated_cases"] for s in process) for process in sweeps
        ]
    finally:
        for server in servers:
            await server.stop()
        await wipe_committed_cases(engine)
