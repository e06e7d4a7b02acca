"""Reading cases: one by ticket, and filtered pages in a stable newest-first order."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVarTuple

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import FieldProblem, InvalidArguments, ValidationFailed
from domain.access import public_scope
from geo.case_filters import BBox, checked_bbox, inside_bbox, within_radius
from geo.coordinates import LatLon, validate_lat_lon
from models import Case, CaseEvent, Category, Dinas

Columns = TypeVarTuple("Columns")

MAX_PAGE_SIZE = 100
MAX_RADIUS_M = 50_000
# PostgreSQL turns a longer search into a query tree it runs out of stack on
# (about 20,000 words); a search of a title or description needs a few words.
MAX_SEARCH_TEXT = 200
_CURSOR_PREFIX = "case:"
# Ids are bigint: a larger number in a cursor would fail as a query parameter.
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Near:
    center: LatLon
    radius_m: float


@dataclass(frozen=True)
class CaseFilter:
    statuses: Sequence[str] = ()
    kinds: Sequence[str] = ()
    sources: Sequence[str] = ()
    category_codes: Sequence[str] = ()
    dinas_codes: Sequence[str] = ()
    kelurahan_codes: Sequence[str] = ()
    kecamatan_codes: Sequence[str] = ()
    escalation_levels: Sequence[int] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None
    bbox: BBox | None = None
    near: Near | None = None
    text: str | None = None
    # Compare the location on the public grid (geo.case_filters), as the public reads it.
    public_location: bool = False

    def __post_init__(self) -> None:
        # A moment without an offset would be read as UTC, seven hours off in
        # Bekasi: refused, as the statistics refuse it.
        problems = [
            FieldProblem(name, "must include a time zone offset, e.g. 2026-12-01T00:00:00+07:00")
            for name, moment in (("createdFrom", self.created_from), ("createdTo", self.created_to))
            if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None)
        ]
        if problems:
            raise ValidationFailed(problems)


@dataclass(frozen=True)
class CasePage:
    cases: list[Case]
    has_next_page: bool
    has_previous_page: bool = False


def encode_cursor(case_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{case_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        digits = raw.removeprefix(_CURSOR_PREFIX)
        if raw.startswith(_CURSOR_PREFIX) and digits.isascii() and digits.isdigit():
            case_id = int(digits)
            if case_id <= MAX_ID:
                return case_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ValidationFailed([FieldProblem("after", "not a cursor returned by this API")])


def filtered(statement: Select[*Columns], case_filter: CaseFilter) -> Select[*Columns]:
    f = case_filter
    if f.statuses:
        statement = statement.where(Case.status.in_(f.statuses))
    if f.kinds:
        statement = statement.where(Case.kind.in_(f.kinds))
    if f.sources:
        statement = statement.where(Case.source.in_(f.sources))
    if f.category_codes:
        # A group code selects all its categories.
        groups = select(Category.id).where(Category.code.in_(f.category_codes))
        statement = statement.where(
            Case.category_id.in_(
                select(Category.id).where(
                    Category.code.in_(f.category_codes) | Category.parent_id.in_(groups)
                )
            )
        )
    if f.dinas_codes:
        statement = statement.where(
            Case.dinas_id.in_(select(Dinas.id).where(Dinas.code.in_(f.dinas_codes)))
        )
    if f.kelurahan_codes:
        statement = statement.where(Case.kelurahan_code.in_(f.kelurahan_codes))
    if f.kecamatan_codes:
        statement = statement.where(Case.kecamatan_code.in_(f.kecamatan_codes))
    if f.escalation_levels:
        statement = statement.where(Case.escalation_level.in_(f.escalation_levels))
    if f.created_from is not None:
        statement = statement.where(Case.created_at >= f.created_from)
    if f.created_to is not None:
        statement = statement.where(Case.created_at < f.created_to)
    if f.bbox is not None:
        bbox = checked_bbox(f.bbox, field="filter.bbox")
        statement = statement.where(inside_bbox(bbox, public=f.public_location))
    if f.near is not None:
        validate_lat_lon(f.near.center.lat, f.near.center.lon, prefix="filter.near.")
        if not 0 < f.near.radius_m <= MAX_RADIUS_M:
            raise ValidationFailed(
                [FieldProblem("filter.near.radiusM", f"must be between 0 and {MAX_RADIUS_M} m")]
            )
        statement = statement.where(
            within_radius(f.near.center, f.near.radius_m, public=f.public_location)
        )
    if f.text and f.text.strip():
        if len(f.text) > MAX_SEARCH_TEXT:
            raise ValidationFailed(
                [FieldProblem("filter.text", f"at most {MAX_SEARCH_TEXT} characters")]
            )
        query = func.websearch_to_tsquery("simple", f.text.strip())
        statement = statement.where(Case.search.op("@@")(query))
    return statement


async def list_cases(
    *,
    session: AsyncSession,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    first: int,
    after: str | None,
) -> CasePage:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidArguments(f"`first` must be between 1 and {MAX_PAGE_SIZE}")
    statement = filtered(select(Case).where(scope), case_filter)
    if after is not None:
        statement = statement.where(Case.id < decode_cursor(after))
    # Ids only grow, so newest-first by id is stable: cases that arrive while a
    # client pages land before its first page and never shift later pages.
    rows = (await session.scalars(statement.order_by(Case.id.desc()).limit(first + 1))).all()
    return CasePage(
        cases=list(rows[:first]),
        has_next_page=len(rows) > first,
        has_previous_page=after is not None,
    )


async def list_public_cases(
    *, session: AsyncSession, case_filter: CaseFilter, first: int, after: str | None
) -> CasePage:
    """`list_cases` for anyone: non-confidential cases, located as the public sees them."""
    return await list_cases(
        session=session,
        case_filter=replace(case_filter, public_location=True),
        scope=public_scope(),
        first=first,
        after=after,
    )


async def count_cases(
    *, session: AsyncSession, case_filter: CaseFilter, scope: ColumnElement[bool]
) -> int:
    # Counted from the case table itself: with no filter and an unlimited scope,
    # a count derived from `select(Case)` lost its FROM and counted one row.
    statement = filtered(select(func.count()).select_from(Case).where(scope), case_filter)
    return int(await session.scalar(statement) or 0)


async def case_by_ticket(
    *, session: AsyncSession, ticket: str, scope: ColumnElement[bool]
) -> Case | None:
    return await session.scalar(select(Case).where(Case.ticket == ticket.strip().upper(), scope))


async def events_by_case_ids(
    *, session: AsyncSession, case_ids: Sequence[int]
) -> dict[int, list[CaseEvent]]:
    grouped: dict[int, list[CaseEvent]] = {i: [] for i in case_ids}
    rows = await session.scalars(
        select(CaseEvent).where(CaseEvent.case_id.in_(case_ids)).order_by(CaseEvent.id)
    )
    for event in rows:
        grouped[event.case_id].append(event)
    return grouped
