"""Does a lookup stay as fast with 83,000 kelurahan as with Bekasi's 56?

    source scripts/lib/setup.sh
    python bench/synthetic_boundaries.py all          # generate, import, compare
    python bench/synthetic_boundaries.py generate --count 83000
    python bench/synthetic_boundaries.py import       # into patriot_bench_java, timed
    python bench/synthetic_boundaries.py compare      # 56 vs 83,000, same lookups

generate: N synthetic kelurahan as the Voronoi cells of N random points over a
Java-sized box (lon 105 to 114.5, lat -8.8 to -5.9), so about 4 km² each, as in
Bekasi. Cell edges are densified to one vertex per --spacing-m metres (Bekasi's
official boundaries have one about every 130 m), so that a piece of a synthetic
kelurahan costs a point-in-polygon test about what a Bekasi piece costs. The
kelurahan are grouped into kecamatan by a grid of about N/12 cells (83,000 gives
6,946 kecamatan). Properties are what the importer reads by default: code, name,
kecamatan_code, kecamatan. Written to bench/results/raw/java_kelurahan.geojson.

import: creates the database (default patriot_bench_java) on the server of
PATRIOT_DATABASE_URL, migrates it and runs the project's importer
(`python -m geo FILE --commit --activate`) on the file, reporting its
wall time, its peak memory and when each stage's output appeared. A failure is
reported with the stage it happened in and the importer's last output.

compare: times Patriot's lookup in both databases (Bekasi's 56 in the
patriot_bench database that bench/run.py prepares, the synthetic set in
patriot_bench_java), three ways:
  0. the covering query geo.lookup sends first, alone over a prepared statement:
     the database's part of a lookup, the part that could grow with the set;
  1. the domain function `geo.lookup.locate` called directly, one lookup after
     another, each in its own session and transaction as the API does; this
     includes Python and SQLAlchemy overhead that does not depend on the number
     of boundaries, and the SQL that does;
  2. the in-memory boundary index each server process keeps (geo.boundary_index),
     which answers a point well inside one kelurahan without SQL: the time of
     `BoundaryIndex.covering`, its share of answered points, and the time and
     memory it takes to load;
  3. with --http (the default for `all`), the whole server: `python -m api` and
     the same autocannon load as bench/run.py's locate scenario.
The goal: the 83,000-kelurahan lookup takes no more than 2x the 56-kelurahan one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import harness
from harness import log

BBOX = (105.0, -8.8, 114.5, -5.9)  # lon min, lat min, lon max, lat max: Java and its sea
DEFAULT_FILE = harness.RESULTS / "java_kelurahan.geojson"
METRES_PER_DEGREE = 111_320.0
KELURAHAN_PER_KECAMATAN = 12
SEED = 83_000
GOAL_RATIO = 2.0


# ---------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------


def _grid(count: int) -> tuple[int, int]:
    """Columns and rows of a grid of about count/12 cells, square in degrees."""
    width, height = BBOX[2] - BBOX[0], BBOX[3] - BBOX[1]
    cells = count / KELURAHAN_PER_KECAMATAN
    columns = max(1, round((cells * width / height) ** 0.5))
    rows = max(1, round(cells / columns))
    if rows > 99 or columns > 999:
        raise SystemExit(f"{count} kelurahan need a {columns}x{rows} grid; codes allow 999x99")
    return columns, rows


def generate(count: int, spacing_m: float, seed: int, out: Path) -> None:
    import numpy as np
    import shapely
    from shapely import MultiPoint, box

    started = time.monotonic()
    rng = np.random.default_rng(seed)
    lon = rng.uniform(BBOX[0], BBOX[2], count)
    lat = rng.uniform(BBOX[1], BBOX[3], count)
    frame = box(*BBOX)
    cells = shapely.voronoi_polygons(MultiPoint(np.column_stack([lon, lat])), extend_to=frame)
    cells = shapely.intersection(np.asarray(cells.geoms), frame)
    cells = shapely.segmentize(cells, spacing_m / METRES_PER_DEGREE)
    if len(cells) != count:
        raise SystemExit(f"the tessellation has {len(cells)} cells, expected {count}")
    log(f"{count} Voronoi cells in {time.monotonic() - started:.1f} s")

    # The seed of a Voronoi cell lies inside it, and so does the centroid of the
    # (convex) cell: it decides the kecamatan.
    centroids = shapely.centroid(cells)
    columns, rows = _grid(count)
    xs, ys = shapely.get_x(centroids), shapely.get_y(centroids)
    col = np.clip(((xs - BBOX[0]) / (BBOX[2] - BBOX[0]) * columns).astype(int), 0, columns - 1)
    row = np.clip(((BBOX[3] - ys) / (BBOX[3] - BBOX[1]) * rows).astype(int), 0, rows - 1)
    # Number kelurahan west to east inside each kecamatan.
    order = np.lexsort((xs, col, row))

    out.parent.mkdir(parents=True, exist_ok=True)
    per_kecamatan: dict[str, int] = {}
    vertices = 0
    with out.open("w", encoding="utf-8") as stream:
        stream.write('{"type":"FeatureCollection","name":"synthetic_java_kelurahan","features":[\n')
        for written, index in enumerate(order.tolist()):
            kecamatan = f"JV.{row[index]:02d}{col[index]:03d}"
            number = per_kecamatan[kecamatan] = per_kecamatan.get(kecamatan, 0) + 1
            code = f"{kecamatan}.{number:04d}"
            ring = [
                [round(x, 6), round(y, 6)]
                for x, y in shapely.get_coordinates(cells[index].exterior).tolist()
            ]
            vertices += len(ring) - 1
            feature = {
                "type": "Feature",
                "properties": {
                    "code": code,
                    "name": f"Desa Sintetis {code}",
                    "kecamatan_code": kecamatan,
                    "kecamatan": f"Kecamatan Sintetis {kecamatan}",
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
            stream.write(("," if written else "") + json.dumps(feature, separators=(",", ":")))
            stream.write("\n")
        stream.write("]}\n")
    size_mb = out.stat().st_size / 1e6
    log(
        f"wrote {count} kelurahan in {len(per_kecamatan)} kecamatan ({columns}x{rows} grid),"
        f" {vertices:,} vertices ({vertices / count:.0f} per kelurahan), {size_mb:.0f} MB,"
        f" to {out.relative_to(harness.ROOT)} in {time.monotonic() - started:.1f} s"
    )


# ---------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------


def import_file(path: Path, database: str, timeout: float, statement_timeout_ms: int | None) -> int:
    db = harness.database_url(database)
    harness.ensure_database(db)
    harness.migrate(db)
    args = [
        sys.executable, "-m", "geo", str(path), "--commit", "--activate",
        "--source", f"synthetic Java Voronoi tessellation ({path.name}), bench only",
        "--note", "synthetic boundaries for benchmarks; not real places", "--approximate",
    ]  # fmt: skip
    extra = {"PYTHONUNBUFFERED": "1"}
    if statement_timeout_ms is not None:
        extra["PATRIOT_DATABASE_STATEMENT_TIMEOUT_MS"] = str(statement_timeout_ms)
    log(
        f"importing {path.relative_to(harness.ROOT)} into {database} (statement timeout "
        + (f"{statement_timeout_ms / 1000:g} s)" if statement_timeout_ms else "as configured)")
    )
    started = time.monotonic()
    process = subprocess.Popen(
        args,
        cwd=harness.ROOT,
        env=harness.project_env(db, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    output: list[tuple[float, str]] = []
    # Reading blocks, so a timer enforces the timeout.
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        for line in process.stdout:
            output.append((time.monotonic() - started, line.rstrip()))
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    elapsed = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    process.returncode = code
    peak_mb = usage.ru_maxrss * 1024 / 1e6
    for at, line in output:
        print(f"  [{at:7.1f} s] {line}")
    print(
        f"importer: exit code {code}, {elapsed:.1f} s wall, {usage.ru_utime:.1f} s user CPU,"
        f" peak RSS {peak_mb:,.0f} MB"
    )
    if output:
        # The plan's summary is printed at once when planning ends; "committed"
        # follows the database write.
        planned = output[0][0]
        committed = [at for at, line in output if line.startswith("committed")]
        print(f"  reading, checking, repairing and measuring quality: {planned:.1f} s")
        if committed:
            print(f"  writing to PostgreSQL and committing: {committed[0] - planned:.1f} s")
    if code != 0:
        print("importer FAILED; last output:")
        for _, line in output[-15:]:
            print(f"  {line}")
    else:
        counts = harness.fetch(
            db,
            "SELECT s.kelurahan_count, s.kecamatan_count,"
            " (SELECT count(*) FROM kelurahan_piece p WHERE p.boundary_set_id = s.id) AS pieces"
            " FROM boundary_set s WHERE s.is_active",
        )[0]
        print(
            f"  active set: {counts['kelurahan_count']} kelurahan, {counts['kecamatan_count']}"
            f" kecamatan, {counts['pieces']} lookup pieces"
        )
    return code


# ---------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------


def java_points(count: int, seed: int = SEED + 1) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    # Away from the frame's edge, where cells were clipped.
    return [
        (round(rng.uniform(BBOX[1] + 0.05, BBOX[3] - 0.05), 6),
         round(rng.uniform(BBOX[0] + 0.05, BBOX[2] - 0.05), 6))
        for _ in range(count)
    ]  # fmt: skip


async def _time_domain(database: str, points: list[tuple[float, float]]) -> list[float]:
    from core.database import create_engine, create_session_factory
    from core.settings import Settings
    from geo.lookup import Located, locate

    url = harness.database_url(database).render_as_string(hide_password=False)
    settings = Settings(database_url=url)
    engine = create_engine(settings)
    sessions = create_session_factory(engine)
    timings: list[float] = []
    try:
        for lat, lon in points:
            started = time.perf_counter()
            async with sessions() as session, session.begin():
                result = await locate(session=session, lat=lat, lon=lon, snap_tolerance_m=50.0)
            timings.append((time.perf_counter() - started) * 1000)
            if not isinstance(result, Located):
                raise SystemExit(f"({lat}, {lon}) not located in {database}: {result}")
    finally:
        await engine.dispose()
    return timings


# The covering query geo.lookup.locate_point sends first (as PostgreSQL logs it),
# written out so the database's part can be timed without Python around it.
COVERING_SQL = """
SELECT DISTINCT kelurahan.id, kelurahan.code, kelurahan.kecamatan_id
FROM kelurahan JOIN kelurahan_piece ON kelurahan_piece.kelurahan_id = kelurahan.id
WHERE kelurahan_piece.boundary_set_id = $1
  AND ST_Covers(kelurahan_piece.geom, ST_SetSRID(ST_MakePoint($2, $3), 4326))
