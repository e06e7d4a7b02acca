"""The authorization matrix: every caller, every operation, in and out of scope,
generated from one table, plus the privacy of reporter details."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import PARTNER, PERMISSIONS, Action, Role
from domain.report_input import ReporterInput
from tests import bekasi
from tests.factories import SUBMIT, make_case, report_input

pytestmark = pytest.mark.usefixtures("reference_data")

# The target case: a pothole in Bekasijaya (kecamatan Bekasi Timur), handled by
# DBMSDA, reported through POT by a citizen whose details must stay private.
KELURAHAN = "32.75.01.1001"
KECAMATAN = "32.75.01"
DINAS = "DBMSDA"
PHONE = "+6281298765432"
EMAIL = "rahasia.pelapor@example.id"

# caller spec → does the case fall in its scope?
CALLERS: dict[str | None, bool] = {
    None: False,
    "partner:POT": True,
    "partner:SOROT": False,
    "MAYOR": True,
    "POC_OPERATOR": True,
    "ADMIN": True,
    f"CAMAT:{KECAMATAN}": True,
    "CAMAT:32.75.09": False,
    f"LURAH:{KELURAHAN}": True,
    "LURAH:32.75.09.1002": False,
    f"KELURAHAN_OFFICER:{KELURAHAN}": True,
    "KELURAHAN_OFFICER:32.75.09.1002": False,
    f"DINAS_HEAD:{DINAS}": True,
    "DINAS_HEAD:DLH": False,
    f"DINAS_OFFICER:{DINAS}": True,
    "DINAS_OFFICER:DLH": False,
}


def grant(spec: str | None) -> str | None:
    if spec is None:
        return None
    kind = spec.split(":")[0]
    return PARTNER if kind == "partner" else Role(kind).value


# One mutation per action: (document, variables); $ticket is the target case.
MUTATIONS: dict[Action, tuple[str, dict[str, Any]]] = {
    Action.VERIFY: ("verifyCase(ticket: $ticket)", {}),
    Action.HOLD: ('holdCase(ticket: $ticket, reason: "menunggu")', {}),
    Action.RESUME: ("resumeCase(ticket: $ticket)", {}),
    Action.REJECT: ("rejectCase(ticket: $ticket, reason: SPAM)", {}),
    Action.ASSIGN: ('assignCase(ticket: $ticket, officer: "budi")', {}),
    Action.REROUTE: ('rerouteCase(ticket: $ticket, reason: "salah dinas", dinasCode: "DLH")', {}),
    Action.START: ("startWork(ticket: $ticket)", {}),
    Action.RESOLVE: (
        'resolveCase(ticket: $ticket, note: "selesai", '
        'evidenceUrls: ["https://media.example/1.jpg"])',
        {},
    ),
    Action.CLOSE: ("closeCase(ticket: $ticket)", {}),
    Action.REOPEN: ('reopenCase(ticket: $ticket, reason: "belum")', {}),
    Action.COMMENT: ('commentCase(ticket: $ticket, text: "dipantau")', {}),
    Action.MARK_DUPLICATE: ("mergeDuplicate(ticket: $ticket, intoTicket: $other)", {}),
    Action.SUPPORT: ('supportCase(ticket: $ticket, citizenId: "warga-1")', {}),
    Action.RATE: ("rateCase(ticket: $ticket, rating: 5)", {}),
    Action.HIDE_REPORTER: ("hideReporter(ticket: $ticket)", {}),
    Action.ERASE_REPORTER: ('eraseReporter(ticket: $ticket, reason: "permintaan pelapor")', {}),
}
REFUSED = {"FORBIDDEN", "UNAUTHENTICATED"}


def mutation_allowed(action: Action, spec: str | None) -> bool:
    if grant(spec) not in PERMISSIONS[action]:
        return False
    if action is Action.SUPPORT:
        return True  # partners support any public case
    return CALLERS[spec]


@pytest.fixture
async def target(session: AsyncSession, shared_data_dir: Path) -> Any:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, KELURAHAN)
    return await make_case(
        session,
        lat=lat,
        lon=lon,
        reporter=ReporterInput(name="Pelapor Rahasia", phone="0812-9876-5432", email=EMAIL),
        address="Gang Melati 7, di belakang rumah pelapor",
        media_urls=["https://media.pot.example/foto/pelapor-rumah.jpg"],
    )


def _no_pii(body: Any) -> None:
    text = str(body)
    assert PHONE not in text and EMAIL not in text and "Pelapor Rahasia" not in text


@pytest.mark.parametrize("spec", list(CALLERS), ids=str)
@pytest.mark.parametrize("action", list(MUTATIONS), ids=str)
async def test_mutation_matrix(
    graphql: Any,
    session: AsyncSession,
    shared_data_dir: Path,
    target: Any,
    action: Action,
    spec: str | None,
) -> None:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, KELURAHAN)
    other = await make_case(session, lat=lat, lon=lon)  # same scope as the target
    field, _ = MUTATIONS[action]
    document = (
        f"mutation($ticket: String!, $other: String!) {{ r: {field} {{ __typename }} }}"
        if "$other" in field
        else f"mutation($ticket: String!) {{ r: {field} {{ __typename }} }}"
    )
    variables: dict[str, object] = {"ticket": target.ticket}
    if "$other" in field:
        variables["other"] = other.ticket
    body = await graphql(document, variables, as_=spec)
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
    if mutation_allowed(action, spec):
        assert not codes & REFUSED, body
        assert body["data"]["r"]["__typename"], body
    elif grant(spec) in PERMISSIONS[action]:
        # Allowed the action, but the case is outside its scope: answered as if
        # the ticket did not exist (tests/test_case_existence.py).
        assert not codes, body
        assert body["data"]["r"]["__typename"] == "CaseNotFound", body
    else:
        assert codes & REFUSED, body
        assert body["data"] is None or body["data"].get("r") is None


# Everything of a case that only its scope may see, as a mutation could answer it.
FULL_VIEW = """
__typename
... on Case {
  ticket title description address mediaUrls assignedTo externalId
  location { lat lon } reporter { name phone email } history { actor details }
}
... on PublicCase { ticket status supportCount location { lat lon } }
"""


@pytest.mark.parametrize("spec", [s for s in CALLERS if s is not None], ids=str)
@pytest.mark.parametrize("action", list(MUTATIONS), ids=str)
async def test_mutations_answer_with_what_the_caller_may_see(
    graphql: Any,
    session: AsyncSession,
    shared_data_dir: Path,
    target: Any,
    action: Action,
    spec: str,
) -> None:
    if not mutation_allowed(action, spec):
        return  # refused: test_mutation_matrix
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, KELURAHAN)
    other = await make_case(session, lat=lat, lon=lon)
    field, _ = MUTATIONS[action]
    document = (
        f"mutation($ticket: String!, $other: String!) {{ r: {field} {{ {FULL_VIEW} }} }}"
        if "$other" in field
        else f"mutation($ticket: String!) {{ r: {field} {{ {FULL_VIEW} }} }}"
    )
    variables: dict[str, object] = {"ticket": target.ticket, "other": other.ticket}
    if "$other" not in field:
        variables.pop("other")
    body = await graphql(document, variables, as_=spec)
    assert "errors" not in body, body
    result = body["data"]["r"]
    if result["__typename"] not in {"Case", "PublicCase"}:
        return  # a refusal (the target's status does not allow it)
    assert result["ticket"] == target.ticket
    if CALLERS[spec]:
        assert result["__typename"] == "Case", body
    else:
        # A partner supporting another partner's case: the public view, no more.
        assert result["__typename"] == "PublicCase", body
        text = str(body)
        for private in (target.title, target.description, target.address, "media.pot.example"):
            assert private is None or private not in text, private
        _no_pii(body)
        assert result["supportCount"] == 1
        assert result["location"] == {"lat": round(lat, 3), "lon": round(lon, 3)}


@pytest.mark.parametrize("spec", list(CALLERS), ids=str)
async def test_submit_matrix(graphql: Any, spec: str | None) -> None:
    body = await graphql(SUBMIT, {"input": report_input(source="POT")}, as_=spec)
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
    if spec == "partner:POT":
        assert body["data"]["submitReport"]["__typename"] == "Case", body
    elif spec == "partner:SOROT":
        # A key of SOROT cannot submit in POT's name.
        assert body["data"]["submitReport"]["__typename"] == "ValidationError"
    else:
        assert codes & REFUSED, body


CASE_QUERY = """
query($ticket: String!) {
  case(ticket: $ticket) { ticket title reporter { name phone email } }
  cases(first: 100) { edges { node { ticket reporter { phone email } } } }
  publicCase(ticket: $ticket) { ticket status location { lat lon } }
}
"""


@pytest.mark.parametrize("spec", list(CALLERS), ids=str)
async def test_read_matrix_and_reporter_privacy(
    graphql: Any, target: Any, spec: str | None
) -> None:
    if spec is None:
        body = await graphql(
            "query($ticket: String!) { case(ticket: $ticket) { ticket reporter { phone } } }",
            {"ticket": target.ticket},
            as_=None,
        )
        assert {e["extensions"]["code"] for e in body["errors"]} == {"UNAUTHENTICATED"}
        _no_pii(body)
        public = await graphql(
            "query($t: String!) { publicCase(ticket: $t) { ticket location { lat } } }",
            {"t": target.ticket},
            as_=None,
        )
        assert public["data"]["publicCase"]["ticket"] == target.ticket
        return
    body = await graphql(CASE_QUERY, {"ticket": target.ticket}, as_=spec)
    data = body["data"]
    listed = {e["node"]["ticket"] for e in data["cases"]["edges"]}
    assert data["publicCase"]["ticket"] == target.ticket
    if CALLERS[spec]:
        assert data["case"]["ticket"] == target.ticket
        assert target.ticket in listed
        sees_reporter = grant(spec) != Role.ADMIN.value
        if sees_reporter:
            assert data["case"]["reporter"] == {
                "name": "Pelapor Rahasia",
                "phone": PHONE,
                "email": EMAIL,
            }
        else:
            assert data["case"]["reporter"] is None
            _no_pii(body)
    else:
        assert data["case"] is None
        assert target.ticket not in listed
        _no_pii(body)


@pytest.mark.parametrize("spec", list(CALLERS), ids=str)
async def test_anonymous_reports_hide_the_reporter_from_all_but_poc_operators(
    graphql: Any, session: AsyncSession, shared_data_dir: Path, spec: str | None
) -> None:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, KELURAHAN)
    case = await make_case(
        session,
        lat=lat,
        lon=lon,
        anonymous=True,
        reporter=ReporterInput(name="Pelapor Rahasia", phone="0812-9876-5432", email=EMAIL),
    )
    body = await graphql(CASE_QUERY, {"ticket": case.ticket}, as_=spec)
    if spec == "POC_OPERATOR":
        assert body["data"]["case"]["reporter"]["phone"] == PHONE
    else:
        _no_pii(body)


async def test_confidential_cases_are_invisible_to_the_public(
    graphql: Any, session: AsyncSession
) -> None:
    case = await make_case(session, confidential=True)
    body = await graphql(
        "query($t: String!) { publicCase(ticket: $t) { ticket } "
        "publicCases(first: 100) { edges { node { ticket } } } }",
        {"t": case.ticket},
        as_=None,
    )
    assert body["data"]["publicCase"] is None
    assert case.ticket not in str(body)


async def test_admin_mutations_are_for_admins_only(graphql: Any) -> None:
    document = 'mutation { addHoliday(input: {date: "2031-01-02", name: "Uji"}) { __typename } }'
    for spec in CALLERS:
        body = await graphql(document, as_=spec)
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
        if spec == "ADMIN":
            assert not codes, body
        else:
            assert codes & REFUSED, (spec, body)


STATS_QUERY = """
query($from: DateTime!, $to: DateTime!) {
  caseStats(groupBy: KELURAHAN, from: $from, to: $to) { total { received } }
}
"""


@pytest.mark.parametrize("spec", list(CALLERS), ids=str)
async def test_statistics_count_only_cases_in_scope(
    graphql: Any, target: Any, spec: str | None
) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    window = {
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=1)).isoformat(),
    }
    body = await graphql(STATS_QUERY, window, as_=spec)
    if spec is None:
        assert {e["extensions"]["code"] for e in body["errors"]} == {"UNAUTHENTICATED"}
        return
    assert "errors" not in body, body
    received = body["data"]["caseStats"]["total"]["received"]
    # Other tests never commit cases, so the target is the only case in the window.
    assert received == (1 if CALLERS[spec] else 0)
