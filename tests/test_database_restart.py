"""PostgreSQL restarted under a steady stream of submissions: no acknowledged
report is lost or duplicated, retries with the same key give one case each,
and the server recovers on its own. A cluster of its own, a real server process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from models import Case, CaseEvent
from tests.conftest import add_partner_key
from tests.databases import prepare
from tests.factories import SUBMIT, report_input
from tests.pg_cluster import Cluster, throwaway_cluster
from tests.servers import running_servers

REPORTS = 120
RATE_PER_S = 20
DEADLINE_S = 90


async def _prepare(cluster: Cluster, shared_data_dir: Path) -> str:
    """Migrated, boundaries and reference data loaded; a partner key of POT."""
    await prepare(cluster.url, shared_data_dir)
    engine = create_async_engine(cluster.url)
    try:
        async with AsyncSession(bind=engine, expire_on_commit=False) as session, session.begin():
            return await add_partner_key(session, "POT")
    finally:
        await engine.dispose()


async def _submit_until_acknowledged(
    client: httpx.AsyncClient, url: str, key: str, variables: dict[str, Any], refused: list[str]
) -> str:
    """Retries with the same idempotency key until the report is acknowledged."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            response = await client.post(
                url,
                json={"query": SUBMIT, "variables": {"input": variables}},
                headers={"x-api-key": key},
            )
            result = (response.json().get("data") or {}).get("submitReport") or {}
            if result.get("__typename") == "Case":
                return str(result["ticket"])
            refused.append(response.text)
        except (httpx.TransportError, ValueError) as error:
            refused.append(repr(error))  # the same key is tried again, as a partner app would
        assert time.monotonic() < deadline, "a report was never acknowledged"
        await asyncio.sleep(0.2)


@pytest.mark.usefixtures("reference_data")
async def test_a_database_restart_loses_and_duplicates_nothing(
    tmp_path: Path, shared_data_dir: Path
) -> None:
    with throwaway_cluster() as cluster:
        key = await _prepare(cluster, shared_data_dir)
        with running_servers(
            1,
            database_url=cluster.url,
            tmp_path=tmp_path,
            PATRIOT_SWEEPER_ENABLED="false",
            PATRIOT_MUTATION_BURST="100000",
        ) as [server]:
            inputs = [report_input(idempotencyKey=f"restart-{i}") for i in range(REPORTS)]
            refused: list[str] = []
            async with httpx.AsyncClient(timeout=10) as client:

                async def submit(index: int) -> str:
                    await asyncio.sleep(index / RATE_PER_S)
                    return await _submit_until_acknowledged(
                        client, server.http, key, inputs[index], refused
                    )

                async def restart() -> None:
                    await asyncio.sleep(REPORTS / RATE_PER_S / 3)
                    await asyncio.to_thread(cluster.restart, 1.0)

                *tickets, _ = await asyncio.gather(*map(submit, range(REPORTS)), restart())

            engine = create_async_engine(cluster.url)
            try:
                async with engine.connect() as conn:
                    stored = dict(
                        (await conn.execute(select(Case.idempotency_key, Case.ticket))).all()
                    )
                    events = await conn.scalar(select(func.count()).select_from(CaseEvent))
            finally:
                await engine.dispose()

    # The restart fell inside the stream: some submissions met the outage.
    assert refused, "no submission met the restart"
    # Every acknowledged ticket is stored, once, under its own key; nothing else is.
    assert stored == {f"restart-{i}": tickets[i] for i in range(REPORTS)}
    assert len(set(tickets)) == REPORTS
    assert events == 2 * REPORTS  # CREATED and ROUTED, once each