"""


async def _time_sql(database: str, points: list[tuple[float, float]]) -> list[float]:
    import asyncpg

    conn = await asyncpg.connect(harness.libpq_url(harness.database_url(database)))
    try:
        set_id = await conn.fetchval("SELECT id FROM boundary_set WHERE is_active")
        statement = await conn.prepare(COVERING_SQL)
        timings: list[float] = []
        for lat, lon in points:
            started = time.perf_counter()
            rows = await statement.fetch(set_id, lon, lat)
            timings.append((time.perf_counter() - started) * 1000)
            if not rows:
                raise SystemExit(f"({lat}, {lon}) is covered by nothing in {database}")
    finally:
        await conn.close()
    return timings


def compare_sql(sets: dict[str, tuple[str, list[tuple[float, float]]]], lookups: int) -> None:
    per_block = max(1, lookups // 4)
    timings: dict[str, list[float]] = {label: [] for label in sets}
    # One untimed pass over every point first: the measured passes then find the
    # pages they need in memory, as a long-running server would.
    for database, points in sets.values():
        asyncio.run(_time_sql(database, points))
    for block in range(4):
        for label, (database, points) in sets.items():
            chosen = [points[(block * per_block + i) % len(points)] for i in range(per_block)]
            timings[label] += asyncio.run(_time_sql(database, chosen))
    print(
        f"the covering query alone (prepared, asyncpg, loopback round trip included),"
        f" {4 * per_block} lookups per set:"
    )
    results = {label: _stats(values) for label, values in timings.items()}
    for label, stats in results.items():
        print(
            f"  {label:<24} median {stats['median']:6.3f} ms  p90 {stats['p90']:6.3f} ms"
            f"  p99 {stats['p99']:6.3f} ms  mean {stats['mean']:6.3f} ms"
        )
    _ratio(results, "median")


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p90": ordered[int(0.90 * (len(ordered) - 1))],
        "p99": ordered[int(0.99 * (len(ordered) - 1))],
        "mean": statistics.fmean(ordered),
    }


def compare_domain(sets: dict[str, tuple[str, list[tuple[float, float]]]], lookups: int) -> None:
    per_block = max(1, lookups // 4)
    timings: dict[str, list[float]] = {label: [] for label in sets}
    for database, points in sets.values():
        asyncio.run(_time_domain(database, points))  # untimed pass, as above
    # Blocks alternate between the sets, so drift on the machine hits both alike.
    for block in range(4):
        for label, (database, points) in sets.items():
            chosen = [points[(block * per_block + i) % len(points)] for i in range(per_block)]
            timings[label] += asyncio.run(_time_domain(database, chosen))
    print(f"geo.lookup.locate called directly, one at a time, {4 * per_block} lookups per set:")
    results = {label: _stats(values) for label, values in timings.items()}
    for label, stats in results.items():
        print(
            f"  {label:<24} median {stats['median']:6.2f} ms  p90 {stats['p90']:6.2f} ms"
            f"  p99 {stats['p99']:6.2f} ms  mean {stats['mean']:6.2f} ms"
        )
    _ratio(results, "median")


async def _load_index(database: str) -> tuple[object, float, float]:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from geo.boundary_index import load_boundary_index
    from geo.store import active_boundary_set_id

    engine = create_async_engine(harness.database_url(database).render_as_string(False))
    before_kib = harness.rss_kib(os.getpid())["VmRSS"]
    started = time.perf_counter()
    try:
        async with AsyncSession(engine) as session:
            set_id = await active_boundary_set_id(session=session)
            assert set_id is not None, f"{database} has no active boundary set"
            index = await load_boundary_index(session=session, boundary_set_id=set_id)
    finally:
        await engine.dispose()
    seconds = time.perf_counter() - started
    return index, seconds, (harness.rss_kib(os.getpid())["VmRSS"] - before_kib) / 1024


def compare_index(sets: dict[str, tuple[str, list[tuple[float, float]]]], lookups: int) -> None:
    from geo.coordinates import LatLon

    indexes = {}
    print("the in-memory boundary index (geo.boundary_index), loaded from each database:")
    for label, (database, _points) in sets.items():
        index, seconds, mib = asyncio.run(_load_index(database))
        indexes[label] = index
        print(f"  {label:<24} {len(index):,} pieces, loaded in {seconds:.1f} s, +{mib:.0f} MiB RSS")
    per_block = max(1, lookups // 4)
    timings: dict[str, list[float]] = {label: [] for label in sets}
    answered = {label: 0 for label in sets}
    for label, (_database, points) in sets.items():  # untimed pass, as above
        for lat, lon in points:
            indexes[label].covering(LatLon(lat, lon))  # type: ignore[attr-defined]
    for block in range(4):
        for label, (_database, points) in sets.items():
            covering = indexes[label].covering  # type: ignore[attr-defined]
            for i in range(per_block):
                lat, lon = points[(block * per_block + i) % len(points)]
                started = time.perf_counter()
                found = covering(LatLon(lat, lon))
                timings[label].append((time.perf_counter() - started) * 1000)
                answered[label] += found is not None
    print(f"  BoundaryIndex.covering, {4 * per_block} lookups per set:")
    results = {label: _stats(values) for label, values in timings.items()}
    for label, stats in results.items():
        print(
            f"  {label:<24} median {stats['median']:6.3f} ms  p90 {stats['p90']:6.3f} ms"
            f"  p99 {stats['p99']:6.3f} ms  answered without SQL:"
            f" {answered[label] / (4 * per_block):.1%}"
        )
    _ratio(results, "median")


def compare_http(
    sets: dict[str, tuple[str, list[tuple[float, float]]]],
    expects: dict[str, str],
    args: argparse.Namespace,
) -> None:
    from run import PATRIOT_LOCATE, _template

    template = _template(PATRIOT_LOCATE, {"lat": "__LAT__", "lon": "__LON__"})
    servers = {
        label: harness.start_patriot(harness.database_url(database), name=f"patriot-{database}")
        for label, (database, _points) in sets.items()
    }
    runs: dict[str, list[harness.LoadResult]] = {label: [] for label in sets}

    def load(label: str, duration: float) -> harness.LoadResult:
        database, points = sets[label]
        return harness.run_load(
            server=servers[label], template=template, points=points[:1000],
            key_prefix="unused-", expect=expects[label], connections=args.connections,
            duration=duration, database=database,
        )  # fmt: skip

    # Both servers up at once, runs alternating, as in bench/run.py.
    with harness.running(*servers.values()):
        for label in sets:
            load(label, args.warmup)
        for _ in range(args.rounds):
            for label in sets:
                runs[label].append(load(label, args.duration))
    results: dict[str, dict[str, float]] = {}
    for label, measured in runs.items():
        if not all(run.clean for run in measured):
            raise SystemExit(f"{label}: some lookups failed: {measured}")
        results[label] = {
            "req/s": statistics.median(run.rps for run in measured),
            "p50": statistics.median(run.p50_ms for run in measured),
            "p99": statistics.median(run.p99_ms for run in measured),
            "foreign": statistics.median(run.cpu["foreign"] for run in measured),
        }
    print(
        f"whole server over HTTP, autocannon {args.connections} connections,"
        f" median of {args.rounds} alternating runs of {args.duration:g} s:"
    )
    for label, stats in results.items():
        print(
            f"  {label:<24} {stats['req/s']:8.1f} req/s  p50 {stats['p50']:6.1f} ms"
            f"  p99 {stats['p99']:6.1f} ms  (other work on the machine:"
            f" {stats['foreign']:.2f} cores)"
        )
    _ratio(results, "p50")


def _ratio(results: dict[str, dict[str, float]], key: str) -> None:
    small, large = (results[label][key] for label in results)
    ratio = large / small
    verdict = "meets" if ratio <= GOAL_RATIO else "misses"
    print(f"  {key} ratio 83k / 56: {ratio:.2f} (goal <= {GOAL_RATIO:g}): {verdict} the goal")


def compare(args: argparse.Namespace) -> None:
    bekasi = harness.database_url(args.bekasi_database)
    # Lookups need only the boundary tables: an already prepared database is used
    # as it is, even while a newer migration is being written.
    if not harness.has_official_boundaries(bekasi):
        harness.prepare_bekasi_database(bekasi)
    count = harness.fetch(
        harness.database_url(args.database),
        "SELECT kelurahan_count FROM boundary_set WHERE is_active",
    )
    if not count:
        raise SystemExit(f"{args.database} has no active boundary set: run the import first")
    java_label = f"{count[0]['kelurahan_count']:,} synthetic"
    sets = {
        "56 Bekasi (official)": (
            args.bekasi_database,
            harness.interior_points(harness.OFFICIAL_KELURAHAN, args.lookups),
        ),
        java_label: (args.database, java_points(args.lookups)),
    }
    compare_sql(sets, args.lookups)
    compare_domain(sets, args.lookups)
    compare_index(sets, args.lookups)
    if args.http:
        compare_http(sets, {"56 Bekasi (official)": '"32.75.', java_label: '"JV.'}, args)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["generate", "import", "compare", "all"])
    parser.add_argument("--count", type=int, default=83_000)
    parser.add_argument("--spacing-m", type=float, default=130.0)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--database", default="patriot_bench_java")
    parser.add_argument("--bekasi-database", default="patriot_bench")
    parser.add_argument("--import-timeout", type=float, default=3 * 3600, help="seconds")
    parser.add_argument(
        "--statement-timeout-ms",
        type=int,
        default=None,
        help="PATRIOT_DATABASE_STATEMENT_TIMEOUT_MS for the importer (default: as configured;"
        " writing a boundary set lifts it for its own transaction)",
    )
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--http", action="store_true", help="also compare over HTTP")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    args.file = args.file.resolve()

    if args.command in ("generate", "all"):
        generate(args.count, args.spacing_m, args.seed, args.file)
    if args.command in ("import", "all") and import_file(
        args.file, args.database, args.import_timeout, args.statement_timeout_ms
    ):
        return 1
    if args.command in ("compare", "all"):
        if args.command == "all":
            args.http = True
        compare(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
