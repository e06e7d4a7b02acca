"""Database errors in the logs: the statement's shape and the server's error code, never
a parameter or a value the server quotes back (a reporter's name, phone or e-mail)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_engine
from core.log_redaction import install_log_redaction
from core.settings import Settings
from tests.factories import SUBMIT, report_input
from tests.servers import Server, module_server

# A reporter the probe constraint below refuses, and every form of their details
# that could reach a log: as sent, as stored.
PROBE_NAME = "Rahasia Probe Wulandari"
PROBE_PHONE = "0813-9999-0017"
PROBE_EMAIL = "wulandari.probe@example.id"
PROBE_DETAILS = (PROBE_NAME, "Wulandari", PROBE_PHONE, "+6281399990017", "81399990017", PROBE_EMAIL)


def _assert_no_probe_details(log: str) -> None:
    leaked = [detail for detail in PROBE_DETAILS if detail in log]
    assert not leaked, f"personal data in the log: {leaked}\n{log}"


@pytest.fixture
def redaction() -> Iterator[None]:
    before = logging.getLogRecordFactory()
    install_log_redaction()
    try:
        yield
    finally:
        logging.setLogRecordFactory(before)


@pytest.mark.parametrize(
    ("statement", "described"),
    [
        # PostgreSQL quotes the value: invalid input syntax for type integer: "…"
        (
            "SELECT CAST(CAST(:value AS text) AS integer)",
            "DBAPIError: Error (SQLSTATE 22P02) in statement:"
            " SELECT CAST(CAST($1 AS text) AS integer)",
        ),
        # asyncpg quotes it: invalid input for query argument $1: '…'
        (
            "SELECT CAST(:value AS integer)",
            "DBAPIError: Error (SQLSTATE 22000) in statement: SELECT CAST($1 AS integer)",
        ),
    ],
)
@pytest.mark.usefixtures("redaction")
async def test_a_failed_statement_is_logged_by_its_shape(
    settings: Settings, caplog: pytest.LogCaptureFixture, statement: str, described: str
) -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as failed:
                await conn.execute(text(statement), {"value": PROBE_NAME})
    finally:
        await engine.dispose()
    assert PROBE_NAME in str(failed.value)  # what the redaction is up against

    with caplog.at_level(logging.ERROR, logger="patriot.test"):
        try:
            raise RuntimeError("lookup failed") from failed.value
        except RuntimeError:
            logging.getLogger("patriot.test").exception("query failed: %s", failed.value)

    [record] = caplog.records
    assert record.exc_info is None
    log = caplog.text
    _assert_no_probe_details(log)
    assert f"query failed: {described}\n" in log
    # The trace keeps its frames and the chain of exceptions, not their messages.
    assert "Traceback (most recent call last):" in log
    assert f"sqlalchemy.exc.DBAPIError: {described}\n" in log
    assert "RuntimeError: lookup failed" in log
    assert "The above exception was the direct cause of the following exception" in log
    assert __file__ in log


def test_other_errors_are_logged_as_they_are(
    redaction: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="patriot.test"):
        try:
            raise ValueError("nothing personal: 42")
        except ValueError:
            logging.getLogger("patriot.test").exception("failed")

    [record] = caplog.records
    assert record.exc_info is not None
    assert "ValueError: nothing personal: 42" in caplog.text


def test_the_engine_hides_statement_parameters(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        assert engine.sync_engine.hide_parameters
    finally:
        engine.sync_engine.dispose()


# --- a real server process ----------------------------------------------------------


@pytest.fixture(scope="module")
def server(
    test_database_url: str, tmp_path_factory: pytest.TempPathFactory, reference_data: None
) -> Iterator[Server]:
    with module_server(
        database_url=test_database_url, tmp_path_factory=tmp_path_factory, name="log-privacy"
    ) as started:
        yield started


@pytest.fixture
async def refused_reporter(engine: AsyncEngine) -> AsyncIterator[None]:
    """The case table refuses the probe reporter: PostgreSQL's error then carries the
    whole failing row, and the statement its parameters."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                'ALTER TABLE "case" ADD CONSTRAINT log_privacy_probe'
                f" CHECK (reporter_name IS DISTINCT FROM '{PROBE_NAME}') NOT VALID"
            )
        )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text('ALTER TABLE "case" DROP CONSTRAINT log_privacy_probe'))


@pytest.mark.usefixtures("refused_reporter")
async def test_a_database_error_in_an_operation_logs_no_personal_data(
    server: Server, committed_credentials: Callable[[str | None], dict[str, str]]
) -> None:
    reporter = {"name": PROBE_NAME, "phone": PROBE_PHONE, "email": PROBE_EMAIL}
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            server.http,
            json={"query": SUBMIT, "variables": {"input": report_input(reporter=reporter)}},
            headers=committed_credentials("partner:POT"),
        )

    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    log = server.log.read_text()
    _assert_no_probe_details(log)
    assert (
        "unexpected error in submitReport: IntegrityError: CheckViolationError"
        " (SQLSTATE 23514, constraint log_privacy_probe, table case)"
    ) in log
    assert "in statement: WITH ticket_number AS (INSERT INTO ticket_counter" in log
    assert 'INSERT INTO "case" (kind, source, external_id' in log
    assert "$17::VARCHAR" in log
    assert "Traceback (most recent call last):" in log
    assert "domain/intake.py" in log
    # Nor the document, whose inline arguments could hold the same details.
    assert "mutation Submit" not in log
