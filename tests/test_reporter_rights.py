"""The reporter's rights (UU No. 27/2022): hiding and erasing the reporter's details,
with every copy of them, and the event log that holds none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.redaction import REDACTED, Redactor
from models import Case, CaseEvent, ReporterErasure
from tests import bekasi
from tests.factories import SUBMIT, make_case, report_input

pytestmark = pytest.mark.usefixtures("reference_data")

KELURAHAN = "32.75.01.1001"

HIDE = """
mutation($t: String!) {
  hideReporter(ticket: $t) {
    __typename
    ... on Case { anonymous reporter { name } history { type actor details } }
    ... on CaseNotFound { ticket }
  }
}
"""

ERASE = """
mutation($t: String!, $r: String!) {
  eraseReporter(ticket: $t, reason: $r) {
    __typename
    ... on Case {
      reporter { name phone email } reporterErasedAt title description
      history { type actor details }
    }
    ... on ValidationError { fields { field message } }
    ... on CaseNotFound { ticket }
  }
}
"""

READ = """
query($t: String!) { case(ticket: $t) { anonymous reporter { name phone email } } }
"""

# How the factories' reporter may be quoted: exactly, or written otherwise.
QUOTES = (
    "Siti Aminah",
    "siti@example.id",
    "+6281234567890",
    "81234567890",
    "812-3456-7890",
    "0812 3456 7890",
)


@pytest.fixture
def caller() -> str:
    return "POC_OPERATOR"


@pytest.fixture
async def case(session: AsyncSession, shared_data_dir: Path) -> Case:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, KELURAHAN)
    return await make_case(session, lat=lat, lon=lon)


async def _reporter(graphql: Any, ticket: str, spec: str) -> Any:
    body = await graphql(READ, {"t": ticket}, as_=spec)
    return body["data"]["case"]["reporter"]


async def test_a_partner_hides_the_reporter_of_its_own_case(graphql: Any, case: Case) -> None:
    body = await graphql(HIDE, {"t": case.ticket}, as_="partner:POT")
    hidden = body["data"]["hideReporter"]
    assert hidden["__typename"] == "Case" and hidden["anonymous"] is True
    # From now on only POC operators see who reported, the partner included.
    assert hidden["reporter"] is None
    assert hidden["history"][-1] == {
        "type": "REPORTER_HIDDEN",
        "actor": "partner:POT",
        "details": {},
    }
    assert await _reporter(graphql, case.ticket, f"LURAH:{KELURAHAN}") is None
    assert await _reporter(graphql, case.ticket, "partner:POT") is None
    assert (await _reporter(graphql, case.ticket, "POC_OPERATOR"))["phone"] == "+6281234567890"


async def test_hiding_a_hidden_reporter_changes_nothing(graphql: Any, case: Case) -> None:
    await graphql(HIDE, {"t": case.ticket})
    body = await graphql(HIDE, {"t": case.ticket})
    types = [e["type"] for e in body["data"]["hideReporter"]["history"]]
    assert types.count("REPORTER_HIDDEN") == 1


COMMENT = "mutation($t: String!, $x: String!) { commentCase(ticket: $t, text: $x) { __typename } }"


async def _everything_stored_about(session: AsyncSession, case_id: int) -> str:
    """Every column of the case, its events and its erasure, as one text."""
    rows: list[str] = []
    for table, column in (
        ('"case"', "id"),
        ("case_event", "case_id"),
        ("reporter_erasure", "case_id"),
    ):
        result = await session.execute(
            text(f"SELECT to_jsonb(t)::text FROM {table} t WHERE {column} = :id"), {"id": case_id}
        )
        rows.extend(result.scalars())
    return "\n".join(rows)


async def test_an_erasure_takes_out_the_reporter_and_every_quote_of_them(
    graphql: Any, session: AsyncSession, shared_data_dir: Path
) -> None:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, KELURAHAN)
    case = await make_case(
        session,
        lat=lat,
        lon=lon,
        description="Lubang besar. Hubungi saya: siti@example.id",
        address="Depan rumah Siti Aminah",
    )
    commented = await graphql(
        COMMENT,
        {"t": case.ticket, "x": "Sudah ditelepon ke +62 812-3456-7890, bu siti  aminah setuju."},
        as_=f"LURAH:{KELURAHAN}",
    )
    assert commented["data"]["commentCase"]["__typename"] == "Case"
    before = await _everything_stored_about(session, case.id)
    assert all(quote in before for quote in ("Siti Aminah", "siti@example.id", "812-3456-7890"))

    body = await graphql(
        ERASE, {"t": case.ticket, "r": "Permintaan Siti Aminah lewat telepon 0812 3456 7890"}
    )
    erased = body["data"]["eraseReporter"]
    assert erased["__typename"] == "Case"
    assert erased["reporter"] is None and erased["reporterErasedAt"] is not None
    assert erased["description"] == f"Lubang besar. Hubungi saya: {REDACTED}"
    assert erased["history"][-1] == {
        "type": "REPORTER_ERASED",
        "actor": "staff:test-poc_operator",
        "details": {},
    }
    comment = next(e for e in erased["history"] if e["type"] == "COMMENTED")
    assert comment["details"]["text"] == f"Sudah ditelepon ke {REDACTED}, bu {REDACTED} setuju."

    stored = await _everything_stored_about(session, case.id)
    assert [quote for quote in QUOTES if quote.lower() in stored.lower()] == []
    # The record says who, when and why, never what.
    erasure = await session.scalar(
        select(ReporterErasure).where(ReporterErasure.case_id == case.id)
    )
    assert erasure is not None and not erasure.automatic
    assert erasure.actor == "staff:test-poc_operator"
    assert erasure.reason == f"Permintaan {REDACTED} lewat telepon {REDACTED}"
    # The search index no longer finds them either.
    found = await graphql(
        'query { cases(filter: {text: "siti@example.id"}) { totalCount } }', as_="POC_OPERATOR"
    )
    assert found["data"]["cases"]["totalCount"] == 0
    # Nobody sees a reporter any more; the case stays, for the record and statistics.
    for spec in ("POC_OPERATOR", "partner:POT", f"LURAH:{KELURAHAN}"):
        assert await _reporter(graphql, case.ticket, spec) is None


async def test_erasing_an_erased_reporter_records_nothing_more(
    graphql: Any, session: AsyncSession, case: Case
) -> None:
    first = await graphql(ERASE, {"t": case.ticket, "r": "permintaan pelapor"}, as_="partner:POT")
    second = await graphql(ERASE, {"t": case.ticket, "r": "sekali lagi"})
    assert first["data"]["eraseReporter"]["__typename"] == "Case"
    history = second["data"]["eraseReporter"]["history"]
    assert [e["type"] for e in history].count("REPORTER_ERASED") == 1
    erasures = (
        await session.scalars(select(ReporterErasure).where(ReporterErasure.case_id == case.id))
    ).all()
    assert [(e.actor, e.reason) for e in erasures] == [("partner:POT", "permintaan pelapor")]


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (None, "UNAUTHENTICATED"),
        # Another partner may use the rights, for its own cases: POT's case is
        # answered as one that does not exist, as every case outside a scope is.
        ("partner:SOROT", "CaseNotFound"),
        (f"LURAH:{KELURAHAN}", "FORBIDDEN"),
        ("MAYOR", "FORBIDDEN"),
        ("ADMIN", "FORBIDDEN"),
    ],
)
async def test_only_the_partner_of_the_case_and_poc_operators_use_the_rights(
    graphql: Any, session: AsyncSession, case: Case, spec: str | None, code: str
) -> None:
    for document, variables in ((HIDE, {}), (ERASE, {"r": "permintaan"})):
        body = await graphql(document, {"t": case.ticket, **variables}, as_=spec)
        if code == "CaseNotFound":
            answer = next(iter(body["data"].values()))
            assert answer == {"__typename": "CaseNotFound", "ticket": case.ticket}, body
            continue
        assert {e["extensions"]["code"] for e in body["errors"]} == {code}, body
    await session.refresh(case)
    assert case.reporter_phone == "+6281234567890" and not case.anonymous


async def test_an_erasure_needs_a_reason_and_a_case(graphql: Any, case: Case) -> None:
    body = await graphql(ERASE, {"t": case.ticket, "r": "  "})
    refused = body["data"]["eraseReporter"]
    assert refused["__typename"] == "ValidationError"
    assert [f["field"] for f in refused["fields"]] == ["reason"]
    assert (await _reporter(graphql, case.ticket, "POC_OPERATOR"))["name"] == "Siti Aminah"
    missing = await graphql(ERASE, {"t": "BKS-0001-999999", "r": "permintaan"})
    assert missing["data"]["eraseReporter"] == {
        "__typename": "CaseNotFound",
        "ticket": "BKS-0001-999999",
    }


async def test_the_event_log_never_holds_the_reporters_details(
    graphql: Any, session: AsyncSession
) -> None:
    submitted = await graphql(SUBMIT, {"input": report_input()}, as_="partner:POT")
    ticket = submitted["data"]["submitReport"]["ticket"]
    for step in (
        "verifyCase(ticket: $t)",
        'assignCase(ticket: $t, officer: "budi")',
        "startWork(ticket: $t)",
        'resolveCase(ticket: $t, note: "ditambal", evidenceUrls: ["https://m.example/1.jpg"])',
        "closeCase(ticket: $t)",
    ):
        body = await graphql(
            f"mutation($t: String!) {{ r: {step} {{ __typename }} }}", {"t": ticket}
        )
        assert body["data"]["r"]["__typename"] == "Case", body
    events = (
        await session.execute(
            select(CaseEvent.type, CaseEvent.actor, CaseEvent.details)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(Case.ticket == ticket)
        )
    ).all()
    assert len(events) == 7
    assert [quote for quote in QUOTES if quote.lower() in str(events).lower()] == []


async def _refused(session: AsyncSession, statement: Any) -> bool:
    try:
        async with session.begin_nested():
            await session.execute(statement)
    except DBAPIError as error:
        assert "append-only" in str(error.orig)
        return True
    return False


async def test_the_event_log_changes_only_for_an_erasure_in_the_same_transaction(
    session: AsyncSession, shared_data_dir: Path
) -> None:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, KELURAHAN)
    erased, other = (
        await make_case(session, lat=lat, lon=lon),
        await make_case(session, lat=lat, lon=lon),
    )

    def rewrite(case: Case, **values: Any) -> Any:
        return update(CaseEvent).where(CaseEvent.case_id == case.id).values(**values)

    assert await _refused(session, rewrite(erased, details={"x": 1}))
    session.add(
        ReporterErasure(case_id=erased.id, erased_at=erased.created_at, actor="t", reason="uji")
    )
    await session.flush()
    # Only the details of the erased case's events, and never a delete.
    assert not await _refused(session, rewrite(erased, details={"x": 1}))
    assert await _refused(session, rewrite(erased, actor="someone else"))
    assert await _refused(session, rewrite(other, details={"x": 1}))
    assert await _refused(session, delete(CaseEvent).where(CaseEvent.case_id == erased.id))


def test_quotes_are_found_however_they_are_written() -> None:
    redactor = Redactor.for_reporter(
        name="Siti  Aminah", phone="+6281234567890", email="Siti@Example.id"
    )
    written = (
        "SITI AMINAH, 0812-3456-7890, +62 812 3456 7890, 6281234567890, (0812) 34567890, "
        "siti@example.id"
    )
    assert redactor.text(written) == ", ".join([REDACTED] * 6)
    # Not inside longer words or numbers, and short names are left alone.
    assert redactor.text("Sitiaminah 081234567890123") == "Sitiaminah 081234567890123"
    assert Redactor.for_reporter(name="Al", phone=None, email=None).text("Al Azhar") == "Al Azhar"
    assert redactor.json({"text": "siti aminah", "n": [1, "x siti@example.id"]}) == {
        "text": REDACTED,
        "n": [1, f"x {REDACTED}"],
    }
