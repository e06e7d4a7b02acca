"""The transition table, and what every change to a case shares: the row lock, the
refusal that names the allowed actions, the event, the checked text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import CaseNotFound, FieldProblem, InvalidTransition, ValidationFailed
from domain.events import record_event
from domain.report_input import _text
from models import OPEN_STATUSES, Case, CaseStatus, EventType

MAX_REASON = 1_000


class CaseAction(StrEnum):
    VERIFY = "VERIFY"
    HOLD = "HOLD"
    RESUME = "RESUME"
    REJECT = "REJECT"
    START = "START"
    RESOLVE = "RESOLVE"
    CLOSE = "CLOSE"
    REOPEN = "REOPEN"
    MARK_DUPLICATE = "MARK_DUPLICATE"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[CaseStatus]
    target: CaseStatus | None  # None: back to the status the case was held from
    event: EventType
    verb: str  # "cannot <verb> case …"


_S = CaseStatus

# The one table of the workflow: what each action needs and where it leads. The
# checks and every list of allowed actions are read from it.
TRANSITIONS: Final[Mapping[CaseAction, Transition]] = MappingProxyType(
    {
        CaseAction.VERIFY: Transition(
            frozenset({_S.RECEIVED}), _S.VERIFIED, EventType.VERIFIED, "verify"
        ),
        CaseAction.HOLD: Transition(
            frozenset({_S.RECEIVED, _S.VERIFIED}), _S.ON_HOLD, EventType.HELD, "hold"
        ),
        CaseAction.RESUME: Transition(frozenset({_S.ON_HOLD}), None, EventType.RESUMED, "resume"),
        CaseAction.REJECT: Transition(
            frozenset({_S.RECEIVED, _S.VERIFIED, _S.ON_HOLD}),
            _S.REJECTED,
            EventType.REJECTED,
            "reject",
        ),
        CaseAction.START: Transition(
            frozenset({_S.VERIFIED, _S.REOPENED}),
            _S.IN_PROGRESS,
            EventType.STARTED,
            "start work on",
        ),
        CaseAction.RESOLVE: Transition(
            frozenset({_S.IN_PROGRESS}), _S.RESOLVED, EventType.RESOLVED, "resolve"
        ),
        CaseAction.CLOSE: Transition(
            frozenset({_S.RESOLVED}), _S.CLOSED, EventType.CLOSED, "close"
        ),
        # Within the reopen window only; see `reopen_case`.
        CaseAction.REOPEN: Transition(
            frozenset({_S.RESOLVED}), _S.REOPENED, EventType.REOPENED, "reopen"
        ),
        CaseAction.MARK_DUPLICATE: Transition(
            frozenset(OPEN_STATUSES), _S.DUPLICATE, EventType.MARKED_DUPLICATE, "mark as duplicate"
        ),
    }
)

# Changes that keep the status, and the statuses they are made in.
ASSIGNABLE: Final = frozenset(OPEN_STATUSES)
REROUTABLE: Final = frozenset(OPEN_STATUSES)
SUPPORTABLE: Final = frozenset(OPEN_STATUSES)
RATEABLE: Final = frozenset({_S.RESOLVED, _S.CLOSED})


def allowed_actions(status: CaseStatus | str) -> tuple[CaseAction, ...]:
    """The actions the table allows from `status`, in the order of `CaseAction`."""
    current = CaseStatus(status)
    return tuple(action for action, rule in TRANSITIONS.items() if current in rule.sources)


def refusal(case: Case, attempted: str, why: str = "") -> InvalidTransition:
    return InvalidTransition(
        ticket=case.ticket,
        status=case.status,
        attempted=attempted,
        allowed=[action.value for action in allowed_actions(case.status)],
        why=why,
    )


def touch(
    *,
    session: AsyncSession,
    case: Case,
    type: EventType,
    actor: str,
    now: datetime,
    details: Mapping[str, Any],
) -> None:
    case.updated_at = now
    record_event(session=session, case=case, type=type, actor=actor, at=now, details=dict(details))


def normalise_ticket(ticket: str) -> str:
    return ticket.strip().upper()


async def lock_case(*, session: AsyncSession, ticket: str, scope: ColumnElement[bool]) -> Case:
    """The case, its row locked until the transaction ends, read afresh.

    A case outside `scope` (the cases the caller may act on) is not found, like
    one that does not exist: a different refusal would tell the caller that the
    ticket, confidential or not, exists.
    """
    case = await session.scalar(
        select(Case)
        .where(Case.ticket == normalise_ticket(ticket), scope)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if case is None:
        raise CaseNotFound(ticket.strip())
    return case


def required_text(value: str | None, field: str, limit: int, *, multiline: bool) -> str:
    problems: list[FieldProblem] = []
    text = _text(value, field, limit, problems, multiline=multiline, required=True)
    if problems:
        raise ValidationFailed(problems)
    assert text is not None
    return text


def optional_detail(name: str, value: str | None) -> dict[str, str]:
    return {name: value} if value is not None else {}
