"""Reporter details are kept no longer than needed: the sweeper erases those of cases
settled longer ago than PATRIOT_REPORTER_RETENTION_DAYS, once, however many
processes sweep."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.applications import Starlette

from api.sweeper import Sweeper
from core.settings import Settings
from domain.reporter_rights import erase_expired_reporters
from models import Case, CaseEvent, CaseStatus, EventType, ReporterErasure
from tests.conftest import wipe_committed_cases
from tests.factories import make_case
from tests.servers import Server, running_servers

pytestmark = pytest.mark.usefixtures("reference_data")

DAY = timedelta(days=1)


async def _settle(session: AsyncSession, case: Case, status: CaseStatus, ago: timedelta) -> None:
    when = datetime.now(UTC) - ago
    closed_at = when if status is CaseStatus.CLOSED else None
    await session.execute(
        update(Case)
        .where(Case.id == case.id)
        .values(status=status.value, closed_at=closed_at, updated_at=when)
    )


async def test_the_sweeper_erases_reporters_of_cases_settled_longer_ago_than_kept(
    app: Starlette, session: AsyncSession, settings: Settings
) -> None:
    kept_days = settings.reporter_retention_days
    old_closed, old_rejected, recent_closed, old_open = [await make_case(session) for _ in range(4)]
    await _settle(session, old_closed, CaseStatus.CLOSED, (kept_days + 1) * DAY)
    await _settle(session, old_rejected, CaseStatus.REJECTED, (kept_days + 30) * DAY)
    await _settle(session, recent_closed, CaseStatus.CLOSED, (kept_days - 1) * DAY)
    await session.execute(
        update(Case)
        .where(Case.id == old_open.id)
        .values(updated_at=datetime.now(UTC) - (kept_days + 1) * DAY)
    )

    sweeper: Sweeper = app.state.sweeper
    result = await sweeper.apply_retention()

    assert result.reporters_erased == 2
    for case in (old_closed, old_rejected, recent_closed, old_open):
        await session.refresh(case)
    assert old_closed.reporter_name is None and old_closed.reporter_phone is None
    assert old_rejected.reporter_email is None and old_rejected.reporter_erased_at is not None
    # The case stays, as it was, for the record and statistics.
    assert old_closed.status == CaseStatus.CLOSED and old_closed.title == "Jalan berlubang"
    assert recent_closed.reporter_phone == old_open.reporter_phone == "+6281234567890"
    erasures = (
        await session.scalars(
            select(ReporterErasure).where(
                ReporterErasure.case_id.in_([old_closed.id, old_rejected.id])
            )
        )
    ).all()
    assert [(e.actor, e.automatic) for e in erasures] == [("system", True)] * 2
    assert all(str(kept_days) in e.reason for e in erasures)
    last = await session.scalar(
        select(CaseEvent).where(CaseEvent.case_id == old_closed.id).order_by(CaseEvent.id.desc())
    )
    assert last is not None
    assert (last.type, last.actor, last.details) == (
        "REPORTER_ERASED",
        "system",
        {"automatic": True},
    )

    assert (await sweeper.apply_retention()).reporters_erased == 0


async def test_a_case_without_reporter_details_is_left_alone(
    app: Starlette, session: AsyncSession
) -> None:
    case = await make_case(session, reporter=None)
    await _settle(session, case, CaseStatus.CLOSED, 10_000 * DAY)
    assert (await app.state.sweeper.apply_retention()).reporters_erased == 0
    await session.refresh(case)
    assert case.reporter_erased_at is None


CASES = 60
BATCH = 7


@pytest.fixture
async def committed(engine: AsyncEngine) -> Any:
    try:
        yield
    finally:
        await wipe_committed_cases(engine)


@pytest.mark.usefixtures("committed")
async def test_processes_sweeping_at_once_erase_each_reporter_once(engine: AsyncEngine) -> None:
    async with AsyncSession(bind=engine, expire_on_commit=False) as session:
        cases = [await make_case(session) for _ in range(CASES)]
        for case in cases:
            await _settle(session, case, CaseStatus.CLOSED, 400 * DAY)
        await session.commit()

    async def sweeper() -> list[int]:
        erased: list[int] = []
        while True:
            async with AsyncSession(bind=engine) as session, session.begin():
                batch = await erase_expired_reporters(
                    session=session, now=datetime.now(UTC), retention_days=365, batch_size=BATCH
                )
            if not batch:
                return erased
            erased.extend(batch)
            await asyncio.sleep(0)

    results = await asyncio.gather(*(sweeper() for _ in range(3)))

    erased = Counter(case_id for result in results for case_id in result)
    assert erased == Counter({case.id: 1 for case in cases})
    assert sum(1 for result in results if result) >= 2, "the sweeps did not overlap"
    async with engine.connect() as conn:
        per_case = await conn.execute(
            select(ReporterErasure.case_id, func.count()).group_by(ReporterErasure.case_id)
        )
        assert {count for _case, count in per_case} == {1}
        left = await conn.scalar(
            select(func.count()).select_from(Case).where(Case.reporter_phone.is_not(None))
        )
        assert left == 0


def _retention_logs(server: Server) -> list[dict[str, Any]]:
    found = []
    for line in server.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("event") == "retention":
                    found.append(record)
    return found


@pytest.mark.usefixtures("committed")
async def test_two_server_processes_erase_each_reporter_once(
    engine: AsyncEngine, test_database_url: str, tmp_path: Path
) -> None:
    with running_servers(
        2,
        database_url=test_database_url,
        tmp_path=tmp_path,
        PATRIOT_SWEEPER_ENABLED="true",
        PATRIOT_SWEEP_INTERVAL_S="0.2",
        PATRIOT_RETENTION_BATCH_SIZE=str(BATCH),
        PATRIOT_LOG_LEVEL="INFO",
    ) as servers:
        # Committed in small chunks while both processes sweep.
        for _ in range(CASES // 10):
            async with AsyncSession(bind=engine, expire_on_commit=False) as session:
                for case in [await make_case(session) for _ in range(10)]:
                    await _settle(session, case, CaseStatus.CLOSED, 400 * DAY)
                await session.commit()
            await asyncio.sleep(0.05)
        async with asyncio.timeout(30):
            while True:
                async with engine.connect() as conn:
                    left = await conn.scalar(
                        select(func.count())
                        .select_from(Case)
                        .where(Case.reporter_phone.is_not(None))
                    )
                if left == 0:
                    break
                await asyncio.sleep(0.2)

    async with engine.connect() as conn:
        erasures = Counter(await conn.scalars(select(ReporterErasure.case_id)))
        events = Counter(
            await conn.scalars(
                select(CaseEvent.case_id).where(CaseEvent.type == EventType.REPORTER_ERASED.value)
            )
        )
        case_ids = list(await conn.scalars(select(Case.id)))
    assert len(case_ids) == CASES
    assert erasures == events == Counter(case_ids)
    # What each process says it did adds up to the work, and both took part.
    done = [sum(r["reporters_erased"] for r in _retention_logs(s)) for s in servers]
    assert sum(done) == CASES and all(done), done
