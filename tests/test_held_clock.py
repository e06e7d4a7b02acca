"""The service clock stands still while a case is on hold: a held case is never
overdue (on the case, in the backlog, in the most-overdue queue), and resuming
moves its due time on by the time it was held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import true
from sqlalchemy.ext.asyncio import AsyncSession

from domain.lifecycle.status_changes import hold_case, resume_case
from tests.factories import make_case

pytestmark = pytest.mark.usefixtures("reference_data")


@pytest.fixture
def caller() -> str:
    return "POC_OPERATOR"


async def test_a_held_case_is_never_overdue(graphql: Any, session: AsyncSession) -> None:
    held = await make_case(session, title="Ditunda lama")
    running = await make_case(session, title="Berjalan lama")
    for case in (held, running):
        case.due_at = datetime.now(UTC) - timedelta(days=2)
    await session.flush()
    await hold_case(
        session=session,
        ticket=held.ticket,
        scope=true(),
        actor="test",
        now=datetime.now(UTC),
        reason=None,
    )

    query = "query($t: String!) { case(ticket: $t) { status overdue } }"
    assert (await graphql(query, {"t": held.ticket}))["data"]["case"] == {
        "status": "ON_HOLD",
        "overdue": False,
    }
    assert (await graphql(query, {"t": running.ticket}))["data"]["case"]["overdue"] is True

    queue = await graphql("{ overdueCases(first: 100) { ticket } }")
    tickets = {c["ticket"] for c in queue["data"]["overdueCases"]}
    assert running.ticket in tickets and held.ticket not in tickets

    backlog = await graphql("{ caseBacklog(groupBy: STATUS) { key open overdue } }")
    by_status = {g["key"]: g for g in backlog["data"]["caseBacklog"]}
    assert by_status["ON_HOLD"]["open"] >= 1 and by_status["ON_HOLD"]["overdue"] == 0


async def test_resuming_moves_the_due_time_on_by_the_time_held(session: AsyncSession) -> None:
    case = await make_case(session, title="Ditunda tiga jam")
    due = case.due_at
    held_at = datetime.now(UTC)
    await hold_case(
        session=session, ticket=case.ticket, scope=true(), actor="test", now=held_at, reason=None
    )
    resumed = await resume_case(
        session=session,
        ticket=case.ticket,
        scope=true(),
        actor="test",
        now=held_at + timedelta(hours=3),
    )
    assert resumed.status == "RECEIVED"
    assert resumed.due_at == due + timedelta(hours=3)
