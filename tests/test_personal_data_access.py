"""The record of who saw reporters' details: one row per case and root field for
every answer that showed them to a partner or staff member, queryable by
administrators, pruned after PATRIOT_PERSONAL_DATA_ACCESS_RETENTION_DAYS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from core.settings import Settings
from models import Case, PersonalDataAccess
from tests import bekasi
from tests.factories import SUBMIT, make_case, report_input

pytestmark = pytest.mark.usefixtures("reference_data")

KELURAHAN = "32.75.01.1001"


@pytest.fixture
async def cases(session: AsyncSession, shared_data_dir: Path) -> list[Case]:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, KELURAHAN)
    return [await make_case(session, lat=lat, lon=lon) for _ in range(2)]


async def _records(session: AsyncSession) -> list[tuple[str, str, int | None, str]]:
    rows = await session.execute(
        select(
            PersonalDataAccess.subject,
            PersonalDataAccess.scope,
            PersonalDataAccess.case_id,
            PersonalDataAccess.operation,
        ).order_by(PersonalDataAccess.case_id, PersonalDataAccess.operation)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_an_answer_showing_reporters_is_recorded_per_case_and_root_field(
    graphql: Any, session: AsyncSession, cases: list[Case]
) -> None:
    one, two = cases
    body = await graphql(
        """
        query($t: String!) {
          mine: case(ticket: $t) { reporter { phone } }
          cases(first: 10) { edges { node { ticket reporter { name } } } }
          again: cases(first: 10) { edges { node { reporter { email } } } }
        }
        """,
        {"t": one.ticket},
        as_=f"LURAH:{KELURAHAN}",
    )
    assert body["data"]["mine"]["reporter"]["phone"] == "+6281234567890"
    who = ("staff:test-lurah", f"LURAH of kelurahan {KELURAHAN}")
    assert await _records(session) == [
        (*who, one.id, "case"),
        (*who, one.id, "cases"),
        (*who, two.id, "cases"),
    ]


@pytest.mark.parametrize(
    ("spec", "query"),
    [
        ("ADMIN", "cases(first: 10) { edges { node { reporter { name } } } }"),
        ("POC_OPERATOR", "cases(first: 10) { edges { node { ticket title } } }"),
        ("LURAH:32.75.09.1002", "cases(first: 10) { edges { node { reporter { name } } } }"),
    ],
)
async def test_nothing_is_recorded_when_no_reporter_was_shown(
    graphql: Any, session: AsyncSession, cases: list[Case], spec: str, query: str
) -> None:
    body = await graphql(f"{{ {query} }}", as_=spec)
    assert "errors" not in body
    assert await _records(session) == []


async def test_a_mutation_answer_is_recorded_in_its_transaction(
    graphql: Any, session: AsyncSession
) -> None:
    document = SUBMIT.replace("ticket kind", "ticket reporter { name } kind")
    body = await graphql(document, {"input": report_input()}, as_="partner:POT")
    ticket = body["data"]["submitReport"]["ticket"]
    case_id = await session.scalar(select(Case.id).where(Case.ticket == ticket))
    assert await _records(session) == [("partner:POT", "partner POT", case_id, "submitReport")]


async def test_a_partial_answer_is_recorded_though_the_rest_is_rolled_back(
    graphql: Any, session: AsyncSession, cases: list[Case]
) -> None:
    body = await graphql(
        """
        query($t: String!) {
          case(ticket: $t) { reporter { name } }
          other: case(ticket: $t) { possibleDuplicates(limit: 1000) { distanceM } }
        }
        """,
        {"t": cases[0].ticket},
        as_="POC_OPERATOR",
    )
    assert body["data"]["case"]["reporter"]["name"] == "Siti Aminah"
    assert body["data"]["other"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await _records(session) == [
        ("staff:test-poc_operator", "POC_OPERATOR", cases[0].id, "case")
    ]


ACCESS = """
query($filter: PersonalDataAccessFilter, $after: String) {
  personalDataAccess(filter: $filter, first: 1, after: $after) {
    edges { cursor node { subject scope at ticket operation } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_administrators_page_through_the_record(
    graphql: Any, session: AsyncSession, cases: list[Case]
) -> None:
    shown = "query($t: String!) { case(ticket: $t) { reporter { name } } }"
    await graphql(shown, {"t": cases[0].ticket}, as_="partner:POT")
    await graphql(shown, {"t": cases[1].ticket}, as_="POC_OPERATOR")
    await graphql(shown, {"t": cases[0].ticket}, as_="MAYOR")

    first = await graphql(ACCESS, {"filter": {"ticket": cases[0].ticket}}, as_="ADMIN")
    page = first["data"]["personalDataAccess"]
    assert [e["node"]["subject"] for e in page["edges"]] == ["staff:test-mayor"]
    assert page["pageInfo"]["hasNextPage"] is True
    second = await graphql(
        ACCESS,
        {"filter": {"ticket": cases[0].ticket}, "after": page["pageInfo"]["endCursor"]},
        as_="ADMIN",
    )
    [edge] = second["data"]["personalDataAccess"]["edges"]
    assert edge["node"] | {"at": None} == {
        "subject": "partner:POT",
        "scope": "partner POT",
        "at": None,
        "ticket": cases[0].ticket,
        "operation": "case",
    }
    assert second["data"]["personalDataAccess"]["pageInfo"]["hasNextPage"] is False

    for spec in ("POC_OPERATOR", "partner:POT", None):
        refused = await graphql(ACCESS, as_=spec)
        assert {e["extensions"]["code"] for e in refused["errors"]} <= {
            "FORBIDDEN",
            "UNAUTHENTICATED",
        }
        assert refused["data"] is None


async def test_administrators_read_the_erasures(graphql: Any, cases: list[Case]) -> None:
    erase = (
        "mutation($t: String!) { eraseReporter(ticket: $t, reason: "
        '"permintaan pelapor 1 Des") { __typename } }'
    )
    await graphql(erase, {"t": cases[1].ticket}, as_="POC_OPERATOR")
    body = await graphql(
        "{ reporterErasures(first: 10) { edges { node { ticket actor reason automatic "
        "erasedAt } } } }",
        as_="ADMIN",
    )
    [edge] = body["data"]["reporterErasures"]["edges"]
    assert edge["node"]["ticket"] == cases[1].ticket
    assert edge["node"]["actor"] == "staff:test-poc_operator"
    assert edge["node"]["reason"] == "permintaan pelapor 1 Des"
    assert edge["node"]["automatic"] is False


async def test_the_sweeper_forgets_records_older_than_kept(
    app: Starlette, session: AsyncSession, settings: Settings, cases: list[Case]
) -> None:
    now = datetime.now(UTC)
    kept = timedelta(days=settings.personal_data_access_retention_days)
    for age in (kept + timedelta(days=1), kept - timedelta(days=1)):
        session.add(
            PersonalDataAccess(
                at=now - age,
                subject="staff:x",
                scope="POC_OPERATOR",
                case_id=cases[0].id,
                operation="case",
            )
        )
    await session.flush()
    result = await app.state.sweeper.apply_retention(now=now)
    assert result.access_records_pruned == 1
    left = (await session.scalars(select(PersonalDataAccess.at))).all()
    assert left == [now - kept + timedelta(days=1)]
