"""Appending to a case's event log, the source of truth for history and live feeds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, CaseEvent, EventType

# session.info key: set when the transaction wrote events, so that whoever commits
# it wakes the live feed (after the commit, never before).
EVENTS_WRITTEN = "patriot.case_events_written"


def record_event(
    *,
    session: AsyncSession,
    case: Case,
    type: EventType,
    actor: str,
    at: datetime,
    details: dict[str, Any] | None = None,
) -> CaseEvent:
    event = CaseEvent(case_id=case.id, type=type.value, actor=actor, at=at, details=details or {})
    session.add(event)
    session.info[EVENTS_WRITTEN] = True
    return event


def wrote_events(session: AsyncSession) -> bool:
    return bool(session.info.pop(EVENTS_WRITTEN, False))
