"""Outside a case's scope, a ticket that exists is answered exactly like one that
does not: neither `case` nor a lifecycle mutation may tell a caller that a
(confidential) case exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, CaseEvent
from tests import bekasi
from tests.factories import make_case

pytestmark = pytest.mark.usefixtures("reference_data")

# The secret: a confidential report through POT, in Bekasijaya, handled by DBMSDA.
KELURAHAN = "32.75.01.1001"
# Another kelurahan, where the outsiders' own case is.
OTHER_KELURAHAN = "32.75.09.1002"
MISSING = "BKS-0001-999999"

RESULT = """{
  __typename
  ... on CaseNotFound { ticket message }
  ... on ValidationError { message fields { field message } }
  ... on InvalidTransition { message currentStatus allowedActions }
  ... on Case { ticket status }
}"""

# Callers allowed each action, but not on the secret case; some inputs are invalid
# too, which must not tell the two tickets apart either.
OUTSIDERS: list[tuple[str, str]] = [
    ("partner:SOROT", 'supportCase(ticket: $t, citizenId: "warga-9")'),
    ("partner:SOROT", 'supportCase(ticket: $t, citizenId: "")'),
    ("partner:SOROT", 'reopenCase(ticket: $t, reason: "belum beres")'),
    ("partner:SOROT", "rateCase(ticket: $t, rating: 9)"),
    (f"LURAH:{OTHER_KELURAHAN}", "verifyCase(ticket: $t)"),
    (f"LURAH:{OTHER_KELURAHAN}", 'resolveCase(ticket: $t, note: "", evidenceUrls: [])'),
    (f"LURAH:{OTHER_KELURAHAN}", 'assignCase(ticket: $t, officer: "budi")'),
    (f"LURAH:{OTHER_KELURAHAN}", "mergeDuplicate(ticket: $own, intoTicket: $t)"),
    (f"LURAH:{OTHER_KELURAHAN}", "mergeDuplicate(ticket: $t, intoTicket: $own)"),
    ("DINAS_HEAD:DLH", "closeCase(ticket: $t)"),
    ("CAMAT:32.75.09", 'commentCase(ticket: $t, text: "dipantau")'),
]


@pytest.fixture
async def secret(session: AsyncSession, shared_data_dir: Path) -> Case:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, KELURAHAN)
    return await make_case(session, lat=lat, lon=lon, confidential=True)


@pytest.fixture
async def own(session: AsyncSession, shared_data_dir: Path) -> Case:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, OTHER_KELURAHAN)
    return await make_case(session, lat=lat, lon=lon)


def _as_seen(body: dict[str, Any], ticket: str) -> str:
    return json.dumps(body, sort_keys=True).replace(ticket, "<ticket>")


async def _events(session: AsyncSession, case: Case) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case.id)
        )
        or 0
    )


@pytest.mark.parametrize(("spec", "field"), OUTSIDERS, ids=lambda v: str(v))
async def test_mutations_answer_an_out_of_scope_case_like_a_missing_one(
    graphql: Any, session: AsyncSession, secret: Case, own: Case, spec: str, field: str
) -> None:
    events = await _events(session, secret)
    own_variable = ", $own: String!" if "$own" in field else ""
    document = f"mutation($t: String!{own_variable}) {{ r: {field} {RESULT} }}"
    variables = {"own": own.ticket} if own_variable else {}
    seen = await graphql(document, {"t": secret.ticket, **variables}, as_=spec)
    missing = await graphql(document, {"t": MISSING, **variables}, as_=spec)
    assert _as_seen(seen, secret.ticket) == _as_seen(missing, MISSING)
    assert "errors" not in seen, seen
    assert seen["data"]["r"]["__typename"] in {"CaseNotFound", "ValidationError"}, seen
    assert await _events(session, secret) == events  # nothing was written


async def test_an_in_scope_caller_still_acts(graphql: Any, secret: Case) -> None:
    # The same mutation by the handling kelurahan, to show that the case is there.
    body = await graphql(
        f"mutation($t: String!) {{ r: verifyCase(ticket: $t) {RESULT} }}",
        {"t": secret.ticket},
        as_=f"LURAH:{KELURAHAN}",
    )
    assert body["data"]["r"] == {
        "__typename": "Case",
        "ticket": secret.ticket,
        "status": "VERIFIED",
    }


@pytest.mark.parametrize("spec", ["partner:SOROT", f"LURAH:{OTHER_KELURAHAN}", "DINAS_HEAD:DLH"])
async def test_reads_answer_an_out_of_scope_case_like_a_missing_one(
    graphql: Any, secret: Case, spec: str
) -> None:
    document = (
        "query($t: String!) { case(ticket: $t) { ticket } publicCase(ticket: $t) { ticket } }"
    )
    seen = await graphql(document, {"t": secret.ticket}, as_=spec)
    missing = await graphql(document, {"t": MISSING}, as_=spec)
    assert seen == missing == {"data": {"case": None, "publicCase": None}}
