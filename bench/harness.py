"""What the benchmark scripts share: databases, servers, points and the load tool.

Run the scripts from the repository root inside the project's environment
(`source scripts/lib/setup.sh`); they read `PATRIOT_DATABASE_URL` only to find
the PostgreSQL server and create their own databases on it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import shapely
from shapely import Point
from shapely.geometry import shape
from sqlalchemy.engine import URL, make_url

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "raw"
NODE_MODULES = BENCH / "node_modules"
SCHEMA_SQL = BENCH / "postgraphile" / "schema.sql"
LOAD_JS = BENCH / "load.js"
OFFICIAL_KELURAHAN = (
    Path(os.environ.get("PATRIOT_SHARED_DATA_DIR") or ROOT.parent / "shared" / "data" / "bekasi")
    / "kelurahan.geojson"
)

POINT_SEED = 20_240_601


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def code_version() -> str:
    """The commit measured, and whether the working tree differed from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return f"{head or 'unknown'}" + (f" + {len(changed)} modified file(s)" if changed else "")


# ---------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------


def base_url() -> URL:
    raw = os.environ.get("PATRIOT_DATABASE_URL")
    if not raw:
        sys.exit(
            "PATRIOT_DATABASE_URL is not set: run `source scripts/lib/setup.sh` first "
            "(it starts the embedded PostgreSQL and exports the URL)"
        )
    return make_url(raw)


def database_url(name: str) -> URL:
    """The SQLAlchemy URL of database `name` on the server PATRIOT_DATABASE_URL points at."""
    return base_url().set(database=name)


def libpq_url(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _ensure_database(url: URL) -> bool:
    admin = await asyncpg.connect(libpq_url(url.set(database="postgres")))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database)
        if not exists:
            # Identifiers cannot be bound; the name comes from our own options.
            await admin.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        await conn.close()
    return not exists


def ensure_database(url: URL) -> None:
    if asyncio.run(_ensure_database(url)):
        log(f"created database {url.database}")


