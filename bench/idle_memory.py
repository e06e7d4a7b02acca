"""Resident memory of one idle Patriot server process.

    source scripts/lib/setup.sh
    python bench/idle_memory.py              # against the bench database
    python bench/idle_memory.py --after 2000 # also after serving 2,000 locate requests

Starts `python -m api` (production settings, one process) against the
`patriot_bench` database that bench/run.py prepares (it prepares it too), waits
until it answers, lets it settle, and reads VmRSS from /proc/<pid>/status: once
right after start-up, and, with --after N, again once it has served N locate
and N/10 submitReport requests and settled. The goal is under 150 MB.
"""

from __future__ import annotations

import argparse
import json
import time

import harness
from harness import log

LIMIT_MB = 150  # the goal is in MB (10^6 bytes); /proc reports KiB

LOCATE = (
    "query Locate($lat: Float!, $lon: Float!) { locate(lat: $lat, lon: $lon) { __typename "
    "... on Location { kelurahan { code name } kecamatan { code name } } } }"
)


def settle(pid: int, seconds: float) -> dict[str, int]:
    """RSS once the process has used no CPU for `seconds` (idle, not mid-request)."""
    deadline = time.monotonic() + 60
    while True:
        before = harness.cpu_seconds(pid)
        time.sleep(seconds)
        if harness.cpu_seconds(pid) - before < 0.01 or time.monotonic() > deadline:
            return harness.rss_kib(pid)


def describe(label: str, rss: dict[str, int]) -> str:
    mib = {key: value / 1024 for key, value in rss.items()}
    mb = rss["VmRSS"] * 1024 / 1e6
    verdict = "under" if mb < LIMIT_MB else "OVER"
    return (
        f"{label}: RSS {mb:.1f} MB = {mib['VmRSS']:.1f} MiB ({verdict} {LIMIT_MB} MB)"
        f" = anonymous {mib.get('RssAnon', 0):.1f} + files {mib.get('RssFile', 0):.1f}"
        f" + shared {mib.get('RssShmem', 0):.1f}; peak {mib.get('VmHWM', 0):.1f} MiB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="patriot_bench")
    parser.add_argument(
        "--after", type=int, default=0, help="locate requests before measuring again"
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds without CPU use = idle")
    args = parser.parse_args()
    db = harness.database_url(args.database)
    harness.prepare_bekasi_database(db)
    points = harness.interior_points(harness.OFFICIAL_KELURAHAN, 1000)

    server = harness.start_patriot(db, name="patriot-idle")
    with harness.running(server):
        lines = [describe("idle after start-up", settle(server.pid, args.settle))]
        if args.after:
            for n in range(args.after):
                lat, lon = points[n % len(points)]
                harness.post_json(
                    server.url, {"query": LOCATE, "variables": {"lat": lat, "lon": lon}}
                )
            _submit_some(server, points, args.after // 10, harness.partner_key(db))
            lines.append(
                describe(
                    f"idle after {args.after} locate + {args.after // 10} submitReport requests",
                    settle(server.pid, args.settle),
                )
            )
    for line in lines:
        print(line)
    log(f"server log: {server.log_path.relative_to(harness.ROOT)}")
    return 0


def _submit_some(
    server: harness.Server, points: list[tuple[float, float]], count: int, api_key: str | None
) -> None:
    from run import PATRIOT_SUBMIT, REPORT, REPORTER

    stamp = int(time.time() * 1000)
    for n in range(count):
        lat, lon = points[n % len(points)]
        report = {
            **REPORT,
            "location": {"lat": lat, "lon": lon},
            "reporter": REPORTER,
            "idempotencyKey": f"bench-idle-{stamp}-{n}",
        }
        answer = harness.post_json(
            server.url,
            {"query": PATRIOT_SUBMIT, "variables": {"input": report}},
            headers={"x-api-key": api_key} if api_key else None,
        )
        if "BKS-" not in json.dumps(answer):
            raise SystemExit(f"submitReport failed: {answer}")


if __name__ == "__main__":
    raise SystemExit(main())
