"""A year-scale history for the statistics benchmark: 1,000,000 cases over two years.

    source scripts/lib/setup.sh
    python bench/stats/generate.py                 # patriot_bench_stats, 1,000,000 cases
    python bench/stats/generate.py --cases 200000  # smaller

Creates the database (default patriot_bench_stats) on the server of
PATRIOT_DATABASE_URL (dropping it first), enables PostGIS, migrates it with alembic,
loads the reference seeds (partners, dinas, categories, holidays), imports and
activates the official kelurahan boundaries from PATRIOT_SHARED_DATA_DIR, then writes
the cases with INSERT … SELECT over generate_series, in batches, and analyses the
table. No events are written: statistics read only the cases.

The history, ending now:
- creation times spread over two years, busier on weekdays and in the day (06:00 to
  22:00 WIB), growing by half from the first year to the second;
- kelurahan skewed (a few busy ones, a long tail), each case at one of 300 random
  points inside its kelurahan (ST_GeneratePoints);
- leaf categories skewed the same way, the dinas being the category's default and
  the due time its service level, counted in calendar days times 1.4 (close to working
  days; the exact holiday calendar does not matter for timing);
- statuses by age: of cases older than 30 days about 80% resolved or closed,
  6% rejected, 3% duplicate and 11% still open (most of them overdue); younger
  cases are more often open. Resolution times are skewed, from hours to weeks,
  about 70% within the service level. A resolution older than two weeks is CLOSED,
  as the sweeper's automatic closing (10 working days) leaves it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from geo.importer import ImportOptions, import_boundaries, plan_import  # noqa: E402
from seeds.reference import REFERENCE_STEPS  # noqa: E402

DEFAULT_DATABASE = "patriot_bench_stats"
BATCH = 100_000
POINTS_PER_KELURAHAN = 300

# One batch of cases; :first and :last number them, :cases is the total, so that the
# creation times spread over the whole two years whatever the batch.
INSERT_CASES = """
WITH kel AS (
    SELECT k.id, k.code, k.kecamatan_id, kc.code AS kecamatan_code,
           row_number() OVER (ORDER BY k.code) - 1 AS n
    FROM kelurahan k
    JOIN kecamatan kc ON kc.id = k.kecamatan_id
    JOIN boundary_set b ON b.id = k.boundary_set_id AND b.is_active
), kel_count AS (SELECT count(*) AS c FROM kel),
cat AS (
    SELECT c.id, c.default_dinas_id, c.service_level_days,
           row_number() OVER (ORDER BY c.code) - 1 AS n
    FROM category c
    WHERE c.parent_id IS NOT NULL AND c.is_active AND 'LAPORAN' = ANY (c.accepted_kinds)
), cat_count AS (SELECT count(*) AS c FROM cat),
draws AS (
    SELECT g,
           -- Later cases are denser: t in [0, 1) with density growing by half.
           (sqrt(1 + 1.25 * ((g - 1)::float8 / CAST(:cases AS float8))) - 1)
               / (sqrt(2.25) - 1) AS t,
           random() AS r_kel, random() AS r_cat, random() AS r_point, random() AS r_hour,
           random() AS r_status, random() AS r_resolve, random() AS r_source,
           random() AS r_weekend
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
), timed AS (
    SELECT d.*,
           date_trunc('day', (now() - interval '730 days' + (d.t * interval '730 days'))
                             AT TIME ZONE 'Asia/Jakarta')
           + interval '6 hours' + d.r_hour * interval '16 hours' AS local_created
    FROM draws d
), shaped AS (
    -- Two weekend cases in three move to the Monday after: offices see fewer reports.
    SELECT t.*,
           CASE WHEN extract(isodow FROM t.local_created) >= 6 AND t.r_weekend < 0.66
                THEN t.local_created + (8 - extract(isodow FROM t.local_created)) * interval '1 day'
                ELSE t.local_created END AS local_time
    FROM timed t
), picked AS (
    SELECT s.*,
           least(s.local_time AT TIME ZONE 'Asia/Jakarta', now() - interval '1 minute')
               AS created_at,
           kel.id AS kelurahan_id, kel.code AS kelurahan_code,
           kel.kecamatan_id, kel.kecamatan_code,
           cat.id AS category_id, cat.default_dinas_id AS dinas_id, cat.service_level_days,
           1 + floor(s.r_point * CAST(:points AS int))::int AS point_number
    FROM shaped s
    CROSS JOIN kel_count CROSS JOIN cat_count
    JOIN kel ON kel.n = floor(power(s.r_kel, 1.6) * kel_count.c)
    JOIN cat ON cat.n = floor(power(s.r_cat, 1.8) * cat_count.c)
), lifecycle AS (
    SELECT p.*,
           p.created_at + p.service_level_days * interval '1.4 days' AS due_at,
           CASE
               WHEN p.created_at < now() - interval '30 days' THEN
                   CASE WHEN p.r_status < 0.55 THEN 'CLOSED'
                        WHEN p.r_status < 0.80 THEN 'RESOLVED'
                        WHEN p.r_status < 0.86 THEN 'REJECTED'
                        WHEN p.r_status < 0.89 THEN 'DUPLICATE'
                        WHEN p.r_status < 0.93 THEN 'IN_PROGRESS'
                        WHEN p.r_status < 0.96 THEN 'VERIFIED'
                        WHEN p.r_status < 0.98 THEN 'ON_HOLD'
                        WHEN p.r_status < 0.99 THEN 'REOPENED'
                        ELSE 'RECEIVED' END
               ELSE
                   CASE WHEN p.r_status < 0.20 THEN 'CLOSED'
                        WHEN p.r_status < 0.45 THEN 'RESOLVED'
                        WHEN p.r_status < 0.50 THEN 'REJECTED'
                        WHEN p.r_status < 0.52 THEN 'DUPLICATE'
                        WHEN p.r_status < 0.70 THEN 'IN_PROGRESS'
                        WHEN p.r_status < 0.82 THEN 'VERIFIED'
                        WHEN p.r_status < 0.86 THEN 'ON_HOLD'
                        WHEN p.r_status < 0.88 THEN 'REOPENED'
                        ELSE 'RECEIVED' END
           END AS status
    FROM picked p
), resolved AS (
    SELECT l.*,
           CASE WHEN l.status IN ('RESOLVED', 'CLOSED', 'REOPENED') THEN
                least(l.created_at + interval '2 hours'
                          + power(l.r_resolve, 2.2) * l.service_level_days * interval '2.6 days',
                      now() - interval '1 minute')
           END AS resolved_at
    FROM lifecycle l
), closed AS (
    -- The sweeper closes a resolution nobody disputed within 10 working days (about
    -- two weeks): older RESOLVED cases do not exist in a running system.
    SELECT r.*,
           CASE WHEN r.status = 'RESOLVED' AND r.resolved_at < now() - interval '14 days'
                THEN 'CLOSED' ELSE r.status END AS final_status
    FROM resolved r
)
INSERT INTO "case" (
    ticket, kind, source, idempotency_key, request_hash, category_id, title, description,
    location, address, anonymous, confidential, status, kelurahan_id, kecamatan_id,
    kelurahan_code, kecamatan_code, dinas_id, due_at, created_at, updated_at,
    routing_boundary_set_id, routing_reason, resolved_at, closed_at, assigned_to,
    resolution_note
)
SELECT
    'BKS-' || to_char(r.created_at AT TIME ZONE 'Asia/Jakarta', 'YYMM')
        || '-B' || lpad(r.g::text, 7, '0'),
    'LAPORAN',
    CASE WHEN r.r_source < 0.7 THEN 'POT' ELSE 'SOROT' END,
    'bench-' || r.g,
    md5(r.g::text),
    r.category_id,
    'Laporan warga nomor ' || r.g || ' di ' || r.kelurahan_code,
    'Warga melaporkan masalah di lingkungan sekitar: lokasi sudah ditandai di peta, '
        || 'mohon segera ditindaklanjuti oleh petugas dinas terkait. Nomor ' || r.g || '.',
    pt.geom,
    'Jl. Contoh No. ' || (r.g % 200 + 1),
    false,
    false,
    r.final_status,
    r.kelurahan_id,
    r.kecamatan_id,
    r.kelurahan_code,
    r.kecamatan_code,
    r.dinas_id,
    r.due_at,
    r.created_at,
    coalesce(r.resolved_at, r.created_at),
    (SELECT id FROM boundary_set WHERE is_active),
    'benchmark history: category default',
    r.resolved_at,
    CASE WHEN r.final_status = 'CLOSED' THEN least(r.resolved_at + interval '14 days', now()) END,
    CASE WHEN r.final_status NOT IN ('RECEIVED', 'REJECTED', 'DUPLICATE')
         THEN 'petugas-' || (r.g % 97) END,
    CASE WHEN r.resolved_at IS NOT NULL THEN 'Sudah ditangani.' END
