"""Times the statistics queries over one year of the generated history.

    source scripts/lib/setup.sh
    python bench/stats/generate.py     # once: 1,000,000 cases in patriot_bench_stats
    python bench/stats/run.py          # --runs 7 --database patriot_bench_stats

Each query runs through its domain function (`domain.stats`), as the GraphQL resolver
calls it, in its own session and transaction, the way the API runs one operation; GraphQL
parsing and JSON encoding are not included. The range is the year ending now. First it
refreshes the statistics rollup, as every server's sweeper does each minute (a full build
the first time, or with --rebuild), and prints how long that took and how much of it the
transaction held an id (all that time, the live feed holds its events back). After one
untimed warm-up run per query (caches, prepared statements), it prints the median and the
slowest of --runs runs, and marks those over the 500 ms goal.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, make_url, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from domain.case_queries import CaseFilter  # noqa: E402
from domain.stats.backlog import case_backlog, most_overdue_cases  # noqa: E402
from domain.stats.flows import case_stats  # noqa: E402
from domain.stats.grouping import StatsGroup  # noqa: E402
from domain.stats.maps import ChoroplethMetric, case_heatmap, kelurahan_choropleth  # noqa: E402
from domain.stats_rollup import count_contributions, write_contributions  # noqa: E402
from geo.case_filters import BBox  # noqa: E402
from models import Case, CaseStatsRollup  # noqa: E402

GOAL_MS = 500.0
CITY = true()  # the mayor's and the POC's scope: every case
BEKASI = BBox(west=106.88, south=-6.42, east=107.06, north=-6.15)

Query = Callable[[AsyncSession], Awaitable[Any]]


def scenarios(now: datetime) -> list[tuple[str, Query]]:
    start, end = now - timedelta(days=365), now
    year = CaseFilter(created_from=start, created_to=end)
    found: list[tuple[str, Query]] = []
    for group in StatsGroup:

        def by_group(session: AsyncSession, group: StatsGroup = group) -> Awaitable[Any]:
            return case_stats(
                session=session,
                group_by=group,
                case_filter=CaseFilter(),
                scope=CITY,
                start=start,
                end=end,
                now=now,
            )

        found.append((f"caseStats groupBy {group.value}", by_group))

    def dinas_filtered(session: AsyncSession) -> Awaitable[Any]:
        return case_stats(
            session=session,
            group_by=StatsGroup.WEEK,
            case_filter=CaseFilter(dinas_codes=["DLH"], kecamatan_codes=["32.75.01"]),
            scope=CITY,
            start=start,
            end=end,
            now=now,
        )

    found.append(("caseStats WEEK, one dinas and kecamatan", dinas_filtered))

    def partner(session: AsyncSession) -> Awaitable[Any]:
        # A partner sees its own reports (70% of all here): no rollup, every case read.
        return case_stats(
            session=session,
            group_by=StatsGroup.KELURAHAN,
            case_filter=CaseFilter(),
            scope=Case.source == "POT",
            start=start,
            end=end,
            now=now,
        )

    found.append(("caseStats KELURAHAN, partner POT (cases)", partner))
    for cell_m in (250.0, 100.0):

        def heat(session: AsyncSession, cell_m: float = cell_m) -> Awaitable[Any]:
            return case_heatmap(
                session=session, bbox=BEKASI, cell_m=cell_m, case_filter=year, scope=CITY
            )

        found.append((f"heatmap city, {cell_m:g} m cells", heat))
    for metric in ChoroplethMetric:

        def choropleth(session: AsyncSession, metric: ChoroplethMetric = metric) -> Awaitable[Any]:
            return kelurahan_choropleth(
                session=session,
                metric=metric,
                case_filter=CaseFilter(),
                scope=CITY,
                start=start,
                end=end,
                now=now,
                simplify_m=20.0,
            )

        found.append((f"kelurahanChoropleth {metric.value}", choropleth))

    def backlog(session: AsyncSession) -> Awaitable[Any]:
        return case_backlog(
            session=session,
            group_by=StatsGroup.DINAS,
            case_filter=CaseFilter(),
            scope=CITY,
            now=now,
        )

    def overdue(session: AsyncSession) -> Awaitable[Any]:
        return most_overdue_cases(
            session=session, case_filter=CaseFilter(), scope=CITY, now=now, first=10
        )

    found.append(("caseBacklog DINAS (all open)", backlog))
    found.append(("overdueCases first 10", overdue))
    return found


async def time_query(factory: async_sessionmaker[AsyncSession], query: Query) -> float:
    started = time.perf_counter()
    async with factory() as session, session.begin():
        await query(session)
    return (time.perf_counter() - started) * 1000


async def refresh(factory: async_sessionmaker[AsyncSession]) -> None:
    """One refresh of the rollup, in the sweeper's way; the time it holds a transaction
    id (from its first write to its commit) is the time it holds back the live feed."""
    started = time.perf_counter()
    async with factory() as session, session.begin():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        contributions = await count_contributions(session=session)
        writing = time.perf_counter()
        if contributions is not None:
            done = await write_contributions(
                session=session, contributions=contributions, now=datetime.now(UTC)
            )
    ended = time.perf_counter()
    if contributions is None:
        print("rollup refresh skipped: another refresh holds the lock")
    else:
        what = "rebuilt" if done.rebuilt else "added to"
        print(
            f"rollup {what}: {done.rows:,} day rows in {(ended - started) * 1000:,.0f} ms,"
            f" of which {(ended - writing) * 1000:,.0f} ms writing with a transaction id"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="patriot_bench_stats")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", default="", help="run the queries whose name contains this")
    parser.add_argument(
        "--rebuild", action="store_true", help="forget the rollup first, so the refresh rebuilds it"
    )
    args = parser.parse_args()
    base = os.environ.get("PATRIOT_DATABASE_URL")
    if not base:
        raise SystemExit("PATRIOT_DATABASE_URL is not set: source scripts/lib/setup.sh first")
    url = make_url(base).set(database=args.database).render_as_string(hide_password=False)
    engine = create_async_engine(url, pool_size=2)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with factory() as session:
            cases = await session.scalar(select(func.count()).select_from(Case))
            in_year = await session.scalar(
                select(func.count()).where(Case.created_at >= func.now() - timedelta(days=365))
            )
        if args.rebuild:
            async with factory() as session, session.begin():
                await session.execute(delete(CaseStatsRollup))
        await refresh(factory)
        await refresh(factory)  # what a sweep with nothing newly settled costs
        now = datetime.now(UTC)
        print(f"{cases:,} cases, {in_year:,} created in the year ending now; {args.runs} runs each")
        print(f"{'query':<42} {'p50 ms':>8} {'max ms':>8}")
        slow = 0
        for name, query in scenarios(now):
            if args.only not in name:
                continue
            await time_query(factory, query)  # warm-up
            timings = [await time_query(factory, query) for _ in range(args.runs)]
            p50, worst = statistics.median(timings), max(timings)
            mark = "" if worst <= GOAL_MS else "  over the 500 ms goal"
            slow += bool(mark)
            print(f"{name:<42} {p50:>8.0f} {worst:>8.0f}{mark}", flush=True)
        print("all within the goal" if not slow else f"{slow} over the goal")
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
