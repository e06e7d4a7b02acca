"""A throwaway PostgreSQL + PostGIS cluster of its own, for tests that stop and
restart the database under a running server (the suite's own cluster serves
every other test and must stay up)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port


def _bindir() -> Path:
    # The newest server installed from the system's packages (scripts/lib/setup.sh
    # installs one with PostGIS).
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    if not found:
        raise RuntimeError("no PostgreSQL server installed (run ./scripts/test)")
    return Path(found[-1]).parent


def _as_owner(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    """PostgreSQL refuses to run as root: as root, run it as the postgres user."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, **kwargs)  # type: ignore[call-overload,no-any-return]


@dataclass
class Cluster:
    data: Path
    port: int
    bindir: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://patriot@127.0.0.1:{self.port}/patriot"

    def start(self) -> None:
        _as_owner(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.data / "log"),
                "-w",
                "-t",
                "30",
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        _as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    bindir = _bindir()
    # Not under pytest's temporary folders: as root those are closed to the
    # postgres user the server must run as.
    home = Path(tempfile.mkdtemp(prefix="patriot-pg-"))
    data = home / "pg"
    data.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    _as_owner(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "patriot",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]
    )
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            "fsync = off\n"
        )
    cluster = Cluster(data=data, port=port, bindir=bindir)
    cluster.start()
    try:
        _as_owner(
            [
                str(bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "patriot",
                "patriot",
            ]
        )
        yield cluster
    finally:
        # A test may leave it stopped.
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.stop("immediate")
        shutil.rmtree(home, ignore_errors=True)
