"""The record of who saw reporters' details, and of erasures, for administrators.

Each GraphQL operation that showed a reporter's name, phone or e-mail writes one
INSERT, in its own transaction, with a row per case and root field: the caller,
its scope, the case, the time, the operation's root field. A live feed that may
show them writes one row, without a case, when a socket subscribes. Rows are
kept for `PATRIOT_PERSONAL_DATA_ACCESS_RETENTION_DAYS` and pruned by the sweeper.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import FieldProblem, InvalidArguments, ValidationFailed
from domain.access import Principal
from models import Case, PersonalDataAccess, ReporterErasure

MAX_PAGE_SIZE = 100
# Rows per INSERT: far below PostgreSQL's limit of 32,767 parameters a statement.
_ROWS_PER_STATEMENT = 5_000
_MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Sighting:
    case_id: int | None  # None: a live feed that may show reporters of its scope
    operation: str  # the root field


async def record_access(
    *, session: AsyncSession, principal: Principal, sightings: Iterable[Sighting], at: datetime
) -> int:
    """Writes what `principal` was shown; returns the number of rows."""
    rows = [
        {
            "at": at,
            "subject": principal.subject,
            "scope": principal.describe(),
            "case_id": s.case_id,
            "operation": s.operation[:100],
        }
        for s in sorted(set(sightings), key=lambda s: (s.case_id or 0, s.operation))
    ]
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        await session.execute(
            insert(PersonalDataAccess).values(rows[start : start + _ROWS_PER_STATEMENT])
        )
    return len(rows)


async def prune_access_log(*, session: AsyncSession, before: datetime, batch_size: int) -> int:
    """Deletes up to `batch_size` of the records older than `before`; processes
    pruning at once take different rows."""
    doomed = (
        select(PersonalDataAccess.id)
        .where(PersonalDataAccess.at < before)
        .order_by(PersonalDataAccess.at)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    deleted = await session.scalars(
        delete(PersonalDataAccess)
        .where(PersonalDataAccess.id.in_(doomed.scalar_subquery()))
        .returning(PersonalDataAccess.id)
    )
    return len(deleted.all())


def encode_cursor(kind: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{row_id}".encode()).decode()


def decode_cursor(kind: str, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        if raw.startswith(f"{kind}:"):
            row_id = int(raw.removeprefix(f"{kind}:"))
            if 0 < row_id <= _MAX_ID:
                return row_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ValidationFailed([FieldProblem("after", "not a cursor returned by this API")])


@dataclass(frozen=True)
class Page:
    rows: list[tuple[Any, str | None]]  # each row with its case's ticket
    has_next_page: bool
    has_previous_page: bool


@dataclass(frozen=True)
class AccessFilter:
    ticket: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _check_first(first: int) -> None:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidArguments(f"`first` must be between 1 and {MAX_PAGE_SIZE}")


async def list_access(
    *, session: AsyncSession, access_filter: AccessFilter, first: int, after: str | None
) -> Page:
    """Newest first. A ticket selects that case's rows and every live-feed row
    (which may have shown any case of its scope)."""
    _check_first(first)
    statement = select(PersonalDataAccess, Case.ticket).outerjoin(
        Case, Case.id == PersonalDataAccess.case_id
    )
    if access_filter.ticket is not None:
        case_id = select(Case.id).where(Case.ticket == access_filter.ticket.strip().upper())
        statement = statement.where(
            PersonalDataAccess.case_id.in_(case_id) | PersonalDataAccess.case_id.is_(None)
        )
    if access_filter.subject is not None:
        statement = statement.where(PersonalDataAccess.subject == access_filter.subject)
    if access_filter.since is not None:
        statement = statement.where(PersonalDataAccess.at >= access_filter.since)
    if access_filter.until is not None:
        statement = statement.where(PersonalDataAccess.at < access_filter.until)
    if after is not None:
        statement = statement.where(PersonalDataAccess.id < decode_cursor("access", after))
    rows = (
        await session.execute(statement.order_by(PersonalDataAccess.id.desc()).limit(first + 1))
    ).all()
    return Page(
        rows=[(row, ticket) for row, ticket in rows[:first]],
        has_next_page=len(rows) > first,
        has_previous_page=after is not None,
    )


async def list_erasures(
    *, session: AsyncSession, ticket: str | None, first: int, after: str | None
) -> Page:
    _check_first(first)
    statement = select(ReporterErasure, Case.ticket).join(Case, Case.id == ReporterErasure.case_id)
    if ticket is not None:
        statement = statement.where(Case.ticket == ticket.strip().upper())
    if after is not None:
        statement = statement.where(ReporterErasure.id < decode_cursor("erasure", after))
    rows = (
        await session.execute(statement.order_by(ReporterErasure.id.desc()).limit(first + 1))
    ).all()
    return Page(
        rows=[(row, ticket) for row, ticket in rows[:first]],
        has_next_page=len(rows) > first,
        has_previous_page=after is not None,
    )
