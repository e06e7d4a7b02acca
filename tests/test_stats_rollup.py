"""The statistics rollup gives exactly the answers of reading every case, also while
cases settle, reopen and arrive after its refresh, and when a holiday changes."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from api import sweeper as sweeper_module
from api.sweeper import Sweeper
from core.settings import Settings
from domain.case_queries import CaseFilter
from domain.stats.flows import ALL_FLOWS, case_stats
from domain.stats.grouping import StatsGroup
from domain.stats.rollup_reading import read_rollup
from domain.stats_rollup import (
    RollupRefresh,
    count_contributions,
    refresh_rollup,
    write_contributions,
)
from domain.working_days import JAKARTA
from models import Case, CaseStatsDay, CaseStatsRollup, Holiday
from tests import bekasi
from tests.factories import make_case

pytestmark = pytest.mark.usefixtures("reference_data")

KELURAHAN = ["32.75.08.1001", "32.75.08.1002", "32.75.01.1001"]
EXTRA_HOLIDAY = date(2026, 3, 11)  # a Wednesday that is no holiday in the seeds


def wib(day: int, hour: int = 9, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=JAKARTA)


async def _wipe(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text('TRUNCATE "case", ticket_counter, case_stats_day, case_stats_rollup CASCADE')
        )
        await conn.execute(delete(Holiday).where(Holiday.day == EXTRA_HOLIDAY))


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose commits are real: the rollup tells cases apart by the
    transaction that settled them, so the tests need transactions of their own."""
    await _wipe(engine)
    try:
        async with AsyncSession(bind=engine, expire_on_commit=False) as session:
            yield session
    finally:
        await _wipe(engine)


async def _refresh(engine: AsyncEngine) -> RollupRefresh:
    async with AsyncSession(bind=engine) as session, session.begin():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        refresh = await refresh_rollup(session=session, now=datetime.now(UTC))
    assert refresh is not None
    return refresh


def _resolve(case: Case, at: datetime, status: str) -> None:
    case.status = status
    case.resolved_at = at


async def _history(session: AsyncSession, shared_data_dir: Path, rng: random.Random) -> list[Case]:
    points = [bekasi.interior_lat_lon(shared_data_dir, code) for code in KELURAHAN]
    cases = []
    for n in range(60):
        lat, lon = rng.choice(points)
        created = wib(2) + timedelta(minutes=rng.randrange(24 * 60 * 26))
        extra: dict[str, Any] = {
            "lat": lat,
            "lon": lon,
            "category_code": rng.choice(["JALAN_RUSAK", "SAMPAH"]),
        }
        if n % 9 == 0:  # city-wide: no kelurahan
            extra = {"kind": "ASPIRASI", "location": None, "category_code": "JALAN_RUSAK"}
        case = await make_case(session, now=created, source=rng.choice(["POT", "SOROT"]), **extra)
        fate = rng.random()
        resolved = created + timedelta(hours=rng.uniform(1, 400))
        if fate < 0.3:
            _resolve(case, resolved, "CLOSED")
        elif fate < 0.5:
            _resolve(case, resolved, "RESOLVED")
        elif fate < 0.6:
            case.status = "REJECTED"
        elif fate < 0.65:
            case.status = "DUPLICATE"
        cases.append(case)
    await session.commit()
    return cases


RANGES = [
    (wib(1, 0), wib(1, 0, month=4)),  # whole days
    (wib(4, 13, 30), wib(20, 7, 15)),  # partial days at both ends
    (wib(10, 0), wib(10, 18)),  # less than a day: no rollup
]


