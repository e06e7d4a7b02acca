"""Patriot against PostGraphile v4 on the same database, same load, alternating runs.

    source scripts/lib/setup.sh
    npm ci --prefix bench
    python bench/run.py                      # both scenarios, 3 rounds of 8 s
    python bench/run.py --scenario locate --rounds 5 --profile

Sets up a database of its own (`patriot_bench` on the server PATRIOT_DATABASE_URL
names): migrations, seeds, the official Bekasi boundaries as the active set, and
the PostGraphile schema (bench/postgraphile/schema.sql). Then it starts one
Patriot process and one PostGraphile process, checks that both place every
benchmark point in the same kelurahan, and for each scenario runs a warm-up of
each and then PostGraphile, Patriot, PostGraphile, Patriot... with the same
autocannon driver (bench/load.js), the same points and the same concurrency.
Prints req/s and p99 per run, the medians and Patriot's ratios; writes the raw
numbers to bench/results/raw/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import harness
from harness import LoadResult, Server, log

# Goals from the issue: Patriot / PostGraphile, req/s at least this, p99 no worse.
GOALS = {"locate": 1.25, "submit": 1.0}

PATRIOT_LOCATE = (
    "query Locate($lat: Float!, $lon: Float!) { locate(lat: $lat, lon: $lon) { __typename "
    "... on Location { kelurahan { code name } kecamatan { code name } } } }"
)
POSTGRAPHILE_LOCATE = (
    "query Locate($lat: Float!, $lon: Float!) "
    "{ locate(lat: $lat, lon: $lon) { code name kecamatanCode kecamatanName } }"
)
PATRIOT_SUBMIT = (
    "mutation Submit($input: SubmitReportInput!) { submitReport(input: $input) { __typename "
    "... on Case { ticket kelurahan { code } kecamatan { code } dinas { code } dueAt } "
    "... on ValidationError { message } ... on OutsideJurisdiction { message } } }"
)
POSTGRAPHILE_SUBMIT = (
    "mutation Submit($input: CreateReportInput!) { createReport(input: $input) "
    "{ report { ticket kelurahanCode kecamatanCode dinasCode dueAt } } }"
)

# The report of tests/factories.py: a pothole, with a photo and a reporter.
REPORT = {
    "source": "POT",
    "kind": "LAPORAN",
    "categoryCode": "JALAN_RUSAK",
    "title": "Jalan berlubang di depan sekolah",
    "description": "Lubang besar, berbahaya untuk pengendara motor saat hujan.",
    "mediaUrls": ["https://media.pot.example/foto/1.jpg"],
}
REPORTER = {"name": "Siti Aminah", "phone": "0812-3456-7890", "email": "siti@example.id"}


def _template(query: str, variables: Mapping[str, object]) -> str:
    # Placeholders are JSON strings; the numeric ones lose their quotes.
    body = json.dumps({"query": query, "variables": variables}, separators=(",", ":"))
    return body.replace('"__LAT__"', "__LAT__").replace('"__LON__"', "__LON__")


def templates(scenario: str) -> dict[str, str]:
    if scenario == "locate":
        point = {"lat": "__LAT__", "lon": "__LON__"}
        return {
            "postgraphile": _template(POSTGRAPHILE_LOCATE, point),
            "patriot": _template(PATRIOT_LOCATE, point),
        }
    patriot_input = {
        **REPORT,
        "location": {"lat": "__LAT__", "lon": "__LON__"},
        "reporter": REPORTER,
        "idempotencyKey": "__KEY__",
    }
    postgraphile_report = {
        **REPORT,
        "location": {"type": "Point", "coordinates": ["__LON__", "__LAT__"]},
        "reporterName": REPORTER["name"],
        "reporterPhone": REPORTER["phone"],
        "reporterEmail": REPORTER["email"],
        "idempotencyKey": "__KEY__",
    }
    return {
        "postgraphile": _template(POSTGRAPHILE_SUBMIT, {"input": {"report": postgraphile_report}}),
        "patriot": _template(PATRIOT_SUBMIT, {"input": patriot_input}),
    }


# More foreign CPU than this during a run (cores on average) marks it noisy.
NOISE_CORES = 0.15

# A located response holds a Bekasi kelurahan code; a created one a ticket number.
EXPECT = {"locate": '"32.75.', "submit": '"BKS-'}


@dataclass(frozen=True)
class Run:
    scenario: str
    round: int  # 0 is the warm-up
    server: str
    result: LoadResult


def check_agreement(
    servers: dict[str, Server], points: list[tuple[float, float]], tpl: dict[str, str]
) -> None:
    """Every point must get the same kelurahan from both servers, and a located answer."""
    disagreements: list[str] = []
    for lat, lon in points:
        codes = {}
        for name, server in servers.items():
            body = tpl[name].replace("__LAT__", repr(lat)).replace("__LON__", repr(lon))
            data = harness.post_json(server.url, json.loads(body))
            located = (data.get("data") or {}).get("locate") or {}
            codes[name] = located.get("code") or (located.get("kelurahan") or {}).get("code")
        if None in codes.values() or len(set(codes.values())) != 1:
            disagreements.append(f"({lat}, {lon}): {codes}")
    if disagreements:
        raise SystemExit(
            f"{len(disagreements)} of {len(points)} points disagree or are not located:\n  "
            + "\n  ".join(disagreements[:10])
        )
    log(f"both servers place all {len(points)} points in the same kelurahan")


def headers(server: str, scenario: str, args: argparse.Namespace) -> dict[str, str]:
    # Reports come from a partner app with its API key; locate is public.
    # The PostGraphile baseline has no authentication at all.
    if server == "patriot" and scenario == "submit" and args.api_key:
        return {"x-api-key": args.api_key}
    return {}


def check_submit(
    servers: dict[str, Server],
    tpl: dict[str, str],
    point: tuple[float, float],
    args: argparse.Namespace,
) -> None:
    key = f"bench-check-{int(time.time() * 1000)}"
    for name, server in servers.items():
        body = (
            tpl[name]
            .replace("__LAT__", repr(point[0]))
            .replace("__LON__", repr(point[1]))
            .replace("__KEY__", f"{key}-{name}")
        )
        answer = harness.post_json(
            server.url, json.loads(body), headers=headers(name, "submit", args)
        )
        if EXPECT["submit"] not in json.dumps(answer, separators=(",", ":")):
            raise SystemExit(f"{name} did not create a report: {answer}")
        log(f"{name} submit: {json.dumps(answer['data'], ensure_ascii=False)}")


def load(
    server: Server,
    scenario: str,
    tpl: dict[str, str],
    points: list[tuple[float, float]],
    args: argparse.Namespace,
    *,
    label: str,
    duration: float,
) -> LoadResult:
    if scenario == "submit":
        harness.checkpoint(args.db_url)
    if args.quiet_wait and not harness.wait_for_quiet(timeout=args.quiet_wait):
        log(f"the machine stayed busy for {args.quiet_wait:g} s; running anyway")
    result = harness.run_load(
        server=server,
        template=tpl[server.name],
        points=points,
        key_prefix=f"bench-{args.stamp}-{label}-",
        expect=EXPECT[scenario],
        connections=args.connections,
        duration=duration,
        database=args.database,
        headers=headers(server.name, scenario, args),
    )
    flag = "" if result.clean else "  NOT CLEAN"
    if result.cpu["foreign"] > NOISE_CORES:
        flag += "  NOISY"
    cpu = result.cpu
    log(
        f"{scenario} {label} {server.name}: {result.rps:8.1f} req/s  p99 {result.p99_ms:6.1f} ms"
        f"  cpu: server {cpu['server']:.2f} postgres {cpu['postgres']:.2f} load {cpu['load']:.2f}"
        f" foreign {cpu['foreign']:.2f}, new db connections {result.new_connections}{flag}"
    )
    if not result.clean:
        log(
            f"  errors {result.errors}, non-2xx {result.non2xx}, bad bodies {result.mismatches}: "
            + " | ".join(result.bad_samples)
        )
    return result


def profile(
    server: Server,
    scenario: str,
    tpl: dict[str, str],
    points: list[tuple[float, float]],
    args: argparse.Namespace,
) -> None:
    """One extra, unmeasured run with py-spy sampling the Patriot process."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        log("--profile needs py-spy in the environment: pip install py-spy")
        return
    quiet_wait, args.quiet_wait = args.quiet_wait, 0.0
    for fmt, suffix in (("raw", "txt"), ("flamegraph", "svg")):
        out = harness.RESULTS / f"profile-{scenario}.{suffix}"
        # Wait before py-spy starts, so that it samples the load, not the wait.
        if quiet_wait:
            harness.wait_for_quiet(timeout=quiet_wait)
        recorder = subprocess.Popen(
            [str(py_spy), "record", "--pid", str(server.pid), "--duration", str(int(args.duration)),
             "--rate", "200", "--format", fmt, "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            load(
                server, scenario, tpl, points, args, label=f"profile-{fmt}", duration=args.duration
            )
        finally:
            recorder.wait(timeout=args.duration + 30)
        log(f"profile written to {out.relative_to(harness.ROOT)}")
    args.quiet_wait = quiet_wait


def median(runs: list[Run], server: str, attribute: str) -> float:
    return float(
        statistics.median(getattr(run.result, attribute) for run in runs if run.server == server)
    )


def report(runs: list[Run], args: argparse.Namespace) -> list[str]:
    lines = [
        "cpu: cores used on average by the server process, by PostgreSQL for this database,"
        " by the load generator, and by anything else on the machine (foreign);"
        " conns: PostgreSQL connections the server opened during the run",
        f"{'scenario':<8} {'round':>5}  {'server':<13} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'server':>6} {'pg':>5} {'load':>5} {'foreign':>7} {'requests':>9} {'conns':>5}  clean",
    ]
    for run in runs:
        r, cpu = run.result, run.result.cpu
        lines.append(
            f"{run.scenario:<8} {run.round or 'warm':>5}  {run.server:<13} {r.rps:>9.1f}"
            f" {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {cpu['server']:>6.2f} {cpu['postgres']:>5.2f}"
            f" {cpu['load']:>5.2f} {cpu['foreign']:>7.2f} {r.requests:>9} {r.new_connections:>5}"
            f"  {'yes' if r.clean else 'NO'}"
        )
    lines.append("")
    for scenario in dict.fromkeys(run.scenario for run in runs):
        measured = [run for run in runs if run.scenario == scenario and run.round > 0]
        if not measured:
            continue
        pg_rps, pa_rps = median(measured, "postgraphile", "rps"), median(measured, "patriot", "rps")
        pg_p99 = median(measured, "postgraphile", "p99_ms")
        pa_p99 = median(measured, "patriot", "p99_ms")
        goal = GOALS[scenario]
        ratio = pa_rps / pg_rps
        verdict = "meets" if ratio >= goal and pa_p99 <= pg_p99 else "misses"
        lines += [
            f"{scenario}: medians of {args.rounds} rounds, {args.connections} connections,"
            f" {args.duration:g} s each",
            f"  postgraphile {pg_rps:9.1f} req/s  p99 {pg_p99:6.1f} ms",
            f"  patriot      {pa_rps:9.1f} req/s  p99 {pa_p99:6.1f} ms",
            f"  ratio patriot/postgraphile: req/s {ratio:.2f} (goal >= {goal:g}),"
            f" p99 {pa_p99 / pg_p99:.2f} (goal <= 1): {verdict} the goal",
            f"  noisy runs (other work used more than {NOISE_CORES:g} cores):"
            f" {sum(run.result.cpu['foreign'] > NOISE_CORES for run in measured)}"
            f" of {len(measured)}",
        ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["locate", "submit", "all"], default="all")
    parser.add_argument("--rounds", type=int, default=3, help="0 with --profile: profile only")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--points", type=int, default=1000, help="distinct points in the load")
    parser.add_argument("--database", default="patriot_bench")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="before each run, wait up to this many seconds for the machine to be idle (0: never)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="then one py-spy-sampled Patriot run per scenario"
    )
    args = parser.parse_args()
    args.db_url = harness.database_url(args.database)
    args.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    args.code = harness.code_version()
    log(f"measuring {args.code}")
    scenarios = ["locate", "submit"] if args.scenario == "all" else [args.scenario]

    harness.prepare_bekasi_database(args.db_url)
    harness.sql(args.db_url, harness.SCHEMA_SQL.read_text())
    args.api_key = harness.partner_key(args.db_url)
    points = harness.interior_points(harness.OFFICIAL_KELURAHAN, args.points)

    runs: list[Run] = []
    postgraphile = harness.start_postgraphile(args.db_url)
    patriot = harness.start_patriot(args.db_url)
    with harness.running(postgraphile, patriot):
        servers = {"postgraphile": postgraphile, "patriot": patriot}
        log(f"postgraphile pid {postgraphile.pid} at {postgraphile.url}")
        log(f"patriot pid {patriot.pid} at {patriot.url}")
        check_agreement(servers, points, templates("locate"))
        check_submit(servers, templates("submit"), points[0], args)
        for scenario in scenarios:
            tpl = templates(scenario)
            for name, server in servers.items():
                result = load(
                    server, scenario, tpl, points, args, label=f"warmup-{name}",
                    duration=args.warmup,
                )  # fmt: skip
                runs.append(Run(scenario, 0, name, result))
            for round_ in range(1, args.rounds + 1):
                for name, server in servers.items():
                    result = load(
                        server, scenario, tpl, points, args, label=f"r{round_}-{name}",
                        duration=args.duration,
                    )  # fmt: skip
                    runs.append(Run(scenario, round_, name, result))
            if args.profile:
                profile(patriot, scenario, tpl, points, args)

    lines = report(runs, args)
    print("\n".join(lines))
    out = harness.RESULTS / f"run-{args.stamp}.json"
    out.write_text(
        json.dumps(
            {
                "started": args.stamp,
                "code": args.code,
                "connections": args.connections,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "points": args.points,
                "runs": [asdict(run) for run in runs],
                "report": lines,
            },
            indent=1,
        )
    )
    log(f"raw results in {out.relative_to(harness.ROOT)}")
    dirty = [run for run in runs if run.round > 0 and not run.result.clean]
    return 1 if dirty else 0


if __name__ == "__main__":
    raise SystemExit(main())
