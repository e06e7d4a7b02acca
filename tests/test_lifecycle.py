"""The case lifecycle through GraphQL: the transition table, each change, its history,
and that a refused change writes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, text, true
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.errors import InvalidTransition, ReopenWindowClosed
from core.settings import Settings
from domain.lifecycle.detail_changes import assign_case
from domain.lifecycle.status_changes import close_case, reopen_case, verify_case
from domain.lifecycle.transitions import ASSIGNABLE, TRANSITIONS, CaseAction, allowed_actions
from domain.working_days import JAKARTA
from models import Case, CaseEvent, CaseStatus, CaseSupport, Category, Dinas, Holiday, RoutingRule
from tests import bekasi
from tests.conftest import wipe_committed_cases
from tests.factories import SUBMIT, make_case, report_input

pytestmark = pytest.mark.usefixtures("reference_data")


@pytest.fixture
def caller() -> str:
    return "POC_OPERATOR"


CASE_FIELDS = """
ticket status statusLabel allowedActions updatedAt
assignedTo rejectionReason resolutionNote evidenceUrls resolvedAt closedAt
duplicateOf { ticket } supportCount rating
dinas { code } kelurahan { code } kecamatan { code } location { lat lon }
routing { reason snapped rule { id } }
history { type actor at details }
"""

REFUSALS = """
... on InvalidTransition { message currentStatus allowedActions }
... on ValidationError { message fields { field message } }
... on CaseNotFound { ticket message }
"""

# Members of a mutation's result union besides Case and the REFUSALS.
EXTRA_RESULTS = {
    "rerouteCase": "... on OutsideJurisdiction { distanceM message nearestKelurahan { code } }",
    "reopenCase": "... on ReopenWindowClosed { message reopenableUntil }",
    # Another partner's case is answered with its public view.
    "supportCase": "... on PublicCase { ticket supportCount }",
}

# Each mutation's arguments besides `ticket`, as GraphQL variable definitions.
SIGNATURES = {
    "verifyCase": {},
    "holdCase": {"reason": "String"},
    "resumeCase": {},
    "rejectCase": {"reason": "RejectionReason!", "note": "String"},
    "assignCase": {"officer": "String!"},
    "rerouteCase": {"reason": "String!", "dinasCode": "String", "location": "LatLonInput"},
    "startWork": {},
    "resolveCase": {"note": "String!", "evidenceUrls": "[String!]!"},
    "closeCase": {},
    "reopenCase": {"reason": "String!"},
    "commentCase": {"text": "String!"},
    "mergeDuplicate": {"intoTicket": "String!"},
    "supportCase": {"citizenId": "String!"},
    "rateCase": {"rating": "Int!", "comment": "String"},
}

EVIDENCE = ["https://media.dbmsda.example/foto/tambal-1.jpg"]

# A valid call of each action of the table (MARK_DUPLICATE gets its target later).
ACTION_CALLS: dict[CaseAction, tuple[str, dict[str, Any]]] = {
    CaseAction.VERIFY: ("verifyCase", {}),
    CaseAction.HOLD: ("holdCase", {"reason": "menunggu foto tambahan"}),
    CaseAction.RESUME: ("resumeCase", {}),
    CaseAction.REJECT: ("rejectCase", {"reason": "INVALID", "note": "lokasi tidak jelas"}),
    CaseAction.START: ("startWork", {}),
    CaseAction.RESOLVE: (
        "resolveCase",
        {"note": "Lubang sudah ditambal", "evidenceUrls": EVIDENCE},
    ),
    CaseAction.CLOSE: ("closeCase", {}),
    CaseAction.REOPEN: ("reopenCase", {"reason": "Lubangnya masih ada"}),
    CaseAction.MARK_DUPLICATE: ("mergeDuplicate", {}),
}

# How to bring a new (RECEIVED) case to each status through the API.
PATHS: dict[CaseStatus, list[CaseAction]] = {
    CaseStatus.RECEIVED: [],
    CaseStatus.VERIFIED: [CaseAction.VERIFY],
    CaseStatus.ON_HOLD: [CaseAction.HOLD],
    CaseStatus.IN_PROGRESS: [CaseAction.VERIFY, CaseAction.START],
    CaseStatus.RESOLVED: [CaseAction.VERIFY, CaseAction.START, CaseAction.RESOLVE],
    CaseStatus.CLOSED: [CaseAction.VERIFY, CaseAction.START, CaseAction.RESOLVE, CaseAction.CLOSE],
    CaseStatus.REOPENED: [
        CaseAction.VERIFY,
        CaseAction.START,
        CaseAction.RESOLVE,
        CaseAction.REOPEN,
    ],
    CaseStatus.REJECTED: [CaseAction.REJECT],
    CaseStatus.DUPLICATE: [CaseAction.MARK_DUPLICATE],
}


def document(name: str) -> str:
    params = {"ticket": "String!", **SIGNATURES[name]}
    definitions = ", ".join(f"${p}: {t}" for p, t in params.items())
    arguments = ", ".join(f"{p}: ${p}" for p in params)
    selection = (
        f"__typename ... on Case {{ {CASE_FIELDS} }} {REFUSALS} {EXTRA_RESULTS.get(name, '')}"
    )
    return f"mutation({definitions}) {{ result: {name}({arguments}) {{ {selection} }} }}"


async def act(
    graphql: Any, name: str, ticket: str, *, as_: str = "default", **arguments: Any
) -> dict[str, Any]:
    body = await graphql(document(name), {"ticket": ticket, **arguments}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["result"]
    return result


async def read(graphql: Any, ticket: str) -> dict[str, Any]:
    body = await graphql(
        f"query($t: String!) {{ case(ticket: $t) {{ __typename {CASE_FIELDS} }} }}", {"t": ticket}
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["case"]
    return result


async def do(
    graphql: Any, action: CaseAction, ticket: str, *, into: str | None = None
) -> dict[str, Any]:
    name, arguments = ACTION_CALLS[action]
    if action is CaseAction.MARK_DUPLICATE:
        assert into is not None
        arguments = {"intoTicket": into}
    return await act(graphql, name, ticket, **arguments)


async def case_in(
    graphql: Any, session: AsyncSession, status: CaseStatus, **overrides: Any
) -> tuple[str, str]:
    """A new case brought to `status` through the API; returns it and a spare case's
    ticket (the target of a merge)."""
    case = await make_case(session, **overrides)
    spare = await make_case(session)
    for action in PATHS[status]:
        result = await do(graphql, action, case.ticket, into=spare.ticket)
        assert result["__typename"] == "Case", result
    return case.ticket, spare.ticket


async def event_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(CaseEvent)) or 0)


def test_the_table_covers_every_action_and_reaches_every_status() -> None:
    assert set(TRANSITIONS) == set(CaseAction)
    targets = {t.target for t in TRANSITIONS.values()} - {None}
    assert targets | {CaseStatus.RECEIVED} == set(CaseStatus)
    assert allowed_actions(CaseStatus.RECEIVED) == (
        CaseAction.VERIFY,
        CaseAction.HOLD,
        CaseAction.REJECT,
        CaseAction.MARK_DUPLICATE,
    )
    for terminal in (CaseStatus.CLOSED, CaseStatus.REJECTED, CaseStatus.DUPLICATE):
        assert allowed_actions(terminal) == ()


LEGAL = [
    (status, action)
    for status in CaseStatus
    for action in CaseAction
    if status in TRANSITIONS[action].sources
]


@pytest.mark.parametrize(("status", "action"), LEGAL, ids=lambda v: str(v))
async def test_every_legal_transition(
    graphql: Any, session: AsyncSession, status: CaseStatus, action: CaseAction
) -> None:
    ticket, spare = await case_in(graphql, session, status)
    before = await read(graphql, ticket)
    assert before["status"] == status.value
    assert before["allowedActions"] == [a.value for a in allowed_actions(status)]

    after = await do(graphql, action, ticket, into=spare)

    assert after["__typename"] == "Case", after
    # Resuming returns to the status the case was held from: RECEIVED on this path.
    expected = TRANSITIONS[action].target or CaseStatus.RECEIVED
    assert after["status"] == expected.value
    assert after["allowedActions"] == [a.value for a in allowed_actions(expected)]
    assert datetime.fromisoformat(after["updatedAt"]) > datetime.fromisoformat(before["updatedAt"])
    assert len(after["history"]) == len(before["history"]) + 1
    event = after["history"][-1]
    assert event["type"] == TRANSITIONS[action].event.value
    assert event["actor"] == "staff:test-poc_operator"
    assert event["details"]["from"] == status.value
    assert event["details"]["to"] == expected.value
    assert event["at"] == after["updatedAt"]


@pytest.mark.parametrize("status", list(CaseStatus), ids=lambda v: str(v))
async def test_every_illegal_transition_is_refused_naming_the_allowed_ones(
    graphql: Any, session: AsyncSession, status: CaseStatus
) -> None:
    ticket, spare = await case_in(graphql, session, status)
    before = await read(graphql, ticket)
    events = await event_count(session)
    allowed = [a.value for a in allowed_actions(status)]
    refused = [a for a in CaseAction if status not in TRANSITIONS[a].sources]
    assert refused
    for action in refused:
        result = await do(graphql, action, ticket, into=spare)
        assert result["__typename"] == "InvalidTransition", (action, result)
        assert result["currentStatus"] == status.value
        assert result["allowedActions"] == allowed
        assert f"it is {status.value}" in result["message"]
        assert (", ".join(allowed) or "none") in result["message"]
    assert await read(graphql, ticket) == before
    assert await event_count(session) == events


@pytest.mark.parametrize("held_from", [CaseStatus.RECEIVED, CaseStatus.VERIFIED])
async def test_resume_returns_to_the_status_it_was_held_from(
    graphql: Any, session: AsyncSession, held_from: CaseStatus
) -> None:
    ticket, _ = await case_in(graphql, session, held_from)
    held = await act(graphql, "holdCase", ticket, reason="menunggu konfirmasi pelapor")
    assert held["status"] == "ON_HOLD" and held["statusLabel"] == "Ditunda"
    assert held["history"][-1]["details"] == {
        "from": held_from.value,
        "to": "ON_HOLD",
        "reason": "menunggu konfirmasi pelapor",
    }
    resumed = await act(graphql, "resumeCase", ticket)
    assert resumed["status"] == held_from.value
    assert resumed["history"][-1]["type"] == "RESUMED"
    model = await session.scalar(
        select(Case).where(Case.ticket == ticket).execution_options(populate_existing=True)
    )
    assert model is not None and model.held_from_status is None

    # A hold without a reason is allowed, and a second hold-resume works the same.
    again = await act(graphql, "holdCase", ticket)
    assert again["history"][-1]["details"] == {"from": held_from.value, "to": "ON_HOLD"}
    assert (await act(graphql, "resumeCase", ticket))["status"] == held_from.value


@pytest.mark.parametrize("reason", ["NOT_OUR_AUTHORITY", "INVALID", "SPAM"])
@pytest.mark.parametrize("status", [CaseStatus.RECEIVED, CaseStatus.VERIFIED, CaseStatus.ON_HOLD])
async def test_reject_with_each_reason(
    graphql: Any, session: AsyncSession, status: CaseStatus, reason: str
) -> None:
    ticket, _ = await case_in(graphql, session, status)
    result = await act(graphql, "rejectCase", ticket, reason=reason, note="  jalan milik provinsi ")
    assert result["status"] == "REJECTED" and result["statusLabel"] == "Ditolak"
    assert result["rejectionReason"] == reason
    assert result["allowedActions"] == []
    assert result["history"][-1]["details"] == {
        "from": status.value,
        "to": "REJECTED",
        "reason": reason,
        "note": "jalan milik provinsi",
    }


async def test_reject_needs_a_known_reason(graphql: Any, session: AsyncSession) -> None:
    case = await make_case(session)
    body = await graphql(document("rejectCase"), {"ticket": case.ticket, "reason": "BOSAN"})
    assert "errors" in body and "RejectionReason" in body["errors"][0]["message"]


async def test_unknown_ticket(graphql: Any) -> None:
    result = await act(graphql, "verifyCase", " bks-0001-000000 ")
    assert result == {
        "__typename": "CaseNotFound",
        "ticket": "bks-0001-000000",
        "message": "no case has the ticket 'bks-0001-000000'",
    }


async def test_tickets_are_matched_ignoring_case_and_spaces(
    graphql: Any, session: AsyncSession
) -> None:
    case = await make_case(session)
    result = await act(graphql, "verifyCase", f"  {case.ticket.lower()} ")
    assert result["ticket"] == case.ticket and result["status"] == "VERIFIED"


# Assigning


async def test_assign_an_open_case_and_reassign(graphql: Any, session: AsyncSession) -> None:
    ticket, _ = await case_in(graphql, session, CaseStatus.IN_PROGRESS)
    first = await act(graphql, "assignCase", ticket, officer=" Budi Santoso ")
    assert first["status"] == "IN_PROGRESS" and first["assignedTo"] == "Budi Santoso"
    assert first["history"][-1]["type"] == "ASSIGNED"
    assert first["history"][-1]["details"] == {"from": None, "to": "Budi Santoso"}
    second = await act(graphql, "assignCase", ticket, officer="Rina")
    assert second["history"][-1]["details"] == {"from": "Budi Santoso", "to": "Rina"}

    blank = await act(graphql, "assignCase", ticket, officer="   ")
    assert blank["__typename"] == "ValidationError"
    assert blank["fields"] == [{"field": "officer", "message": "is required"}]


@pytest.mark.parametrize("status", [s for s in CaseStatus if s not in ASSIGNABLE])
async def test_only_open_cases_are_assigned(
    graphql: Any, session: AsyncSession, status: CaseStatus
) -> None:
    ticket, _ = await case_in(graphql, session, status)
    result = await act(graphql, "assignCase", ticket, officer="Budi")
    assert result["__typename"] == "InvalidTransition"
    assert result["currentStatus"] == status.value
    assert result["allowedActions"] == [a.value for a in allowed_actions(status)]
    assert "only open cases are assigned" in result["message"]
    assert (await read(graphql, ticket))["assignedTo"] is None


# Rerouting


async def test_reroute_to_another_dinas(graphql: Any, session: AsyncSession) -> None:
    case = await make_case(session)
    before = await read(graphql, case.ticket)
    assert before["dinas"]["code"] == "DBMSDA"
    result = await act(
        graphql, "rerouteCase", case.ticket, dinasCode="dishub", reason="jalan ini wewenang Dishub"
    )
    assert result["__typename"] == "Case", result
    assert result["dinas"]["code"] == "DISHUB"
    assert result["status"] == "RECEIVED"
    assert result["kelurahan"] == before["kelurahan"]
    assert result["routing"]["reason"] == "rerouted to DISHUB: jalan ini wewenang Dishub"
    assert result["routing"]["rule"] is None
    event = result["history"][-1]
    assert event["type"] == "REROUTED" and event["actor"] == "staff:test-poc_operator"
    assert event["details"]["reason"] == "jalan ini wewenang Dishub"
    assert event["details"]["before"]["dinas"] == "DBMSDA"
    assert event["details"]["after"]["dinas"] == "DISHUB"
    assert event["details"]["before"]["kelurahan"] == event["details"]["after"]["kelurahan"]

    same = await act(graphql, "rerouteCase", case.ticket, dinasCode="DISHUB", reason="lagi")
    assert same["__typename"] == "ValidationError"
    assert same["fields"][0]["field"] == "dinasCode" and "already with DISHUB" in same["message"]


async def test_reroute_by_corrected_location_looks_up_and_routes_again(
    graphql: Any, session: AsyncSession, shared_data_dir: Path
) -> None:
    lat1, lon1 = bekasi.interior_lat_lon(shared_data_dir, "32.75.09.1002")
    lat2, lon2 = bekasi.interior_lat_lon(shared_data_dir, "32.75.08.1003")
    # Roads in kecamatan 32.75.08 belong to Dishub (say, a national road).
    category_id = await session.scalar(select(Category.id).where(Category.code == "JALAN_RUSAK"))
    dishub = await session.scalar(select(Dinas.id).where(Dinas.code == "DISHUB"))
    rule = RoutingRule(
        category_id=category_id,
        dinas_id=dishub,
        priority=10,
        description="jalan nasional Kalimalang",
        kecamatan_codes=["32.75.08"],
        kelurahan_codes=[],
    )
    session.add(rule)
    await session.flush()
    case = await make_case(session, lat=lat1, lon=lon1)

    result = await act(
        graphql,
        "rerouteCase",
        case.ticket,
        location={"lat": lat2, "lon": lon2},
        reason="pin pelapor salah, lokasi sebenarnya di seberang",
    )
    assert result["__typename"] == "Case", result
    assert result["kelurahan"]["code"] == "32.75.08.1003"
    assert result["kecamatan"]["code"] == "32.75.08"
    assert result["location"] == {"lat": pytest.approx(lat2), "lon": pytest.approx(lon2)}
    assert result["dinas"]["code"] == "DISHUB"
    assert result["routing"]["rule"] == {"id": str(rule.id)}
    assert "jalan nasional Kalimalang" in result["routing"]["reason"]
    details = result["history"][-1]["details"]
    assert result["history"][-1]["type"] == "REROUTED"
    assert details["before"]["kelurahan"] == "32.75.09.1002"
    assert details["after"]["kelurahan"] == "32.75.08.1003"
    assert details["before"]["dinas"] == "DBMSDA" and details["after"]["dinas"] == "DISHUB"
    assert details["before"]["location"] == {"lat": pytest.approx(lat1), "lon": pytest.approx(lon1)}
    assert details["after"]["rule_id"] == rule.id
    assert details["reason"] == "pin pelapor salah, lokasi sebenarnya di seberang"

    # Back again: no rule applies there, so the category's default.
    back = await act(
        graphql, "rerouteCase", case.ticket, location={"lat": lat1, "lon": lon1}, reason="salah"
    )
    assert back["dinas"]["code"] == "DBMSDA"
    assert back["routing"]["rule"] is None
    assert back["routing"]["reason"] == "default dinas of category JALAN_RUSAK"


async def test_reroute_with_both_a_dinas_and_a_location(
    graphql: Any, session: AsyncSession, shared_data_dir: Path
) -> None:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, "32.75.01.1001")
    case = await make_case(session)
    result = await act(
        graphql,
        "rerouteCase",
        case.ticket,
        dinasCode="SATPOLPP",
        location={"lat": lat, "lon": lon},
        reason="bangunan liar menutup jalan",
    )
    assert result["kelurahan"]["code"] == "32.75.01.1001"
    assert result["dinas"]["code"] == "SATPOLPP"


async def test_reroute_outside_the_city_or_with_bad_input_writes_nothing(
    graphql: Any, session: AsyncSession
) -> None:
    case = await make_case(session)
    before = await read(graphql, case.ticket)
    outside = await act(
        graphql,
        "rerouteCase",
        case.ticket,
        location={"lat": -6.1754, "lon": 106.8272},
        reason="Monas",
    )
    assert outside["__typename"] == "OutsideJurisdiction"
    assert outside["distanceM"] > 10_000

    nothing = await act(graphql, "rerouteCase", case.ticket, reason="entah")
    assert nothing["__typename"] == "ValidationError"
    assert {f["field"] for f in nothing["fields"]} == {"dinasCode", "location"}

    no_reason = await act(graphql, "rerouteCase", case.ticket, dinasCode="DLH", reason=" ")
    assert no_reason["fields"] == [{"field": "reason", "message": "is required"}]

    unknown = await act(graphql, "rerouteCase", case.ticket, dinasCode="NOPE", reason="x")
    assert unknown["fields"] == [{"field": "dinasCode", "message": "no dinas has the code 'NOPE'"}]

    bad_point = await act(
        graphql, "rerouteCase", case.ticket, location={"lat": 95, "lon": 107}, reason="x"
    )
    assert bad_point["__typename"] == "ValidationError"
    assert bad_point["fields"][0]["field"].startswith("location.")

    assert await read(graphql, case.ticket) == before


async def test_closed_cases_are_not_rerouted(graphql: Any, session: AsyncSession) -> None:
    ticket, _ = await case_in(graphql, session, CaseStatus.CLOSED)
    result = await act(graphql, "rerouteCase", ticket, dinasCode="DLH", reason="x")
    assert result["__typename"] == "InvalidTransition"
    assert result["currentStatus"] == "CLOSED" and result["allowedActions"] == []


# Resolving


async def test_resolve_needs_a_note_and_https_evidence(graphql: Any, session: AsyncSession) -> None:
    ticket, _ = await case_in(graphql, session, CaseStatus.IN_PROGRESS)
    before = await read(graphql, ticket)

    empty = await act(graphql, "resolveCase", ticket, note="  ", evidenceUrls=[])
    assert empty["__typename"] == "ValidationError"
    assert [f["field"] for f in empty["fields"]] == ["note", "evidenceUrls"]

    insecure = await act(
        graphql,
        "resolveCase",
        ticket,
        note="sudah",
        evidenceUrls=["http://media.example/a.jpg", "https://media.example/b.jpg", "foto.jpg"],
    )
    assert insecure["fields"] == [
        {"field": "evidenceUrls[0]", "message": "must be an absolute https:// URL"},
        {"field": "evidenceUrls[2]", "message": "must be an absolute https:// URL"},
    ]
    too_many = await act(
        graphql,
        "resolveCase",
        ticket,
        note="sudah",
        evidenceUrls=[f"https://media.example/{i}.jpg" for i in range(11)],
    )
    assert too_many["fields"][0]["field"] == "evidenceUrls"
    assert await read(graphql, ticket) == before

    done = await act(
        graphql,
        "resolveCase",
        ticket,
        note="Lubang ditambal\r\ndengan aspal dingin",
        evidenceUrls=[" https://media.example/after.jpg "],
    )
    assert done["status"] == "RESOLVED" and done["statusLabel"] == "Selesai"
    assert done["resolutionNote"] == "Lubang ditambal\ndengan aspal dingin"
    assert done["evidenceUrls"] == ["https://media.example/after.jpg"]
    assert done["resolvedAt"] == done["updatedAt"]
    assert done["history"][-1]["details"] == {
        "from": "IN_PROGRESS",
        "to": "RESOLVED",
        "note": "Lubang ditambal\ndengan aspal dingin",
        "evidence_urls": ["https://media.example/after.jpg"],
    }


# Closing


async def test_close_by_hand(graphql: Any, session: AsyncSession) -> None:
    ticket, _ = await case_in(graphql, session, CaseStatus.RESOLVED)
    closed = await act(graphql, "closeCase", ticket)
    assert closed["status"] == "CLOSED" and closed["statusLabel"] == "Ditutup"
    assert closed["closedAt"] == closed["updatedAt"]
    assert closed["history"][-1]["details"] == {
        "from": "RESOLVED",
        "to": "CLOSED",
        "automatic": False,
    }


async def test_close_case_for_the_sweeper(graphql: Any, session: AsyncSession) -> None:
    ticket, _ = await case_in(graphql, session, CaseStatus.RESOLVED)
    case = await session.scalar(select(Case).where(Case.ticket == ticket))
    assert case is not None
    now = datetime.now(UTC)
    await close_case(session=session, case=case, actor="system", now=now, automatic=True)
    assert case.status == "CLOSED" and case.closed_at == now and case.updated_at == now
    result = await read(graphql, ticket)
    assert result["history"][-1]["type"] == "CLOSED"
    assert result["history"][-1]["actor"] == "system"
    assert result["history"][-1]["details"]["automatic"] is True


async def test_the_sweeper_leaves_a_case_reopened_since_it_read_it(
    graphql: Any, session: AsyncSession
) -> None:
    ticket, _ = await case_in(graphql, session, CaseStatus.RESOLVED)
    stale = await session.scalar(
        select(Case).where(Case.ticket == ticket).execution_options(populate_existing=True)
    )
    assert stale is not None and stale.status == "RESOLVED"
    assert (await act(graphql, "reopenCase", ticket, reason="belum beres"))["status"] == "REOPENED"
    with pytest.raises(InvalidTransition) as refused:
        await close_case(
            session=session, case=stale, actor="system", now=datetime.now(UTC), automatic=True
        )
    assert refused.value.status == "REOPENED"
    assert stale.status == "REOPENED"


# Reopening


async def _set_resolved_at(session: AsyncSession, ticket: str, moment: datetime) -> None:
    await session.execute(
        text('UPDATE "case" SET resolved_at = :at WHERE ticket = :ticket'),
        {"at": moment, "ticket": ticket},
    )


async def test_reopen_within_the_window_then_work_again(
    graphql: Any, session: AsyncSession
) -> None:
    ticket, _ = await case_in(graphql, session, CaseStatus.RESOLVED)
    await _set_resolved_at(session, ticket, datetime.now(UTC) - timedelta(days=1))
    reopened = await act(graphql, "reopenCase", ticket, reason="Lubangnya masih ada")
    assert reopened["status"] == "REOPENED" and reopened["statusLabel"] == "Dibuka kembali"
    assert reopened["allowedActions"] == ["START", "MARK_DUPLICATE"]
    assert reopened["history"][-1]["details"] == {
        "from": "RESOLVED",
        "to": "REOPENED",
        "reason": "Lubangnya masih ada",
    }
    # The disputed resolution stays visible until the next one.
    assert reopened["resolutionNote"] == "Lubang sudah ditambal"
    started = await act(graphql, "startWork", ticket)
    assert started["status"] == "IN_PROGRESS"
    again = await do(graphql, CaseAction.RESOLVE, ticket)
    assert again["status"] == "RESOLVED" and again["resolvedAt"] == again["updatedAt"]

    no_reason = await act(graphql, "reopenCase", ticket, reason="")
    assert no_reason["fields"] == [{"field": "reason", "message": "is required"}]


async def test_reopen_after_the_window_is_refused_clearly(
    graphql: Any, session: AsyncSession
) -> None:
    ticket, _ = await case_in(graphql, session, CaseStatus.RESOLVED)
    resolved_at = datetime.now(UTC) - timedelta(days=60)
    await _set_resolved_at(session, ticket, resolved_at)
    before = await read(graphql, ticket)
    result = await act(graphql, "reopenCase", ticket, reason="masih rusak")
    assert result["__typename"] == "ReopenWindowClosed", result
    assert resolved_at < datetime.fromisoformat(result["reopenableUntil"]) < datetime.now(UTC)
    assert "within 10 working days" in result["message"]
    assert "submit a new report" in result["message"]
    assert await read(graphql, ticket) == before


async def test_the_reopen_window_counts_working_days_in_jakarta(
    graphql: Any, session: AsyncSession
) -> None:
    ticket, _ = await case_in(graphql, session, CaseStatus.RESOLVED)
    # Friday 7 March 2031, 10:00 WIB: ten working days end on Friday 21 March.
    resolved_at = datetime(2031, 3, 7, 10, 0, tzinfo=JAKARTA)
    await _set_resolved_at(session, ticket, resolved_at)
    end = datetime(2031, 3, 22, 0, 0, tzinfo=JAKARTA)

    async def reopen(now: datetime) -> None:
        async with session.begin_nested():
            await reopen_case(
                session=session,
                ticket=ticket,
                scope=true(),
                actor="pelapor",
                now=now,
                reason="belum",
                window_working_days=10,
            )
            raise _Undo

    with pytest.raises(ReopenWindowClosed) as late:
        await reopen(end)
    assert late.value.reopenable_until == end
    with pytest.raises(_Undo):
        await reopen(end - timedelta(seconds=1))

    # A holiday in the window moves its end by a working day, over the weekend.
    session.add(Holiday(day=datetime(2031, 3, 12).date(), name="Libur uji"))
    await session.flush()
    with pytest.raises(_Undo):
        await reopen(end)
    with pytest.raises(ReopenWindowClosed) as later:
        await reopen(datetime(2031, 3, 25, 0, 0, tzinfo=JAKARTA))
    assert later.value.reopenable_until == datetime(2031, 3, 25, 0, 0, tzinfo=JAKARTA)


class _Undo(Exception):
    """Rolls a savepoint back after a change succeeded."""


# Comments


@pytest.mark.parametrize("status", list(CaseStatus), ids=lambda v: str(v))
async def test_comment_in_any_status(
    graphql: Any, session: AsyncSession, status: CaseStatus
) -> None:
    ticket, _ = await case_in(graphql, session, status)
    result = await act(
        graphql, "commentCase", ticket, text="Petugas sudah ke lokasi.\nFoto menyusul."
    )
    assert result["status"] == status.value
    assert result["history"][-1] == {
        "type": "COMMENTED",
        "actor": "staff:test-poc_operator",
        "at": result["updatedAt"],
        "details": {"text": "Petugas sudah ke lokasi.\nFoto menyusul."},
    }


async def test_a_comment_needs_text(graphql: Any, session: AsyncSession) -> None:
    case = await make_case(session)
    events = await event_count(session)
    result = await act(graphql, "commentCase", case.ticket, text=" \n ")
    assert result["fields"] == [{"field": "text", "message": "is required"}]
    long = await act(graphql, "commentCase", case.ticket, text="x" * 5001)
    assert long["fields"][0]["message"].startswith("must be at most 5,000 characters")
    assert await event_count(session) == events


# Duplicates


@pytest.mark.parametrize("status", sorted(TRANSITIONS[CaseAction.MARK_DUPLICATE].sources))
async def test_merge_an_open_case_into_another(
    graphql: Any, session: AsyncSession, status: CaseStatus
) -> None:
    ticket, _ = await case_in(graphql, session, status)
    target = await make_case(session)
    merged = await act(graphql, "mergeDuplicate", ticket, intoTicket=target.ticket.lower())
    assert merged["status"] == "DUPLICATE" and merged["statusLabel"] == "Duplikat"
    assert merged["duplicateOf"] == {"ticket": target.ticket}
    assert merged["history"][-1]["type"] == "MARKED_DUPLICATE"
    assert merged["history"][-1]["details"] == {
        "from": status.value,
        "to": "DUPLICATE",
        "into": target.ticket,
    }
    kept = await read(graphql, target.ticket)
    assert kept["status"] == "RECEIVED" and kept["duplicateOf"] is None
    assert kept["history"][-1]["type"] == "DUPLICATE_MERGED"
    assert kept["history"][-1]["details"] == {"merged": ticket}
    assert kept["history"][-1]["actor"] == "staff:test-poc_operator"
    assert kept["updatedAt"] == merged["updatedAt"]
    model = await session.scalar(
        select(Case).where(Case.ticket == ticket).execution_options(populate_existing=True)
    )
    assert model is not None and model.held_from_status is None


async def test_merge_rules(graphql: Any, session: AsyncSession) -> None:
    case = await make_case(session)
    other = await make_case(session)
    events = await event_count(session)

    itself = await act(graphql, "mergeDuplicate", case.ticket, intoTicket=f" {case.ticket} ")
    assert itself["fields"] == [
        {"field": "intoTicket", "message": "a case cannot be a duplicate of itself"}
    ]
    missing = await act(graphql, "mergeDuplicate", case.ticket, intoTicket="BKS-0001-000001")
    assert missing["__typename"] == "CaseNotFound" and missing["ticket"] == "BKS-0001-000001"
    assert await event_count(session) == events

    # The target may be in any status but DUPLICATE: then the original is named.
    first = await act(graphql, "mergeDuplicate", other.ticket, intoTicket=case.ticket)
    assert first["status"] == "DUPLICATE"
    third = await make_case(session)
    chained = await act(graphql, "mergeDuplicate", third.ticket, intoTicket=other.ticket)
    assert chained["__typename"] == "ValidationError"
    assert chained["message"] == (
        f"intoTicket: case {other.ticket} is itself a duplicate of {case.ticket}: "
        f"merge into {case.ticket}"
    )
    closed, _ = await case_in(graphql, session, CaseStatus.CLOSED)
    into_closed = await act(graphql, "mergeDuplicate", third.ticket, intoTicket=closed)
    assert into_closed["duplicateOf"] == {"ticket": closed}


# Support


async def test_support_is_counted_once_per_citizen_of_each_partner(
    graphql: Any, session: AsyncSession
) -> None:
    case = await make_case(session)
    first = await act(graphql, "supportCase", case.ticket, citizenId="u-123", as_="partner:POT")
    assert first["supportCount"] == 1
    assert first["history"][-1]["type"] == "SUPPORTED"
    assert first["history"][-1]["details"] == {"source": "POT", "support_count": 1}
    assert "u-123" not in str(first["history"])

    repeat = await act(graphql, "supportCase", case.ticket, citizenId=" u-123 ", as_="partner:POT")
    assert repeat == first

    other_citizen = await act(
        graphql, "supportCase", case.ticket, citizenId="u-456", as_="partner:POT"
    )
    other_partner = await act(
        graphql, "supportCase", case.ticket, citizenId="u-123", as_="partner:SOROT"
    )
    assert other_citizen["supportCount"] == 2 and other_partner["supportCount"] == 3
    assert other_partner == {"__typename": "PublicCase", "ticket": case.ticket, "supportCount": 3}
    supporters = await session.scalars(
        select(CaseSupport.supporter).where(CaseSupport.case_id == case.id)
    )
    assert sorted(supporters) == ["POT:u-123", "POT:u-456", "SOROT:u-123"]
    history = (await read(graphql, case.ticket))["history"]
    assert [e["type"] for e in history].count("SUPPORTED") == 3


async def test_support_refusals_write_nothing(graphql: Any, session: AsyncSession) -> None:
    case = await make_case(session)
    closed, _ = await case_in(graphql, session, CaseStatus.CLOSED)
    events = await event_count(session)
    blank = await act(graphql, "supportCase", case.ticket, citizenId=" ", as_="partner:POT")
    assert blank["fields"] == [{"field": "citizenId", "message": "is required"}]
    shut = await act(graphql, "supportCase", closed, citizenId="u-1", as_="partner:POT")
    assert shut["__typename"] == "InvalidTransition" and shut["currentStatus"] == "CLOSED"
    assert await event_count(session) == events
    assert await session.scalar(select(func.count()).select_from(CaseSupport)) == 0


# Rating


async def test_rating_rules(graphql: Any, session: AsyncSession) -> None:
    ticket, _ = await case_in(graphql, session, CaseStatus.IN_PROGRESS)
    early = await act(graphql, "rateCase", ticket, as_="partner:POT", rating=5)
    assert early["__typename"] == "InvalidTransition"
    assert "only a RESOLVED or CLOSED case is rated" in early["message"]
    await do(graphql, CaseAction.RESOLVE, ticket)

    for bad in (0, 6):
        out_of_range = await act(graphql, "rateCase", ticket, as_="partner:POT", rating=bad)
        assert out_of_range["fields"] == [{"field": "rating", "message": "must be between 1 and 5"}]

    rated = await act(
        graphql, "rateCase", ticket, as_="partner:POT", rating=4, comment=" Cepat, terima kasih "
    )
    assert rated["rating"] == 4 and rated["status"] == "RESOLVED"
    assert rated["history"][-1]["type"] == "RATED"
    assert rated["history"][-1]["details"] == {"rating": 4, "comment": "Cepat, terima kasih"}

    twice = await act(graphql, "rateCase", ticket, as_="partner:POT", rating=1)
    assert twice["__typename"] == "ValidationError" and "rated once" in twice["message"]
    assert (await read(graphql, ticket))["rating"] == 4

    closed, _ = await case_in(graphql, session, CaseStatus.CLOSED)
    assert (await act(graphql, "rateCase", closed, as_="partner:POT", rating=2))["rating"] == 2


# Whose change, and concurrency


async def test_domain_changes_record_the_given_actor(session: AsyncSession) -> None:
    case = await make_case(session)
    now = datetime.now(UTC)
    await verify_case(
        session=session, ticket=case.ticket, scope=true(), actor="officer:budi", now=now
    )
    await assign_case(
        session=session,
        ticket=case.ticket,
        scope=true(),
        actor="operator:poc-1",
        now=now,
        officer="Budi",
    )
    events = (
        await session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        )
    ).all()
    assert [(e.type, e.actor) for e in events[-2:]] == [
        ("VERIFIED", "officer:budi"),
        ("ASSIGNED", "operator:poc-1"),
    ]
    assert case.updated_at == now


async def test_two_concurrent_transitions_cannot_both_pass(
    settings: Settings, engine: AsyncEngine, committed_credentials: Any
) -> None:
    """Real commits on separate connections: cleaned up afterwards."""
    from api.app import create_app

    app = create_app(settings)
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://patriot.test"
            ) as client,
        ):

            async def post(
                query: str, variables: dict[str, Any], as_: str = "POC_OPERATOR"
            ) -> dict[str, Any]:
                response = await client.post(
                    "/graphql",
                    json={"query": query, "variables": variables},
                    headers=committed_credentials(as_),
                )
                body: dict[str, Any] = response.json()
                assert "errors" not in body, body
                data: dict[str, Any] = body["data"]
                return data

            submitted = await post(
                SUBMIT, {"input": report_input(idempotencyKey="lc-race")}, "partner:POT"
            )
            ticket = submitted["submitReport"]["ticket"]
            verified = await asyncio.gather(
                *[post(document("verifyCase"), {"ticket": ticket}) for _ in range(12)]
            )
            outcomes = [r["result"] for r in verified]
            assert sum(o["__typename"] == "Case" for o in outcomes) == 1
            losers = [o for o in outcomes if o["__typename"] != "Case"]
            assert len(losers) == 11
            assert {(o["__typename"], o["currentStatus"]) for o in losers} == {
                ("InvalidTransition", "VERIFIED")
            }
            supported = await asyncio.gather(
                *[
                    post(
                        document("supportCase"),
                        {"ticket": ticket, "citizenId": "c-1"},
                        "partner:POT",
                    )
                    for _ in range(8)
                ]
            )
            assert {s["result"]["supportCount"] for s in supported} == {1}
        async with engine.connect() as conn:
            types = (
                await conn.scalars(
                    text(
                        'SELECT e.type FROM case_event e JOIN "case" c ON c.id = e.case_id '
                        "WHERE c.ticket = :t ORDER BY e.id"
                    ),
                    {"t": ticket},
                )
            ).all()
        assert types == ["CREATED", "ROUTED", "VERIFIED", "SUPPORTED"]
    finally:
        await wipe_committed_cases(engine)
