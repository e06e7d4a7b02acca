"""The reporter's rights (UU No. 27/2022): hiding and erasing the reporter's
details, and, for administrators, who saw them and which were erased."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated

import strawberry
from strawberry import relay

from domain import access_log, reporter_rights
from domain.access import Action
from domain.access_log import AccessFilter
from models import PersonalDataAccess as AccessModel
from models import ReporterErasure as ErasureModel
from schema.case import Case
from schema.case_actions import CaseNotFound, Change, InvalidTransition, Ticket, _apply
from schema.context import Context
from schema.errors import ValidationError
from schema.public_case import PublicCase

ReporterRightResult = Annotated[
    Case | PublicCase | ValidationError | CaseNotFound, strawberry.union("ReporterRightResult")
]

PageSize = Annotated[int, strawberry.argument(description="Page size, 1 to 100.")]


async def _use_right(
    info: strawberry.Info[Context, None], change: Change, action: Action, ticket: str
) -> Case | PublicCase | ValidationError | CaseNotFound:
    result = await _apply(info, change, action)
    # Neither right depends on the case's status.
    assert not isinstance(result, InvalidTransition)
    return result


@strawberry.type
class PersonalDataMutation:
    @strawberry.mutation(
        description="Hide the reporter's identity: from now on only POC operators see it "
        "(the case becomes `anonymous`). For the partner the case came from, and POC "
        "operators on the reporter's behalf. Hiding a hidden reporter changes nothing."
    )
    async def hide_reporter(
        self, info: strawberry.Info[Context, None], ticket: Ticket
    ) -> ReporterRightResult:
        return await _use_right(
            info,
            partial(reporter_rights.hide_reporter, ticket=ticket),
            Action.HIDE_REPORTER,
            ticket,
        )

    @strawberry.mutation(
        description="Erase the reporter's name, phone and e-mail for good, with their quotes "
        "in the case's texts and history; the case stays. The erasure is recorded (who, when, "
        "why), never what was erased. For the partner the case came from, and POC operators on "
        "the reporter's behalf. Erasing an erased reporter changes nothing."
    )
    async def erase_reporter(
        self,
        info: strawberry.Info[Context, None],
        ticket: Ticket,
        reason: Annotated[
            str, strawberry.argument(description="Why, e.g. the reporter's request and its date.")
        ],
    ) -> ReporterRightResult:
        return await _use_right(
            info,
            partial(reporter_rights.erase_reporter, ticket=ticket, reason=reason),
            Action.ERASE_REPORTER,
            ticket,
        )


@strawberry.type(
    description="A response that showed a reporter's name, phone or e-mail, or a live feed "
    "that may show them from `at` on."
)
class PersonalDataAccess:
    model: strawberry.Private[AccessModel]
    case_ticket: strawberry.Private[str | None]

    @strawberry.field(description="partner:<code> or staff:<subject of the token>.")
    def subject(self) -> str:
        return self.model.subject

    @strawberry.field(description="What the caller saw them as: its role and area, or partner.")
    def scope(self) -> str:
        return self.model.scope

    @strawberry.field
    def at(self) -> datetime:
        return self.model.at

    @strawberry.field(
        description="The case; null for a live feed (`caseEvents`), which may have shown the "
        "reporters of every case of its scope whose events it received."
    )
    def ticket(self) -> str | None:
        return self.case_ticket

    @strawberry.field(description="The operation's root field, e.g. `cases` or `caseEvents`.")
    def operation(self) -> str:
        return self.model.operation


@strawberry.type(description="One erasure of a reporter's details: who, when, why. Never what.")
class ReporterErasure:
    model: strawberry.Private[ErasureModel]
    case_ticket: strawberry.Private[str | None]

    @strawberry.field
    def ticket(self) -> str | None:
        return self.case_ticket

    @strawberry.field
    def erased_at(self) -> datetime:
        return self.model.erased_at

    @strawberry.field(description="Who erased them; `system` for the retention sweep.")
    def actor(self) -> str:
        return self.model.actor

    @strawberry.field
    def reason(self) -> str:
        return self.model.reason

    @strawberry.field(description="Erased by the retention sweep, not on request.")
    def automatic(self) -> bool:
        return self.model.automatic


@strawberry.type(description="Who saw reporters' details, newest first (Relay cursor connection).")
class PersonalDataAccessConnection(relay.Connection[PersonalDataAccess]):  # type: ignore[type-var]
    pass


@strawberry.type(description="Erasures of reporters' details, newest first.")
class ReporterErasureConnection(relay.Connection[ReporterErasure]):  # type: ignore[type-var]
    pass


@strawberry.input
class PersonalDataAccessFilter:
    ticket: str | None = strawberry.field(
        default=None, description="That case's records, and every live-feed record."
    )
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _page_info(page: access_log.Page, cursors: list[str]) -> relay.PageInfo:
    return relay.PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


@strawberry.type
class PersonalDataQuery:
    @strawberry.field(
        description="Administrators: every response that showed a reporter's details to a "
        "partner or staff member, kept for PATRIOT_PERSONAL_DATA_ACCESS_RETENTION_DAYS."
    )
    async def personal_data_access(
        self,
        info: strawberry.Info[Context, None],
        filter: PersonalDataAccessFilter | None = None,
        first: PageSize = 20,
        after: str | None = None,
    ) -> PersonalDataAccessConnection:
        info.context.require(Action.AUDIT_PERSONAL_DATA)
        given = filter or PersonalDataAccessFilter()
        async with info.context.db() as session:
            page = await access_log.list_access(
                session=session,
                access_filter=AccessFilter(
                    ticket=given.ticket,
                    subject=given.subject,
                    since=given.since,
                    until=given.until,
                ),
                first=first,
                after=after,
            )
        edges = [
            relay.Edge(  # type: ignore[type-var]
                cursor=access_log.encode_cursor("access", row.id),
                node=PersonalDataAccess(model=row, case_ticket=ticket),
            )
            for row, ticket in page.rows
        ]
        return PersonalDataAccessConnection(
            edges=edges, page_info=_page_info(page, [e.cursor for e in edges])
        )

    @strawberry.field(description="Administrators: the erasures of reporters' details.")
    async def reporter_erasures(
        self,
        info: strawberry.Info[Context, None],
        ticket: str | None = None,
        first: PageSize = 20,
        after: str | None = None,
    ) -> ReporterErasureConnection:
        info.context.require(Action.AUDIT_PERSONAL_DATA)
        async with info.context.db() as session:
            page = await access_log.list_erasures(
                session=session, ticket=ticket, first=first, after=after
            )
        edges = [
            relay.Edge(  # type: ignore[type-var]
                cursor=access_log.encode_cursor("erasure", row.id),
                node=ReporterErasure(model=row, case_ticket=case_ticket),
            )
            for row, case_ticket in page.rows
        ]
        return ReporterErasureConnection(
            edges=edges, page_info=_page_info(page, [e.cursor for e in edges])
        )