FROM closed r
JOIN bench_point pt ON pt.kelurahan_id = r.kelurahan_id AND pt.n = r.point_number
"""

POINTS = """
CREATE TABLE bench_point AS
SELECT k.id AS kelurahan_id, d.path[1] AS n, d.geom
FROM kelurahan k
JOIN boundary_set b ON b.id = k.boundary_set_id AND b.is_active
CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(k.geom, CAST(:points AS int), 42)) AS d
"""


def _admin_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql", database="postgres").render_as_string(False)


async def create_database(base_url: str, database: str) -> str:
    target = make_url(base_url).set(database=database)
    conn = await asyncpg.connect(_admin_url(base_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    conn = await asyncpg.connect(target.set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        await conn.close()
    return target.render_as_string(hide_password=False)


def migrate(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


async def seed(url: str, shared_data_dir: Path) -> None:
    engine = create_async_engine(url)
    try:
        async with AsyncSession(bind=engine, expire_on_commit=False) as session:
            async with session.begin():
                for step in REFERENCE_STEPS:
                    await step(session=session)
            plan = plan_import(
                kelurahan=json.loads((shared_data_dir / "kelurahan.geojson").read_text()),
                kecamatan=None,
                options=ImportOptions(source="Kemendagri kelurahan boundaries (benchmark)"),
            )
            if not plan.ok:
                raise SystemExit(plan.summary())
            async with session.begin():
                await import_boundaries(session=session, plan=plan, activate=True)
    finally:
        await engine.dispose()


async def insert_cases(url: str, total: int) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(POINTS), {"points": POINTS_PER_KELURAHAN})
            await conn.execute(text("CREATE INDEX ON bench_point (kelurahan_id, n)"))
        started = time.monotonic()
        for first in range(1, total + 1, BATCH):
            last = min(first + BATCH - 1, total)
            async with engine.begin() as conn:
                await conn.execute(
                    text(INSERT_CASES),
                    {"first": first, "last": last, "cases": total, "points": POINTS_PER_KELURAHAN},
                )
            print(f"  {last:>9,} cases  ({time.monotonic() - started:5.0f} s)", flush=True)
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE bench_point"))
        # Index-only scans need the visibility map; autovacuum would set it in time.
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text('VACUUM (ANALYZE) "case"'))
    finally:
        await engine.dispose()


async def summary(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        """SELECT status, count(*), min(created_at), max(created_at)
                           FROM "case" GROUP BY status ORDER BY count(*) DESC"""
                    )
                )
            ).all()
            size = await conn.scalar(
                text("""SELECT pg_size_pretty(pg_total_relation_size('"case"'))""")
            )
    finally:
        await engine.dispose()
    for status, count, oldest, newest in rows:
        print(f"  {status:<12} {count:>9,}   {oldest:%Y-%m-%d} .. {newest:%Y-%m-%d}")
    print(f"  table and indexes: {size}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    base_url = os.environ.get("PATRIOT_DATABASE_URL")
    shared = os.environ.get("PATRIOT_SHARED_DATA_DIR")
    if not base_url or not shared:
        raise SystemExit(
            "PATRIOT_DATABASE_URL and PATRIOT_SHARED_DATA_DIR must be set: "
            "source scripts/lib/setup.sh first"
        )
    started = time.monotonic()
    url = await create_database(base_url, args.database)
    print(f"database {args.database} created; migrating")
    await asyncio.to_thread(migrate, url)
    print("seeding reference data and importing the official boundaries")
    await seed(url, Path(shared))
    print(f"writing {args.cases:,} cases")
    await insert_cases(url, args.cases)
    await summary(url)
    print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