async def _sql(url: URL, statement: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        if args:
            return list(await conn.fetch(statement, *args))
        # A script of several statements: simple query protocol, no results.
        await conn.execute(statement)
        return []
    finally:
        await conn.close()


def sql(url: URL, statement: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_sql(url, statement, *args))


def fetch(url: URL, statement: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(libpq_url(url))
        try:
            return list(await conn.fetch(statement))
        finally:
            await conn.close()

    return asyncio.run(run())


def project_env(url: URL, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATRIOT_DATABASE_URL"] = url.render_as_string(hide_password=False)
    env.update(extra)
    return env


def project_command(url: URL, *args: str) -> None:
    """Run a project command (alembic, seeds, importer) against `url`, echoing its output."""
    log(" ".join(args))
    subprocess.run(args, cwd=ROOT, env=project_env(url), check=True, stdout=sys.stderr)


def migrate(url: URL) -> None:
    project_command(url, sys.executable, "-m", "alembic", "upgrade", "head")


def official_content_hash(path: Path) -> str:
    from geo.importer import ImportOptions, plan_import

    plan = plan_import(
        kelurahan=json.loads(path.read_text(encoding="utf-8-sig")),
        kecamatan=None,
        options=ImportOptions(source=path.name),
    )
    if not plan.ok or plan.boundary_set is None:
        raise SystemExit(f"{path} does not import cleanly:\n{plan.summary()}")
    return plan.boundary_set.content_hash


def has_official_boundaries(url: URL) -> bool:
    """The database exists and the official Bekasi boundaries are its active set."""
    try:
        active = fetch(url, "SELECT content_hash FROM boundary_set WHERE is_active")
    except (OSError, asyncpg.PostgresError):
        return False
    return bool(active) and active[0]["content_hash"] == official_content_hash(OFFICIAL_KELURAHAN)


def prepare_bekasi_database(url: URL) -> None:
    """Migrated, seeded, and with the official Bekasi boundaries as the active set."""
    ensure_database(url)
    migrate(url)
    project_command(url, sys.executable, "-m", "seeds")
    active = fetch(url, "SELECT content_hash FROM boundary_set WHERE is_active")
    wanted = official_content_hash(OFFICIAL_KELURAHAN)
    if not active or active[0]["content_hash"] != wanted:
        project_command(
            url,
            sys.executable,
            "-m",
            "geo",
            str(OFFICIAL_KELURAHAN),
            "--commit",
            "--activate",
        )
    else:
        log(f"{url.database}: the official Bekasi boundaries are already the active set")


def partner_key(url: URL, partner: str = "POT") -> str | None:
    """A new API key for `partner` in the bench database, or None when the project
    has no partner keys (`python -m api.keys`)."""
    if not (ROOT / "api" / "keys.py").exists():
        return None
    completed = subprocess.run(
        [sys.executable, "-m", "api.keys", "create", "--partner", partner, "--name", "bench"],
        cwd=ROOT,
        env=project_env(url),
        capture_output=True,
        text=True,
        check=True,
    )
    keys = [line for line in completed.stdout.split() if line.startswith("ptk_")]
    if len(keys) != 1:
        raise SystemExit(f"python -m api.keys printed no key: {completed.stdout}")
    return keys[0]


def checkpoint(url: URL) -> None:
    # Each write run starts with a clean WAL, not with the previous run's dirty pages.
    sql(url, "CHECKPOINT")


# ---------------------------------------------------------------------------
# Points
# ---------------------------------------------------------------------------


def interior_points(geojson: Path, count: int, seed: int = POINT_SEED) -> list[tuple[float, float]]:
    """`count` random (lat, lon) points, each covered by exactly one feature of the file.

    Exactly one, so that every lookup rule (deepest-inside, lowest code) gives the
    same answer and both servers can be checked against each other.
    """
    features = json.loads(geojson.read_text(encoding="utf-8-sig"))["features"]
    polygons = [shape(feature["geometry"]) for feature in features]
    tree = shapely.STRtree(polygons)
    min_lon, min_lat, max_lon, max_lat = (float(v) for v in shapely.total_bounds(polygons))
    rng = random.Random(seed)
    points: list[tuple[float, float]] = []
    while len(points) < count:
        lon = rng.uniform(min_lon, max_lon)
        lat = rng.uniform(min_lat, max_lat)
        if len(tree.query(Point(lon, lat), predicate="covered_by")) == 1:
            points.append((round(lat, 6), round(lon, 6)))
    return points


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str  # the GraphQL endpoint
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def _spawn(name: str, args: Sequence[str], *, cwd: Path, env: dict[str, str], url: str) -> Server:
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Its own process group: stopping it never signals us, and nothing
            # it might spawn outlives it.
            start_new_session=True,
        )
    return Server(name=name, process=process, url=url, log_path=log_path)


# The load comes from one caller, which the per-caller mutation limit (120 a
# minute by default) would throttle; the limiter itself still runs.
BENCH_RATE_LIMITS = {
    "PATRIOT_MUTATION_RATE_PER_MINUTE": "1000000000",
    "PATRIOT_MUTATION_BURST": "1000000",
}


def start_patriot(db: URL, *, port: int | None = None, name: str = "patriot") -> Server:
    port = port or free_port()
    env = project_env(
        db,
        PATRIOT_ENVIRONMENT="production",
        PATRIOT_LOG_LEVEL="WARNING",
        PATRIOT_HOST="127.0.0.1",
        PATRIOT_PORT=str(port),
        # Production refuses to start without one; nobody signs tokens here.
        PATRIOT_JWT_SECRET=secrets.token_urlsafe(48),
        **BENCH_RATE_LIMITS,
    )
    return _spawn(
        name,
        [sys.executable, "-m", "api"],
        cwd=ROOT,
        env=env,
        url=f"http://127.0.0.1:{port}/graphql",
    )


def start_postgraphile(db: URL, *, schema: str = "bench_pg", port: int | None = None) -> Server:
    cli = NODE_MODULES / "postgraphile" / "cli.js"
    if not cli.exists():
        sys.exit("bench/node_modules is missing: run `npm ci --prefix bench` first")
    port = port or free_port()
    env = dict(os.environ, NODE_ENV="production")
    args = [
        "node",
        str(cli),
        "--connection", libpq_url(db),
        "--schema", schema,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--append-plugins", "@graphile/postgis",
        "--disable-query-log",
        "--disable-graphiql",
    ]  # fmt: skip
    return _spawn("postgraphile", args, cwd=BENCH, env=env, url=f"http://127.0.0.1:{port}/graphql")


def post_json(
    url: str, payload: object, timeout: float = 10.0, headers: dict[str, str] | None = None
) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={
            "content-type": "application/json",
            "accept": "application/json",
            **(headers or {}),
        },
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_ready(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(
                f"{server.name} exited with {server.process.returncode}; "
                f"its log:\n{server.log_path.read_text(errors='replace')[-3000:]}"
            )
        try:
            body = post_json(server.url, {"query": "{ __typename }"}, timeout=2.0)
            if body.get("data", {}).get("__typename"):
                return
        except (OSError, urllib.error.URLError, json.JSONDecodeError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{server.name} not ready after {timeout:.0f} s (log: {server.log_path})")


def stop(server: Server) -> None:
    if server.process.poll() is not None:
        return
    os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


@contextmanager
def running(*servers: Server) -> Iterator[tuple[Server, ...]]:
    """Stop every server on the way out, whatever happened (Ctrl-C included)."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        for server in servers:
            wait_ready(server)
        yield servers
    finally:
        signal.signal(signal.SIGTERM, previous)
        for server in servers:
            stop(server)


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and its parts (anonymous, file-backed, shared memory) in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of proc(5), counted after the command name's ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# "postgres: [cluster: ]user database host(port) state" is a backend's title.
_BACKEND = re.compile(r"^postgres: (?:\S+: )?\S+ (\S+) \S*\(\d+\)")


def _all_processes() -> dict[int, tuple[str, float]]:
    processes: dict[int, tuple[str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
            processes[int(entry.name)] = (cmdline.strip(), cpu_seconds(int(entry.name)))
        except (OSError, UnicodeDecodeError, IndexError):
            continue  # gone meanwhile, or a kernel thread
    return processes


def _machine_busy_seconds() -> float:
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(
    *, limit_cores: float = 0.25, window: float = 3.0, timeout: float = 120.0
) -> bool:
    """Wait until the machine, with our servers idle, uses under `limit_cores`.

    On a shared machine other work competes for the same cores; waiting for a
    lull keeps runs comparable. Returns False when the lull never came.
    """
    deadline = time.monotonic() + timeout
    while True:
        before = _machine_busy_seconds()
        time.sleep(window)
        if (_machine_busy_seconds() - before) / window < limit_cores:
            return True
        if time.monotonic() > deadline:
            return False


class CpuMeter:
    """Who used the machine's CPU during a run, in cores on average.

    The machine may be shared: `foreign` is everything that is neither the
    server, nor the load generator, nor PostgreSQL working for `database`
    (backends of other databases count as foreign; the cluster's background
    processes, such as the WAL writer, as ours). A run with much foreign CPU
    is noisy.
    """

    def __init__(self, *, server_pid: int, database: str) -> None:
        self.server_pid = server_pid
        self.database = database

    def __enter__(self) -> CpuMeter:
        self._processes = _all_processes()
        self._children = os.times()
        self._busy = _machine_busy_seconds()
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.monotonic() - self._started
        after = _all_processes()
        children = os.times()
        used: dict[str, float] = {"server": 0.0, "postgres": 0.0, "foreign": 0.0}
        for pid, (cmdline, seconds) in after.items():
            delta = seconds - self._processes.get(pid, (cmdline, 0.0))[1]
            if pid == os.getpid() or delta <= 0:
                continue
            if pid == self.server_pid:
                used["server"] += delta
            elif cmdline.startswith("postgres"):
                backend = _BACKEND.match(cmdline)
                ours = backend is None or backend.group(1) == self.database
                used["postgres" if ours else "foreign"] += delta
            else:
                used["foreign"] += delta
        # The load generator has exited and been waited for: it is our child.
        used["load"] = (children.children_user + children.children_system) - (
            self._children.children_user + self._children.children_system
        )
        used["machine"] = _machine_busy_seconds() - self._busy
        # Processes that came and went during the run (other than ours) show
        # only in the machine total.
        accounted = used["server"] + used["postgres"] + used["load"] + used["foreign"]
        used["foreign"] += max(0.0, used["machine"] - accounted)
        self.cores = {key: value / elapsed for key, value in used.items()}


# ---------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------


def _sessions(db: URL) -> int:
    # Counted when a backend starts; the statistics reach the view within a second.
    time.sleep(1.0)
    rows = sql(db, "SELECT sessions FROM pg_stat_database WHERE datname = $1", db.database)
    return int(rows[0]["sessions"])


@dataclass(frozen=True)
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non2xx: int
    mismatches: int
    bad_samples: list[str]
    cpu: dict[str, float]  # cores used on average: server, postgres, load, foreign, machine
    new_connections: int  # PostgreSQL sessions opened on the database during the run

    @property
    def clean(self) -> bool:
        return not (self.errors or self.non2xx or self.mismatches)


def run_load(
    *,
    server: Server,
    template: str,
    points: Sequence[tuple[float, float]],
    key_prefix: str,
    expect: str,
    connections: int,
    duration: float,
    database: str,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    RESULTS.mkdir(parents=True, exist_ok=True)
    spec_path = RESULTS / f"spec-{server.name}.json"
    spec = {
        "url": server.url,
        "connections": connections,
        "duration": duration,
        "template": template,
        "points": [list(point) for point in points],
        "keyPrefix": key_prefix,
        "expect": expect,
        "headers": headers or {},
    }
    spec_path.write_text(json.dumps(spec))
    db = database_url(database)
    sessions_before = _sessions(db)
    try:
        with CpuMeter(server_pid=server.pid, database=database) as meter:
            completed = subprocess.run(
                ["node", str(LOAD_JS), str(spec_path)], cwd=BENCH, capture_output=True, check=False
            )
    finally:
        # It may hold the bench partner's API key.
        spec_path.unlink(missing_ok=True)
    # Minus the one this query opens.
    new_connections = _sessions(db) - sessions_before - 1
    if completed.returncode != 0:
        raise SystemExit(f"load.js failed:\n{completed.stderr.decode(errors='replace')}")
    result = json.loads(completed.stdout)
    return LoadResult(
        rps=float(result["requests"]["average"]),
        p50_ms=float(result["latency"]["p50"]),
        p99_ms=float(result["latency"]["p99"]),
        requests=int(result["requests"]["total"]),
        errors=int(result["errors"]),
        non2xx=int(result["non2xx"]),
        mismatches=int(result.get("mismatches", 0)),
        bad_samples=list(result.get("badSamples", [])),
        cpu=meter.cores,
        new_connections=new_connections,
    )
