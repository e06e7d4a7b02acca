"""Live fan-out: N websocket subscribers of `caseEvents` on one server process.

For each N it starts a fresh server, opens N sockets (spread over client
processes of --sockets-per-client each), each subscribed to `caseEvents`,
submits reports through the HTTP API at a steady rate, and measures for every
event and subscriber the time from the mutation's response (the commit) to
receipt, the events lost or repeated, the slowest delivery of each report, and
the server's memory before and after the subscribers joined.

    source scripts/lib/setup.sh
    python bench/fanout/run.py                       # N = 1,000, 5,000, 10,000
    python bench/fanout/run.py --subscribers 2000 --reports 10 --variant distinct
    python bench/fanout/run.py --subscribers 10000 --variant same --profile DIR

It uses its own database (`patriot_bench_fanout` on the server
PATRIOT_DATABASE_URL points at), created, migrated and seeded on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import shapely
from shapely.geometry import shape
from sqlalchemy.engine import URL, make_url
from websockets.asyncio.client import connect

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SUBSCRIBERS = HERE / "subscribers.py"
RAW = HERE.parent / "results" / "raw"
DATABASE = "patriot_bench_fanout"
SHARED_DATA = Path(
    os.environ.get("PATRIOT_SHARED_DATA_DIR") or ROOT.parent / "shared" / "data" / "bekasi"
)

# What a POC screen shows of each event (README, "Following cases").
DOCUMENT = """
subscription Events($filter: CaseEventFilterInput) {
  caseEvents(filter: $filter) {
    cursor
    event { type actor at }
    case {
      ticket status statusLabel
      kelurahan { name } kecamatan { code } dinas { shortName }
    }
  }
}
"""

SUBMIT = """
mutation Submit($input: SubmitReportInput!) {
  submitReport(input: $input) {
    __typename
    ... on Case { ticket kecamatan { code } history { type } }
    ... on ValidationError { message }
    ... on OutsideJurisdiction { message }
  }
}
"""

# Four kecamatan, one per filter of the `distinct` variant; `same` follows all four.
KECAMATAN = ("32.75.01", "32.75.03", "32.75.08", "32.75.09")

# A server process holds one descriptor per socket; the default soft limit
# (often 1,024) would refuse connections long before 10,000.
SERVER_OPEN_FILES = 20_000


def log(message: str) -> None:
    print(f"[fanout] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------


def bench_url() -> URL:
    raw = os.environ.get("PATRIOT_DATABASE_URL")
    if not raw:
        sys.exit("PATRIOT_DATABASE_URL is not set: run `source scripts/lib/setup.sh` first")
    return make_url(raw).set(database=DATABASE)


def libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def project_env(url: URL, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATRIOT_DATABASE_URL": url.render_as_string(hide_password=False),
        "PATRIOT_ENVIRONMENT": "test",
        **extra,
    }


def project_command(url: URL, *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=project_env(url),
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        sys.exit(f"python {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed.stdout


async def _ensure_database(url: URL) -> None:
    admin = await asyncpg.connect(libpq(url.set(database="postgres")))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database):
            await admin.execute(f'CREATE DATABASE "{url.database}"')  # our own constant name
            log(f"created database {url.database}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(libpq(url))
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        await conn.close()


async def _active_boundary_source(url: URL) -> str | None:
    conn = await asyncpg.connect(libpq(url))
    try:
        return await conn.fetchval("SELECT source FROM boundary_set WHERE is_active")  # type: ignore[no-any-return]
    finally:
        await conn.close()


def prepare_database(url: URL) -> None:
    """Migrated, seeded, with the official kelurahan boundaries active."""
    asyncio.run(_ensure_database(url))
    project_command(url, "-m", "alembic", "upgrade", "head")
    project_command(url, "-m", "seeds")
    official = SHARED_DATA / "kelurahan.geojson"
    if asyncio.run(_active_boundary_source(url)) != official.name:
        log("importing the official kelurahan boundaries")
        project_command(
            url, "-m", "geo", str(official), "--source", official.name,
            "--commit", "--activate",
        )  # fmt: skip


def partner_key(url: URL) -> str:
    out = project_command(url, "-m", "api.keys", "create", "--partner", "POT", "--name", "bench")
    keys = [word for word in out.split() if word.startswith("ptk_")]
    if len(keys) != 1:
        sys.exit(f"python -m api.keys printed no key: {out}")
    return keys[0]


def staff_token(url: URL) -> str:
    out = project_command(url, "-m", "api.tokens", "--role", "POC_OPERATOR", "--sub", "bench")
    return f"Bearer {out.strip()}"


def report_points() -> dict[str, list[dict[str, float]]]:
    """A point inside each kelurahan of the bench's kecamatan, by kecamatan."""
    features = json.loads((SHARED_DATA / "kelurahan.geojson").read_text())["features"]
    points: dict[str, list[dict[str, float]]] = {code: [] for code in KECAMATAN}
    for feature in features:
        code = feature["properties"]["kecamatan_code"]
        if code in points:
            inside = shapely.Point(shape(feature["geometry"]).representative_point())
            points[code].append({"lat": round(inside.y, 6), "lon": round(inside.x, 6)})
    return points


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------


