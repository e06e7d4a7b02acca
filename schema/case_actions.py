"""What officers, operators and reporters do to a case after intake: the lifecycle
mutations, their refusals, and the case's possible duplicates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import partial
from typing import Annotated

import strawberry
from sqlalchemy import or_

import models
from core import errors
from core.errors import InvalidArguments
from domain.access import Action, Forbidden, case_scope, public_scope
from domain.lifecycle import detail_changes, status_changes, transitions
from geo.duplicates import open_cases_near
from models import Case as CaseModel
from schema.case import Case
from schema.case_filter import LatLonInput
from schema.case_status import CaseStatus
from schema.case_view import case_for_caller
from schema.context import Context
from schema.errors import ValidationError
from schema.location import OutsideJurisdiction
from schema.public_case import PublicCase

MAX_DUPLICATES = 100


@strawberry.enum(
    description="The status changes of the case workflow. `allowedActions` of a case "
    "lists those its status allows."
)
class CaseAction(Enum):
    VERIFY = "VERIFY"
    HOLD = "HOLD"
    RESUME = "RESUME"
    REJECT = "REJECT"
    START = "START"
    RESOLVE = "RESOLVE"
    CLOSE = "CLOSE"
    REOPEN = "REOPEN"
    MARK_DUPLICATE = "MARK_DUPLICATE"


@strawberry.enum(description="Why a case was rejected.")
class RejectionReason(Enum):
    NOT_OUR_AUTHORITY = strawberry.enum_value(
        "NOT_OUR_AUTHORITY", description="Bukan wewenang: not a matter for the city government."
    )
    INVALID = strawberry.enum_value("INVALID", description="Not a report that can be acted on.")
    SPAM = "SPAM"


def allowed_actions(model: CaseModel) -> list[CaseAction]:
    return [CaseAction(action.value) for action in transitions.allowed_actions(model.status)]


@strawberry.type(description="An open case of the same category near another one.")
class PossibleDuplicate:
    case: Case
    distance_m: float = strawberry.field(description="Geodesic metres between the two cases.")


async def possible_duplicates(
    info: strawberry.Info[Context, None], model: CaseModel, limit: int
) -> list[PossibleDuplicate]:
    if not 1 <= limit <= MAX_DUPLICATES:
        raise InvalidArguments(f"`limit` must be between 1 and {MAX_DUPLICATES}")
    if model.location is None:
        return []
    category = await info.context.loaders.category.load(model.category_id)
    if category is None:
        raise LookupError(f"category {model.category_id} vanished")
    since = datetime.now(UTC) - timedelta(days=info.context.settings.duplicate_window_days)
    async with info.context.db() as session:
        nearby = await open_cases_near(
            session=session,
            case=model,
            radius_m=category.duplicate_radius_m,
            created_since=since,
            limit=limit,
        )
    return [
        PossibleDuplicate(case=Case(model=n.case), distance_m=round(n.distance_m, 1))
        for n in nearby
    ]


@strawberry.type(description="The case's status does not allow this change; nothing was written.")
class InvalidTransition:
    message: str
    current_status: CaseStatus
    allowed_actions: list[CaseAction] = strawberry.field(
        description="The status changes the case's current status allows."
    )

    @classmethod
    def from_exception(cls, error: errors.InvalidTransition) -> InvalidTransition:
        return cls(
            message=str(error),
            current_status=CaseStatus(error.status),
            allowed_actions=[CaseAction(action) for action in error.allowed],
        )


@strawberry.type(description="No case has this ticket; nothing was written.")
class CaseNotFound:
    ticket: str
    message: str


@strawberry.type(
    description="The resolution can no longer be disputed: the reopen window has passed."
)
class ReopenWindowClosed:
    # No `resolvedAt` here: beside the Case's nullable field of that name in one
    # selection, GraphQL would refuse the query as conflicting (DateTime vs DateTime!).
    message: str
    reopenable_until: datetime = strawberry.field(
        description="When the window closed: the end of the last working day of it (WIB)."
    )


# A case in a result is the caller's view of it after the change (case_for_caller):
# `Case` within its scope, otherwise `PublicCase`.
_VIEW = (
    "The case after the change as the caller may see it: in full (`Case`) within the "
    "caller's scope, otherwise its public view (`PublicCase`); or why nothing was changed."
)
CaseActionResult = Annotated[
    Case | PublicCase | InvalidTransition | ValidationError | CaseNotFound,
    strawberry.union("CaseActionResult", description=_VIEW),
]
RerouteCaseResult = Annotated[
    Case | PublicCase | InvalidTransition | ValidationError | OutsideJurisdiction | CaseNotFound,
    strawberry.union("RerouteCaseResult", description=_VIEW),
]
ReopenCaseResult = Annotated[
    Case | PublicCase | InvalidTransition | ReopenWindowClosed | ValidationError | CaseNotFound,
    strawberry.union("ReopenCaseResult", description=_VIEW),
]

Ticket = Annotated[str, strawberry.argument(description="The case's ticket, e.g. BKS-2611-000123.")]

Change = Callable[..., Awaitable[CaseModel]]


async def _apply(
    info: strawberry.Info[Context, None],
    change: Change,
    action: Action,
    *,
    public: bool = False,
) -> Case | PublicCase | InvalidTransition | ValidationError | CaseNotFound:
    """Run one domain change with the caller as actor; refusals become results.

    The caller must be allowed the action (an error otherwise, whatever the
    ticket). Every case named must be in the caller's scope (`public`: any case
    the public may see, for partners who speak for citizens); one outside it is
    answered as `CaseNotFound`, exactly like a ticket that does not exist, so
    that nobody learns that a confidential case exists. The answer is the case as
    the caller may see it after the change; a change whose case the caller could
    not see at all is refused, and rolled back with the operation.
    """
    principal = info.context.require(action)
    scope = case_scope(principal)
    if public:
        scope = or_(scope, public_scope())
    try:
        # A refusal is a normal result and the operation commits, so whatever the
        # attempt wrote before it was refused goes back with the savepoint.
        async with info.context.db() as session, session.begin_nested():
            model = await change(
                session=session, scope=scope, actor=info.context.actor, now=datetime.now(UTC)
            )
    except errors.CaseNotFound as error:
        return CaseNotFound(ticket=error.ticket, message=str(error))
    except errors.InvalidTransition as error:
        return InvalidTransition.from_exception(error)
    except errors.ValidationFailed as error:
        return ValidationError.from_exception(error)
    view = await case_for_caller(info, model)
    if view is None:
        raise Forbidden(f"case {model.ticket} is outside the scope of {principal.describe()}")
    return view


@strawberry.type
class CaseActionMutation:
    @strawberry.mutation(description="RECEIVED → VERIFIED: the report is genuine and complete.")
    async def verify_case(
        self, info: strawberry.Info[Context, None], ticket: Ticket
    ) -> CaseActionResult:
        return await _apply(info, partial(status_changes.verify_case, ticket=ticket), Action.VERIFY)

    @strawberry.mutation(
        description="RECEIVED or VERIFIED → ON_HOLD (ditunda); `resumeCase` returns it to "
        "where it was."
    )
    async def hold_case(
        self, info: strawberry.Info[Context, None], ticket: Ticket, reason: str | None = None
    ) -> CaseActionResult:
        return await _apply(
            info,
            partial(status_changes.hold_case, ticket=ticket, reason=reason),
            Action.HOLD,
        )

    @strawberry.mutation(description="ON_HOLD → the status the case was held from.")
    async def resume_case(
        self, info: strawberry.Info[Context, None], ticket: Ticket
    ) -> CaseActionResult:
        return await _apply(info, partial(status_changes.resume_case, ticket=ticket), Action.RESUME)

    @strawberry.mutation(description="RECEIVED, VERIFIED or ON_HOLD → REJECTED, with a reason.")
    async def reject_case(
        self,
        info: strawberry.Info[Context, None],
        ticket: Ticket,
        reason: RejectionReason,
        note: str | None = None,
    ) -> CaseActionResult:
        return await _apply(
            info,
            partial(
                status_changes.reject_case,
                ticket=ticket,
                reason=models.RejectionReason(reason.value),
                note=note,
            ),
            Action.REJECT,
        )

    @strawberry.mutation(description="Name the officer handling an open case; the status stays.")
    async def assign_case(
        self, info: strawberry.Info[Context, None], ticket: Ticket, officer: str
    ) -> CaseActionResult:
        return await _apply(
            info,
            partial(detail_changes.assign_case, ticket=ticket, officer=officer),
            Action.ASSIGN,
        )

    @strawberry.mutation(
        description="Send an open case to another dinas, and/or correct its location: the "
        "kelurahan is looked up again and, unless a dinas is named, the case is routed again "
        "as a new report there would be. The status and the due time stay."
    )
    async def reroute_case(
        self,
        info: strawberry.Info[Context, None],
        ticket: Ticket,
        reason: str,
        dinas_code: str | None = None,
        location: LatLonInput | None = None,
    ) -> RerouteCaseResult:
        change = partial(
            detail_changes.reroute_case,
            ticket=ticket,
            reason=reason,
            dinas_code=dinas_code,
            location=(location.lat, location.lon) if location else None,
            snap_tolerance_m=info.context.settings.snap_tolerance_m,
        )
        try:
            return await _apply(info, change, Action.REROUTE)
        except errors.OutsideJurisdiction as error:
            return OutsideJurisdiction(
                nearest_kelurahan_id=error.nearest_kelurahan_id,
                distance_m=round(error.distance_m, 1),
                message=str(error),
            )

    @strawberry.mutation(description="VERIFIED or REOPENED → IN_PROGRESS (ditindaklanjuti).")
    async def start_work(
        self, info: strawberry.Info[Context, None], ticket: Ticket
    ) -> CaseActionResult:
        return await _apply(info, partial(status_changes.start_work, ticket=ticket), Action.START)

    @strawberry.mutation(
        description="IN_PROGRESS → RESOLVED, with what was done and at least one https link "
        "to a photo of the work."
    )
    async def resolve_case(
        self,
        info: strawberry.Info[Context, None],
        ticket: Ticket,
        note: str,
        evidence_urls: list[str],
    ) -> CaseActionResult:
        return await _apply(
            info,
            partial(
                status_changes.resolve_case, ticket=ticket, note=note, evidence_urls=evidence_urls
            ),
            Action.RESOLVE,
        )

    @strawberry.mutation(description="RESOLVED → CLOSED.")
    async def close_case(
        self, info: strawberry.Info[Context, None], ticket: Ticket
    ) -> CaseActionResult:
        return await _apply(
            info, partial(status_changes.close_case_by_ticket, ticket=ticket), Action.CLOSE
        )

    @strawberry.mutation(
        description="RESOLVED → REOPENED: the reporter disputes the fix, within the reopen "
        "window (working days after the resolution)."
    )
    async def reopen_case(
        self, info: strawberry.Info[Context, None], ticket: Ticket, reason: str
    ) -> ReopenCaseResult:
        change = partial(
            status_changes.reopen_case,
            ticket=ticket,
            reason=reason,
            window_working_days=info.context.settings.reopen_window_working_days,
        )
        try:
            return await _apply(info, change, Action.REOPEN)
        except errors.ReopenWindowClosed as error:
            return ReopenWindowClosed(
                message=str(error),
                reopenable_until=error.reopenable_until,
            )

    @strawberry.mutation(description="Add a comment to the case's history, in any status.")
    async def comment_case(
        self, info: strawberry.Info[Context, None], ticket: Ticket, text: str
    ) -> CaseActionResult:
        return await _apply(
            info,
            partial(detail_changes.comment_case, ticket=ticket, text=text),
            Action.COMMENT,
        )

    @strawberry.mutation(
        description="An open case → DUPLICATE of another case (not itself a duplicate); both "
        "histories record the merge."
    )
    async def merge_duplicate(
        self,
        info: strawberry.Info[Context, None],
        ticket: Ticket,
        into_ticket: Annotated[
            str, strawberry.argument(description="The case it duplicates, which stays.")
        ],
    ) -> CaseActionResult:
        return await _apply(
            info,
            partial(status_changes.merge_duplicate, ticket=ticket, into_ticket=into_ticket),
            Action.MARK_DUPLICATE,
        )

    @strawberry.mutation(
        description='"I have this problem too" from a citizen of a partner app: counted once '
        "per partner and citizen; a repeat returns the case unchanged."
    )
    async def support_case(
        self,
        info: strawberry.Info[Context, None],
        ticket: Ticket,
        citizen_id: Annotated[
            str, strawberry.argument(description="The partner app's id of the citizen.")
        ],
    ) -> CaseActionResult:
        source = info.context.principal.partner_code or ""
        return await _apply(
            info,
            partial(
                detail_changes.support_case, ticket=ticket, source=source, citizen_id=citizen_id
            ),
            Action.SUPPORT,
            public=True,
        )

    @strawberry.mutation(
        description="The reporter rates the handling, 1 to 5, once the case is RESOLVED or "
        "CLOSED; a case is rated once."
    )
    async def rate_case(
        self,
        info: strawberry.Info[Context, None],
        ticket: Ticket,
        rating: int,
        comment: str | None = None,
    ) -> CaseActionResult:
        return await _apply(
            info,
            partial(detail_changes.rate_case, ticket=ticket, rating=rating, comment=comment),
            Action.RATE,
        )
