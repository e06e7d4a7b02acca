"""CPU per submitReport inside one process, without an HTTP server or a load tool.

    python bench/submit_cpu.py                      # 2,000 submissions, 32 at a time
    python bench/submit_cpu.py --count 5000 --concurrency 16

Calls the application (built by `create_app` with the production settings that
`run.py` gives the server) directly as ASGI, with the request body of `run.py`'s
submit scenario, from concurrent coroutines; prints the process's CPU time per
submission and PostgreSQL's (every postgres process on the machine, so only
meaningful on a quiet one). Quicker and steadier than `run.py` for comparing
changes to the request path, which `run.py` then confirms against PostGraphile.
Uses `run.py`'s database (`--database`), prepared as `run.py` prepares it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from typing import Any

import harness
import uvloop
from asgi_lifespan import LifespanManager
from harness import log
from run import EXPECT, templates

from api.app import create_app
from core.settings import Settings


def postgres_cpu_seconds() -> float:
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if not comm.read().startswith("postgres"):
                    continue
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def post(app: Any, body: bytes, api_key: str) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-api-key", api_key.encode()),
        ],
    }
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            await asyncio.Event().wait()  # no disconnect while the request runs
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])


async def measure(args: argparse.Namespace, api_key: str) -> None:
    settings = Settings(
        database_url=args.db_url.render_as_string(hide_password=False),
        environment="production",
        jwt_secret=secrets.token_urlsafe(48),
        log_level="WARNING",
        mutation_rate_per_minute=float(
            harness.BENCH_RATE_LIMITS["PATRIOT_MUTATION_RATE_PER_MINUTE"]
        ),
        mutation_burst=int(harness.BENCH_RATE_LIMITS["PATRIOT_MUTATION_BURST"]),
    )
    template = templates("submit")["patriot"]
    points = harness.interior_points(harness.OFFICIAL_KELURAHAN, 1000)
    stamp = secrets.token_hex(4)

    def body(n: int) -> bytes:
        lat, lon = points[n % len(points)]
        return (
            template.replace("__LAT__", repr(lat))
            .replace("__LON__", repr(lon))
            .replace("__KEY__", f"cpu-{stamp}-{n}")
            .encode()
        )

    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        for n in range(args.warmup):
            await post(app, body(n), api_key)
        numbers = iter(range(args.warmup, args.warmup + args.count))

        async def client() -> None:
            for n in numbers:
                status, answer = await post(app, body(n), api_key)
                if status != 200 or EXPECT["submit"].encode() not in answer:
                    raise SystemExit(f"not created ({status}): {answer[:300]!r}")

        postgres_before, cpu_before = postgres_cpu_seconds(), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        postgres = postgres_cpu_seconds() - postgres_before
    print(
        f"{args.count} submissions, {args.concurrency} at a time: "
        f"{cpu / args.count * 1000:.2f} ms of CPU each in this process, "
        f"{postgres / args.count * 1000:.2f} ms in PostgreSQL, "
        f"{args.count / elapsed:.0f} per second"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--database", default="patriot_bench")
    args = parser.parse_args()
    args.db_url = harness.database_url(args.database)
    harness.prepare_bekasi_database(args.db_url)
    api_key = harness.partner_key(args.db_url)
    if api_key is None:
        raise SystemExit("no partner keys in this project (python -m api.keys)")
    log(f"measuring {harness.code_version()}")
    uvloop.run(measure(args, api_key))


if __name__ == "__main__":
    main()