def _raise_open_files() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = SERVER_OPEN_FILES if hard == resource.RLIM_INFINITY else min(SERVER_OPEN_FILES, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: URL, workdir: Path) -> Server:
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    env = project_env(
        url,
        PATRIOT_PORT=str(port),
        PATRIOT_SWEEPER_ENABLED="false",
        PATRIOT_LOG_LEVEL="WARNING",
        # One partner submits every report; the per-caller limit would throttle it.
        PATRIOT_MUTATION_RATE_PER_MINUTE="1000000",
        PATRIOT_MUTATION_BURST="100000",
        # Every subscriber signs in with the same token; the per-caller socket cap
        # (20 by default) would refuse all but the first few.
        PATRIOT_WEBSOCKETS_PER_PRINCIPAL="1000000",
        PATRIOT_MAX_CONNECTIONS="1000000",
    )
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "api"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_raise_open_files,
            start_new_session=True,  # stopping it signals its group, never us
        )
    server = Server(process=process, port=port, log_path=log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        time.sleep(0.2)
    stop_process(process)
    sys.exit(f"the server did not start:\n{log_path.read_text()[-3000:]}")


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """Stops a process started in its own session, and whatever it started."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def machine_busy_s() -> float:
    """CPU time the whole machine has spent busy (all CPUs) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_busy: float, max_wait_s: float) -> float:
    """Waits until the machine is mostly idle (other benchmarks, builds); returns
    the share of the CPUs that was busy in the last 5 s."""
    deadline = time.monotonic() + max_wait_s
    cpus = os.cpu_count() or 1
    while True:
        before = machine_busy_s()
        time.sleep(5)
        busy = (machine_busy_s() - before) / 5 / cpus
        if busy <= max_busy or time.monotonic() > deadline:
            return busy
        log(f"the machine is {busy:.0%} busy with other work; waiting")


