"""GraphQL over HTTP: graphql-http's own server audits (the reference
implementation of the spec's audits, not ours) pass in full, MUST, SHOULD and
MAY, against a real server process."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.servers import Server, module_server

AUDIT = Path(__file__).resolve().parent / "http_audit"

pytestmark = pytest.mark.usefixtures("reference_data")


@pytest.fixture(scope="module")
def server(
    test_database_url: str, tmp_path_factory: pytest.TempPathFactory, engine: AsyncEngine
) -> Iterator[Server]:
    with module_server(
        database_url=test_database_url, tmp_path_factory=tmp_path_factory, name="http"
    ) as started:
        yield started


def test_every_graphql_http_audit_passes(server: Server) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed (scripts/test installs it with the set-up)"
    assert (AUDIT / "node_modules" / "graphql-http").is_dir(), "run ./scripts/test (npm ci)"
    finished = subprocess.run(
        [node, str(AUDIT / "audit.mjs"), server.http],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    results = json.loads(finished.stdout)
    by_level = {
        level: [r for r in results if r["name"].startswith(level)]
        for level in ("MUST", "SHOULD", "MAY")
    }
    # The audits of graphql-http 1.23 (tests/http_audit/package-lock.json).
    assert {level: len(audits) for level, audits in by_level.items()} == {
        "MUST": 13,
        "SHOULD": 23,
        "MAY": 25,
    }
    failed = [f"{r['name']}: {r['reason']}" for r in results if r["status"] != "ok"]
    assert failed == []
