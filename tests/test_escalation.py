"""Escalating overdue cases and closing undisputed resolved ones, one sweep at a time."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from api.sweeper import Sweeper
from core.settings import Settings
from domain.escalation import (
    EscalationTarget,
    auto_close_cutoff,
    auto_close_resolved,
    escalate_overdue,
)
from domain.working_days import JAKARTA
from models import Case, CaseEvent, CaseStatus, EventType
from tests.factories import make_case

pytestmark = pytest.mark.usefixtures("reference_data")


@pytest.fixture
def caller() -> str:
    return "POC_OPERATOR"


POC_AFTER = timedelta(hours=24)


def _wib(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JAKARTA)


async def _overdue_case(session: AsyncSession, *, late_by: timedelta, **overrides: Any) -> Case:
    case = await make_case(session, **overrides)
    case.due_at = datetime.now(UTC) - late_by
    await session.flush()
    return case


async def _escalations(session: AsyncSession, case: Case) -> list[dict[str, Any]]:
    events = await session.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_id == case.id, CaseEvent.type == EventType.ESCALATED.value)
        .order_by(CaseEvent.id)
    )
    return [{"actor": e.actor, **e.details} for e in events]


async def _sweep(session: AsyncSession, now: datetime | None = None) -> list[Any]:
    return await escalate_overdue(
        session=session, now=now or datetime.now(UTC), poc_after=POC_AFTER
    )


async def test_an_overdue_case_goes_to_its_dinas(session: AsyncSession) -> None:
    case = await _overdue_case(session, late_by=timedelta(hours=2))
    now = datetime.now(UTC)
    escalations = await _sweep(session, now)
    assert [(e.case_id, e.level, e.to) for e in escalations] == [
        (case.id, 1, EscalationTarget.DINAS)
    ]
    assert case.escalation_level == 1 and case.escalated_at == now
    [event] = await _escalations(session, case)
    assert event["actor"] == "system"
    assert event["level"] == 1 and event["to"] == "DINAS" and event["dinas"] == "DBMSDA"
    assert 1.9 < event["overdue_by_hours"] < 2.1


async def test_a_very_late_case_goes_to_the_dinas_then_the_poc_in_one_sweep(
    session: AsyncSession,
) -> None:
    case = await _overdue_case(session, late_by=POC_AFTER + timedelta(hours=3))
    escalations = await _sweep(session)
    assert [(e.level, e.to) for e in escalations] == [
        (1, EscalationTarget.DINAS),
        (2, EscalationTarget.POC),
    ]
    events = await _escalations(session, case)
    assert [(e["level"], e["to"]) for e in events] == [(1, "DINAS"), (2, "POC")]
    assert all(e["dinas"] == "DBMSDA" and 26.9 < e["overdue_by_hours"] < 27.1 for e in events)
    assert case.escalation_level == 2


async def test_a_second_sweep_does_nothing(session: AsyncSession) -> None:
    late = await _overdue_case(session, late_by=timedelta(hours=1))
    very_late = await _overdue_case(session, late_by=POC_AFTER * 2)
    assert len(await _sweep(session)) == 3
    assert await _sweep(session) == []
    assert len(await _escalations(session, late)) == 1
    assert len(await _escalations(session, very_late)) == 2


async def test_the_poc_hears_of_a_case_only_once_its_grace_has_passed(
    session: AsyncSession,
) -> None:
    case = await _overdue_case(session, late_by=timedelta(hours=1))
    now = datetime.now(UTC)
    assert [e.level for e in await _sweep(session, now)] == [1]
    assert await _sweep(session, now + POC_AFTER - timedelta(hours=2)) == []
    escalations = await _sweep(session, now + POC_AFTER + timedelta(minutes=5))
    assert [(e.case_id, e.level, e.to) for e in escalations] == [(case.id, 2, EscalationTarget.POC)]


async def test_a_case_not_yet_due_is_left_alone(session: AsyncSession) -> None:
    case = await make_case(session)
    assert case.due_at > datetime.now(UTC)
    assert [e for e in await _sweep(session) if e.case_id == case.id] == []
    assert case.escalation_level == 0 and case.escalated_at is None


@pytest.mark.parametrize(
    "status",
    # ON_HOLD: the clock is stopped while a case is on hold.
    [CaseStatus.RESOLVED, CaseStatus.CLOSED, CaseStatus.ON_HOLD, CaseStatus.REJECTED],
)
async def test_cases_that_are_not_running_are_not_escalated(
    session: AsyncSession, status: CaseStatus
) -> None:
    case = await _overdue_case(session, late_by=POC_AFTER * 3)
    case.status = status.value
    await session.flush()
    assert [e for e in await _sweep(session) if e.case_id == case.id] == []
    assert case.escalation_level == 0
    assert await _escalations(session, case) == []


async def test_a_reopened_case_is_escalated(session: AsyncSession) -> None:
    case = await _overdue_case(session, late_by=timedelta(hours=1))
    case.status = CaseStatus.REOPENED.value
    await session.flush()
    assert [(e.case_id, e.level) for e in await _sweep(session)] == [(case.id, 1)]


async def test_a_kelurahan_office_case_goes_to_the_kelurahan(session: AsyncSession) -> None:
    case = await _overdue_case(
        session, late_by=POC_AFTER * 2, category_code="KEBERSIHAN_LINGKUNGAN"
    )
    escalations = await _sweep(session)
    assert [(e.level, e.to, e.dinas_code) for e in escalations] == [
        (1, EscalationTarget.KELURAHAN, "KELURAHAN"),
        (2, EscalationTarget.POC, "KELURAHAN"),
    ]
    assert [(e["level"], e["to"]) for e in await _escalations(session, case)] == [
        (1, "KELURAHAN"),
        (2, "POC"),
    ]


async def test_a_sweep_takes_at_most_a_batch_most_overdue_first(session: AsyncSession) -> None:
    cases = [await _overdue_case(session, late_by=timedelta(hours=hours)) for hours in (1, 3, 2)]
    first = await escalate_overdue(
        session=session, now=datetime.now(UTC), poc_after=POC_AFTER, batch_size=2
    )
    assert [e.case_id for e in first] == [cases[1].id, cases[2].id]
    rest = await escalate_overdue(
        session=session, now=datetime.now(UTC), poc_after=POC_AFTER, batch_size=2
    )
    assert [e.case_id for e in rest] == [cases[0].id]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        auto_close_cutoff(now=datetime(2026, 3, 2), after_working_days=10, holidays=())


# Auto-close. Resolved on Monday 2 March 2026: the 10th working day after it is
# Monday 16 March, so the case closes from Tuesday 17 March, 00:00 WIB.
RESOLVED_AT = _wib(2026, 3, 2, 10)
NO_HOLIDAYS: frozenset[date] = frozenset()


def test_the_auto_close_cutoff_counts_whole_working_days() -> None:
    assert auto_close_cutoff(
        now=_wib(2026, 3, 17), after_working_days=10, holidays=NO_HOLIDAYS
    ) == _wib(2026, 3, 3)
    assert auto_close_cutoff(
        now=_wib(2026, 3, 16, 23, 59), after_working_days=10, holidays=NO_HOLIDAYS
    ) == _wib(2026, 3, 2)
    # A holiday in the window gives one more day.
    assert auto_close_cutoff(
        now=_wib(2026, 3, 17), after_working_days=10, holidays={date(2026, 3, 10)}
    ) == _wib(2026, 3, 2)
    # On a Saturday, with one working day: Thursday's resolutions are due (Friday
    # has passed), Friday's wait for the end of Monday.
    assert auto_close_cutoff(
        now=_wib(2026, 3, 21, 12), after_working_days=1, holidays=NO_HOLIDAYS
    ) == _wib(2026, 3, 20)


async def _resolved_case(session: AsyncSession, resolved_at: datetime) -> Case:
    case = await make_case(session, now=resolved_at - timedelta(days=3))
    case.status = CaseStatus.RESOLVED.value
    case.resolved_at = resolved_at
    await session.flush()
    return case


async def _auto_close(session: AsyncSession, now: datetime, holidays: frozenset[date]) -> list[int]:
    closed = await auto_close_resolved(
        session=session, now=now, after_working_days=10, holidays=holidays
    )
    return [case.id for case in closed]


async def test_a_resolved_case_closes_after_ten_working_days(session: AsyncSession) -> None:
    case = await _resolved_case(session, RESOLVED_AT)
    assert await _auto_close(session, _wib(2026, 3, 16, 23, 59), NO_HOLIDAYS) == []
    assert case.status == CaseStatus.RESOLVED
    assert await _auto_close(session, _wib(2026, 3, 17), NO_HOLIDAYS) == [case.id]
    assert case.status == CaseStatus.CLOSED
    events = await session.scalars(
        select(CaseEvent).where(
            CaseEvent.case_id == case.id, CaseEvent.type == EventType.CLOSED.value
        )
    )
    assert [(e.actor, e.details["automatic"]) for e in events] == [("system", True)]
    assert await _auto_close(session, _wib(2026, 3, 18), NO_HOLIDAYS) == []


async def test_holidays_delay_the_automatic_close(session: AsyncSession) -> None:
    case = await _resolved_case(session, RESOLVED_AT)
    holidays = frozenset({date(2026, 3, 10)})
    assert await _auto_close(session, _wib(2026, 3, 17, 12), holidays) == []
    assert await _auto_close(session, _wib(2026, 3, 18), holidays) == [case.id]


async def test_only_resolved_cases_are_closed_automatically(session: AsyncSession) -> None:
    reopened = await _resolved_case(session, RESOLVED_AT)
    reopened.status = CaseStatus.REOPENED.value
    await session.flush()
    assert reopened.id not in await _auto_close(session, _wib(2026, 4, 30), NO_HOLIDAYS)
    assert reopened.status == CaseStatus.REOPENED


async def test_overdue_is_true_for_an_open_case_past_its_due_time(
    graphql: Any, session: AsyncSession
) -> None:
    late = await _overdue_case(session, late_by=timedelta(minutes=1))
    on_time = await make_case(session)
    resolved = await _overdue_case(session, late_by=timedelta(days=3))
    resolved.status = CaseStatus.RESOLVED.value
    await session.flush()
    query = "query($t: String!) { case(ticket: $t) { overdue } }"
    for case, overdue in ((late, True), (on_time, False), (resolved, False)):
        body = await graphql(query, {"t": case.ticket})
        assert body["data"]["case"]["overdue"] is overdue, (case.ticket, body)


class _Recorder:
    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, channel: str, message: str = "") -> None:
        self.published.append(channel)


async def test_a_sweep_commits_then_wakes_the_live_feed(
    app: Starlette, session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    case = await _overdue_case(session, late_by=POC_AFTER * 2)
    recorder = _Recorder()
    app.state.pubsub = recorder
    sweeper: Sweeper = app.state.sweeper
    with caplog.at_level(logging.INFO, logger="patriot.sweeper"):
        result = await sweeper.sweep_once()
    assert (result.escalated_cases, result.escalated_to_dinas, result.escalated_to_poc) == (1, 1, 1)
    assert recorder.published == ["case_events"]
    await session.refresh(case)
    assert case.escalation_level == 2
    [line] = [r.getMessage() for r in caplog.records if r.name == "patriot.sweeper"]
    assert '"escalated_to_poc":1' in line and case.ticket not in line
    # Nothing to do: nothing to wake.
    await sweeper.sweep_once()
    assert recorder.published == ["case_events"]


async def test_the_sweeper_survives_a_failing_sweep(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = 0
    third_attempt = asyncio.Event()

    def broken_session_factory() -> AsyncSession:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            third_attempt.set()
        raise ConnectionRefusedError("database down")

    app = Starlette()
    app.state.session_factory = broken_session_factory
    sweeper = Sweeper(app, settings=settings.model_copy(update={"sweep_interval_s": 0.01}))
    with caplog.at_level(logging.ERROR, logger="patriot.sweeper"):
        sweeper.start()
        try:
            async with asyncio.timeout(5):
                await third_attempt.wait()
        finally:
            await sweeper.stop()
    failures = [r.getMessage() for r in caplog.records if r.name == "patriot.sweeper"]
    assert len(failures) >= 3
    assert '"error":"ConnectionRefusedError"' in failures[0]
    assert "database down" not in failures[0]


async def test_escalation_is_visible_on_the_case_and_filterable(
    graphql: Any, session: AsyncSession
) -> None:
    late = await _overdue_case(session, late_by=timedelta(hours=2), title="Sangat terlambat")
    very_late = await _overdue_case(session, late_by=timedelta(days=3), title="Sangat terlambat")
    on_time = await make_case(session, title="Sangat terlambat")
    now = datetime.now(UTC)
    await _sweep(session, now)

    query = (
        "query($t: String!) { case(ticket: $t) { escalationLevel escalatedAt history { type } } }"
    )
    for case, level in ((late, "HANDLER"), (very_late, "POC"), (on_time, "NONE")):
        answer = (await graphql(query, {"t": case.ticket}))["data"]["case"]
        assert answer["escalationLevel"] == level, (case.ticket, answer)
        assert (answer["escalatedAt"] is None) is (level == "NONE")
        assert ("ESCALATED" in [e["type"] for e in answer["history"]]) is (level != "NONE")

    page = (
        "query($f: CaseFilterInput) { cases(first: 10, filter: $f) { edges { node { ticket } } } }"
    )
    for levels, expected in (
        (["HANDLER", "POC"], {late.ticket, very_late.ticket}),
        (["POC"], {very_late.ticket}),
        (["NONE"], {on_time.ticket}),
    ):
        body = await graphql(page, {"f": {"text": "terlambat", "escalationLevels": levels}})
        assert {e["node"]["ticket"] for e in body["data"]["cases"]["edges"]} == expected, body