def start_profile(
    server: Server, directory: Path, label: str, *, native: bool
) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the server until stop_profile: the reports and their fan-out.

    --native also shows C frames (the write system call, the garbage collector)
    but stops the server for every sample, which slows it down noticeably.
    """
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        log("--profile needs py-spy in the environment: pip install py-spy")
        return None
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / f"profile-fanout-{label}.txt"
    log(f"profiling the server into {output}")
    return subprocess.Popen(
        [str(py_spy), "record", "--pid", str(server.process.pid), "--rate", "100",
         "--format", "raw", "--output", str(output), "--native" if native else "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_profile(recorder: subprocess.Popen[bytes]) -> None:
    recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    try:
        recorder.wait(timeout=60)
    except subprocess.TimeoutExpired:
        recorder.kill()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


class Clients:
    """The subscriber processes, spoken to one JSON line at a time."""

    def __init__(self, processes: list[subprocess.Popen[bytes]]) -> None:
        self.processes = processes

    def ask(self, command: dict[str, Any] | None, timeout_s: float) -> list[dict[str, Any]]:
        for process in self.processes:
            if command is not None:
                assert process.stdin is not None
                process.stdin.write(orjson.dumps(command) + b"\n")
                process.stdin.flush()
        answers = []
        for process in self.processes:
            answers.append(self._read(process, timeout_s))
        return answers

    @staticmethod
    def _read(process: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
        import selectors

        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                raise TimeoutError(f"subscriber process {process.pid} did not answer")
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"subscriber process {process.pid} exited ({process.poll()})")
        answer: dict[str, Any] = orjson.loads(line)
        return answer

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None and process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.write(b'{"cmd": "exit"}\n')
                    process.stdin.flush()
        deadline = time.monotonic() + 15
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            stop_process(process)


def start_clients(
    server: Server, count: int, processes: int, config: Path, compression: str, workdir: Path
) -> Clients:
    started = []
    share, extra = divmod(count, processes)
    first = 0
    for index in range(processes):
        n = share + (1 if index < extra else 0)
        with (workdir / f"subscribers-{index}.log").open("wb") as errors:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(SUBSCRIBERS),
                    "--url",
                    server.ws,
                    "--count",
                    str(n),
                    "--first",
                    str(first),
                    "--config",
                    str(config),
                    "--compression",
                    compression,
                ],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                start_new_session=True,
            )
        started.append(process)
        first += n
    return Clients(started)


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------


@dataclass
class Submitted:
    ticket: str
    kecamatan: str
    events: list[str]
    committed_at: float  # time.monotonic() when the response arrived


class Reporter:
    def __init__(self, server: Server, key: str, points: dict[str, list[dict[str, float]]]) -> None:
        self.server = server
        self.key = key
        self.points = points
        self.count = 0

    async def submit(self, client: httpx.AsyncClient, kecamatan: str) -> Submitted:
        self.count += 1
        locations = self.points[kecamatan]
        variables = {
            "input": {
                "source": "POT",
                "kind": "LAPORAN",
                "categoryCode": "JALAN_RUSAK",
                "title": f"Jalan berlubang {self.count}",
                "description": "Lubang besar, berbahaya untuk pengendara motor saat hujan.",
                "location": locations[self.count % len(locations)],
                "idempotencyKey": f"fanout-{time.time_ns()}-{self.count}",
            }
        }
        response = await client.post(
            self.server.http,
            json={"query": SUBMIT, "variables": variables},
            headers={"x-api-key": self.key},
        )
        committed_at = time.monotonic()
        result = response.json()["data"]["submitReport"]
        if result["__typename"] != "Case":
            raise RuntimeError(f"report refused: {result}")
        return Submitted(
            ticket=result["ticket"],
            kecamatan=result["kecamatan"]["code"],
            events=[e["type"] for e in result["history"]],
            committed_at=committed_at,
        )

    async def steady(self, count: int, rate: float, kecamatan: list[str]) -> list[Submitted]:
        async with httpx.AsyncClient(timeout=30) as client:
            start = time.monotonic()
            tasks = []
            for i in range(count):
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
                tasks.append(
                    asyncio.create_task(self.submit(client, kecamatan[i % len(kecamatan)]))
                )
            return list(await asyncio.gather(*tasks))


def tickets_by_filter(submitted: list[Submitted], filters: list[list[str]]) -> dict[str, Any]:
    """For each filter index: ticket -> the event types its subscribers must receive."""
    return {
        str(i): {s.ticket: s.events for s in submitted if s.kecamatan in codes}
        for i, codes in enumerate(filters)
    }


async def warm_up(server: Server, reporter: Reporter, token: str) -> None:
    """One socket and one report, so that nothing lazily built counts as per-subscriber."""
    async with connect(server.ws, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            orjson.dumps({"type": "connection_init", "payload": {"authorization": token}}).decode()
        )
        await ws.recv()
        message = {"id": "w", "type": "subscribe", "payload": {"query": DOCUMENT, "variables": {}}}
        await ws.send(orjson.dumps(message).decode())
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(timeout=30) as client:
            await reporter.submit(client, KECAMATAN[0])
        for _ in range(2):
            await asyncio.wait_for(ws.recv(), 30)


# ---------------------------------------------------------------------------
# One measurement
# ---------------------------------------------------------------------------


@dataclass
class Result:
    variant: str
    subscribers: int
    connected: int
    reports: int
    deliveries: int
    expected: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    repeated: int
    out_of_order: int
    rss_before_kib: int
    rss_after_kib: int
    server_user_s: float
    server_system_s: float
    clients_cpu_s: float
    machine_busy_s: float  # every process, ours included, during the measurement
    busy_before: float  # share of the CPUs busy just before the subscribers joined
    errors: list[str]

    @property
    def kib_per_subscriber(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / max(1, self.connected)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(fraction * len(values)))]


def measure(
    *,
    url: URL,
    variant: str,
    count: int,
    args: argparse.Namespace,
    key: str,
    token: str,
    points: dict[str, list[dict[str, float]]],
    workdir: Path,
) -> Result:
    filters = [list(KECAMATAN)] if variant == "same" else [[code] for code in KECAMATAN]
    config = workdir / f"config-{variant}-{count}.json"
    config.write_bytes(
        orjson.dumps(
            {
                "token": token,
                "document": DOCUMENT,
                "filters": [{"filter": {"kecamatanCodes": codes}} for codes in filters],
            }
        )
    )
    server = start_server(url, workdir)
    clients: Clients | None = None
    try:
        reporter = Reporter(server, key, points)
        asyncio.run(warm_up(server, reporter, token))
        time.sleep(1.0)
        rss_before = rss_kib(server.process.pid)
        idle_busy = wait_for_quiet(args.max_busy, args.max_wait)

        log(f"{variant}: opening {count:,} sockets")
        processes = max(1, -(-count // args.sockets_per_client))
        clients = start_clients(server, count, processes, config, args.compression, workdir)
        opened = clients.ask(None, timeout_s=max(120, count / 20))
        connected = sum(a["connected"] for a in opened)
        failures = [f for a in opened for f in a["failures"]]
        seconds = max(a["seconds"] for a in opened)
        log(
            f"{variant}: {connected:,} sockets open in {seconds:.0f} s"
            f" ({failures[:1] or 'no failures'})"
        )

        # Every socket receives a first event of its filter before anything is
        # measured: then each subscription is certainly registered.
        warm = asyncio.run(reporter.steady(len(KECAMATAN), 10.0, list(KECAMATAN)))
        incomplete = clients.ask(
            {"cmd": "wait", "tickets": tickets_by_filter(warm, filters), "timeout_s": 120},
            timeout_s=180,
        )
        log(
            f"{variant}: subscriptions live ({sum(a['incomplete'] for a in incomplete)} incomplete)"
        )
        time.sleep(1.0)
        rss_after = rss_kib(server.process.pid)

        label = f"{variant}-{count}"
        recorder = (
            start_profile(server, args.profile, label, native=args.profile_native)
            if args.profile
            else None
        )
        cpu_before = cpu_seconds(server.process.pid)
        machine_before = machine_busy_s()
        clients_before = sum(sum(cpu_seconds(p.pid)) for p in clients.processes)
        log(f"{variant}: {args.reports} reports at {args.rate}/s")
        submitted = asyncio.run(reporter.steady(args.reports, args.rate, list(KECAMATAN)))
        expected_map = tickets_by_filter(submitted, filters)
        outputs = [workdir / f"latencies-{variant}-{count}-{i}.bin" for i in range(processes)]
        commands = [
            {
                "cmd": "collect",
                "tickets": expected_map,
                "commit_times": {s.ticket: s.committed_at for s in submitted},
                "timeout_s": args.drain_timeout,
                "output": str(output),
            }
            for output in outputs
        ]
        summaries = []
        for process, command in zip(clients.processes, commands, strict=True):
            assert process.stdin is not None
            process.stdin.write(orjson.dumps(command) + b"\n")
            process.stdin.flush()
        for process in clients.processes:
            summaries.append(Clients._read(process, args.drain_timeout + 120))
        cpu_after = cpu_seconds(server.process.pid)
        machine_busy = machine_busy_s() - machine_before
        if recorder is not None:
            stop_profile(recorder)
        clients_cpu = sum(sum(cpu_seconds(p.pid)) for p in clients.processes) - clients_before

        slowest: dict[str, float] = {}
        for summary in summaries:
            for ticket, latency in summary.get("slowest", {}).items():
                slowest[ticket] = max(latency, slowest.get(ticket, 0.0))
        in_order = [slowest[s.ticket] for s in submitted if s.ticket in slowest]
        log(
            "slowest delivery of each report, in the order submitted (ms): "
            + " ".join(f"{latency * 1000:.0f}" for latency in in_order)
        )
        latencies: list[float] = []
        for output in outputs:
            values = array("d")
            with output.open("rb") as file:
                values.frombytes(file.read())
            latencies.extend(values)
        latencies.sort()
        per_filter = {
            i: sum(len(v) for v in expected_map[str(i)].values()) for i in range(len(filters))
        }
        expected = sum(per_filter[i % len(filters)] for i in range(connected))
        return Result(
            variant=variant,
            subscribers=count,
            connected=connected,
            reports=len(submitted),
            deliveries=len(latencies),
            expected=expected,
            p50_ms=percentile(latencies, 0.50) * 1000,
            p99_ms=percentile(latencies, 0.99) * 1000,
            max_ms=(latencies[-1] if latencies else float("nan")) * 1000,
            lost=sum(s["lost"] for s in summaries),
            repeated=sum(s["repeated"] for s in summaries),
            out_of_order=sum(s["out_of_order"] for s in summaries),
            rss_before_kib=rss_before,
            rss_after_kib=rss_after,
            server_user_s=cpu_after[0] - cpu_before[0],
            server_system_s=cpu_after[1] - cpu_before[1],
            clients_cpu_s=clients_cpu,
            machine_busy_s=machine_busy,
            busy_before=idle_busy,
            errors=sorted({e for s in summaries for e in s["errors"]} | set(failures))[:5],
        )
    finally:
        if clients is not None:
            clients.stop()
        stop_process(server.process)
        # The working folder goes away; the server's log stays with the other raw results.
        RAW.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(server.log_path, RAW / f"fanout-server-{variant}-{count}.log")


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory_kib / 1024 / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()}"
    )


def table(results: list[Result]) -> Iterator[str]:
    yield (
        "| variant | subscribers | delivered / expected | lost | repeated | p50 ms | p99 ms "
        "| max ms | server RSS MiB before → after | KiB per subscriber "
        "| CPU s: server (user + sys) / subscribers / rest of machine |"
    )
    yield "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for r in results:
        rest = r.machine_busy_s - r.server_user_s - r.server_system_s - r.clients_cpu_s
        yield (
            f"| {r.variant} | {r.connected:,} of {r.subscribers:,} "
            f"| {r.deliveries:,} / {r.expected:,} | {r.lost:,} | {r.repeated:,} "
            f"| {r.p50_ms:.0f} | {r.p99_ms:.0f} | {r.max_ms:.0f} "
            f"| {r.rss_before_kib / 1024:.0f} → {r.rss_after_kib / 1024:.0f} "
            f"| {r.kib_per_subscriber:.1f} "
            f"| {r.server_user_s:.1f} + {r.server_system_s:.1f} / {r.clients_cpu_s:.1f} "
            f"/ {rest:.1f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1_000, 5_000, 10_000])
    parser.add_argument(
        "--variant", choices=["same", "distinct"], nargs="+", default=["same", "distinct"]
    )
    parser.add_argument("--reports", type=int, default=30, help="reports per measurement")
    parser.add_argument(
        "--rate", type=float, default=0.5, help="reports per second (each makes two events)"
    )
    parser.add_argument(
        "--sockets-per-client",
        type=int,
        default=2_500,
        help="sockets per subscriber process (at least one process; default 2,500)",
    )
    parser.add_argument(
        "--compression",
        choices=["none", "deflate"],
        default="none",
        help="offer permessage-deflate, as browsers do (default: none)",
    )
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    parser.add_argument(
        "--max-busy",
        type=float,
        default=0.15,
        help="wait until at most this share of the CPUs is busy before measuring",
    )
    parser.add_argument("--max-wait", type=float, default=1800.0, help="seconds, then measure")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample the server with py-spy while it fans the reports out (adds load)",
    )
    parser.add_argument(
        "--profile-native", action="store_true", help="with --profile: C frames too (slower)"
    )
    args = parser.parse_args()

    # Stopped by SIGTERM (`timeout`, a CI job) as by Ctrl-C: every `finally` runs
    # and stops the server and subscriber processes.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    url = bench_url()
    prepare_database(url)
    key = partner_key(url)
    token = staff_token(url)
    points = report_points()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        workdir = Path(tmp)
        for variant in args.variant:
            for count in args.subscribers:
                result = measure(
                    url=url, variant=variant, count=count, args=args, key=key, token=token,
                    points=points, workdir=workdir,
                )  # fmt: skip
                results.append(result)
                log(
                    f"{variant} {count:,}: p50 {result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms, "
                    f"lost {result.lost}, {result.kib_per_subscriber:.1f} KiB/subscriber"
                    + (f", errors: {result.errors}" if result.errors else "")
                )
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}")
    print(
        f"{args.reports} reports at {args.rate}/s, "
        f"{args.sockets_per_client:,} sockets per subscriber process, "
        f"compression {args.compression}"
    )
    for line in table(results):
        print(line)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