async def _compare(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every grouping and flow, with the rollup and without; how many read it."""
    used = 0

    async def counting(**kwargs: Any) -> Any:
        nonlocal used
        found = await read_rollup(**kwargs)
        used += found is not None
        return found

    monkeypatch.setattr("domain.stats.flows.read_rollup", counting)
    now = datetime.now(UTC)
    every_case = Case.id.is_not(None)  # the same cases, but not the city-wide scope
    for start, end in RANGES:
        for group_by in StatsGroup:
            for flows, durations in (
                (ALL_FLOWS, True),
                (frozenset({"received"}), False),
                (frozenset({"resolved"}), False),
            ):
                results = []
                for scope in (true(), every_case):
                    async with AsyncSession(bind=engine) as session, session.begin():
                        results.append(
                            await case_stats(
                                session=session,
                                group_by=group_by,
                                case_filter=CaseFilter(),
                                scope=scope,
                                start=start,
                                end=end,
                                now=now,
                                with_durations=durations,
                                flows=flows,
                            )
                        )
                with_rollup, from_cases = results
                assert with_rollup.total == from_cases.total, (start, group_by, flows)
                assert with_rollup.groups == from_cases.groups, (start, group_by, flows)
    return used


async def test_rollup_answers_equal_reading_every_case(
    engine: AsyncEngine,
    committed: AsyncSession,
    shared_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(5)
    cases = await _history(committed, shared_data_dir, rng)
    assert await _compare(engine, monkeypatch) == 0  # no rollup yet

    first = await _refresh(engine)
    assert first.rebuilt and first.rows > 0
    assert await _compare(engine, monkeypatch) > 0

    # After the refresh: cases settle, a resolution is taken back, new cases and
    # resolutions arrive, in the middle of the rollup's days.
    resolved = [c for c in cases if c.status == "RESOLVED"]
    open_ = [c for c in cases if c.status == "RECEIVED"]
    resolved[0].status = "CLOSED"
    resolved[1].status = "REOPENED"
    _resolve(open_[0], open_[0].created_at + timedelta(hours=30), "CLOSED")
    _resolve(open_[1], open_[1].created_at + timedelta(hours=5), "RESOLVED")
    open_[2].status = "REJECTED"
    late = await make_case(committed, now=wib(12, 10), category_code="SAMPAH")
    _resolve(late, wib(13, 11), "CLOSED")
    await committed.commit()
    assert await _compare(engine, monkeypatch) > 0

    second = await _refresh(engine)
    assert not second.rebuilt and second.rows > 0
    assert await _compare(engine, monkeypatch) > 0
    assert (await _refresh(engine)).rows == 0  # nothing settled since

    # A new holiday changes working hours: the rollup is set aside until rebuilt.
    committed.add(Holiday(day=EXTRA_HOLIDAY, name="Libur tambahan"))
    await committed.commit()
    assert await _compare(engine, monkeypatch) == 0
    assert (await _refresh(engine)).rebuilt
    assert await _compare(engine, monkeypatch) > 0


async def test_the_rollup_holds_only_settled_cases_per_local_day(
    engine: AsyncEngine, committed: AsyncSession
) -> None:
    # 23:30 WIB on 9 March is 16:30 UTC: the day is the local one.
    late_evening = await make_case(committed, now=wib(9, 23, 30), category_code="SAMPAH")
    late_evening.status = "REJECTED"
    still_open = await make_case(committed, now=wib(9, 10), category_code="SAMPAH")
    await committed.commit()
    await _refresh(engine)
    async with AsyncSession(bind=engine) as session:
        rows = (
            await session.execute(
                select(CaseStatsDay.day, CaseStatsDay.key, CaseStatsDay.received).where(
                    CaseStatsDay.dimension == "STATUS"
                )
            )
        ).all()
        settled = await session.scalar(select(func.count()).where(Case.settled_txid.is_not(None)))
    assert rows == [(date(2026, 3, 9), "REJECTED", 1)]
    assert settled == 1
    assert still_open.settled_txid is None


async def _repeatable_read(session: AsyncSession) -> None:
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


async def _day_rows(engine: AsyncEngine) -> list[Any]:
    async with AsyncSession(bind=engine) as session:
        return list(
            (
                await session.execute(
                    select(CaseStatsDay).order_by(
                        CaseStatsDay.dimension, CaseStatsDay.day, CaseStatsDay.key
                    )
                )
            )
            .scalars()
            .all()
        )


def _as_tuples(rows: list[CaseStatsDay]) -> list[tuple[Any, ...]]:
    """Each row's counts; the hours as a sorted list (their order follows the scan)."""
    return [
        (
            r.dimension,
            r.day,
            r.key,
            r.received,
            r.resolved,
            r.resolved_on_time,
            sorted(r.hours[i : i + 8] for i in range(0, len(r.hours), 8)),
        )
        for r in rows
    ]


async def _rebuilt_rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.begin() as conn:
        await conn.execute(delete(CaseStatsRollup))
    assert (await _refresh(engine)).rebuilt
    return _as_tuples(await _day_rows(engine))


@pytest.mark.parametrize("rebuild", [True, False], ids=["rebuild", "added"])
async def test_a_refresh_counts_without_a_transaction_id(
    engine: AsyncEngine,
    committed: AsyncSession,
    shared_data_dir: Path,
    rebuild: bool,
) -> None:
    # The live feed holds back every event until each transaction with an id that
    # started before it has ended: the reads must not take one.
    cases = await _history(committed, shared_data_dir, random.Random(7))
    if not rebuild:
        await _refresh(engine)
        for case in cases:
            if case.status == "RESOLVED":
                case.status = "CLOSED"
        await committed.commit()
    async with AsyncSession(bind=engine) as session, session.begin():
        await _repeatable_read(session)
        contributions = await count_contributions(session=session)
        assert contributions is not None
        assert contributions.rebuild == rebuild and contributions.rows
        assert await session.scalar(select(func.pg_current_xact_id_if_assigned())) is None
        await write_contributions(
            session=session, contributions=contributions, now=datetime.now(UTC)
        )
        assert await session.scalar(select(func.pg_current_xact_id_if_assigned())) is not None


@pytest.mark.parametrize("built", [False, True], ids=["first-build", "added"])
async def test_a_refresh_older_than_another_fails_instead_of_counting_twice(
    engine: AsyncEngine,
    committed: AsyncSession,
    shared_data_dir: Path,
    built: bool,
) -> None:
    cases = await _history(committed, shared_data_dir, random.Random(11))
    if built:
        await _refresh(engine)
        for case in cases:
            if case.status == "RESOLVED":
                case.status = "CLOSED"
        await committed.commit()
    async with AsyncSession(bind=engine) as stale:
        await _repeatable_read(stale)
        await stale.execute(select(func.pg_current_snapshot()))  # its snapshot, fixed here
        other = await _refresh(engine)  # another process refreshes and commits meanwhile
        assert other.rows > 0
        # The lock is free again and the stale refresh reads the rollup as it was
        # before the other refresh: the same cases, to be added a second time.
        contributions = await count_contributions(session=stale)
        assert contributions is not None and contributions.rows
        with pytest.raises(DBAPIError) as failure:
            await write_contributions(
                session=stale, contributions=contributions, now=datetime.now(UTC)
            )
        assert getattr(failure.value.orig, "sqlstate", None) == "40001"
        await stale.rollback()
    refreshed = _as_tuples(await _day_rows(engine))
    assert refreshed == await _rebuilt_rows(engine)


async def test_the_sweeper_takes_a_superseded_refresh_calmly(
    engine: AsyncEngine,
    committed: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def overtaken(*, session: AsyncSession, now: datetime) -> RollupRefresh | None:
        await session.execute(select(func.pg_current_snapshot()))
        await _refresh(engine)  # another process, between this one's snapshot and lock
        return await refresh_rollup(session=session, now=now)

    monkeypatch.setattr(sweeper_module, "refresh_rollup", overtaken)
    app = Starlette()
    app.state.session_factory = async_sessionmaker(engine)
    with caplog.at_level(logging.DEBUG, logger="patriot.sweeper"):
        await Sweeper(app, settings=settings).refresh_statistics()
    (record,) = caplog.records
    assert record.levelno == logging.INFO and record.exc_info is None
    assert "stats_refresh_superseded" in record.getMessage()
    async with AsyncSession(bind=engine) as session:
        assert await session.scalar(select(func.count()).select_from(CaseStatsRollup)) == 1
