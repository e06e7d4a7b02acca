"""Counts of open cases, grouped, for the live screens."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.case_queries import CaseFilter, filtered
from models import OPEN_STATUSES, Case, Category, Dinas, Kecamatan, Kelurahan


class CountGroup(StrEnum):
    STATUS = "STATUS"
    DINAS = "DINAS"
    KELURAHAN = "KELURAHAN"
    KECAMATAN = "KECAMATAN"
    CATEGORY = "CATEGORY"


@dataclass(frozen=True)
class GroupCount:
    key: str | None  # null: cases with no kelurahan (city-wide reports)
    label: str | None
    count: int


async def open_case_counts(
    *,
    session: AsyncSession,
    group_by: CountGroup,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
) -> list[GroupCount]:
    open_filter = replace(
        case_filter,
        statuses=[s for s in (case_filter.statuses or OPEN_STATUSES) if s in OPEN_STATUSES],
    )
    if not open_filter.statuses:
        return []
    count = func.count(Case.id)
    statement: Select[str | None, str | None, int]
    match group_by:
        case CountGroup.STATUS:
            statement = select(Case.status, Case.status, count).group_by(Case.status)
        case CountGroup.DINAS:
            statement = (
                select(Dinas.code, Dinas.short_name, count)
                .join(Dinas, Dinas.id == Case.dinas_id)
                .group_by(Dinas.code, Dinas.short_name)
            )
        case CountGroup.CATEGORY:
            statement = (
                select(Category.code, Category.name, count)
                .join(Category, Category.id == Case.category_id)
                .group_by(Category.code, Category.name)
            )
        case CountGroup.KELURAHAN:
            statement = (
                select(Case.kelurahan_code, Kelurahan.name, count)
                .outerjoin(Kelurahan, Kelurahan.id == Case.kelurahan_id)
                .group_by(Case.kelurahan_code, Kelurahan.name)
            )
        case CountGroup.KECAMATAN:
            statement = (
                select(Case.kecamatan_code, Kecamatan.name, count)
                .outerjoin(Kecamatan, Kecamatan.id == Case.kecamatan_id)
                .group_by(Case.kecamatan_code, Kecamatan.name)
            )
    statement = filtered(statement.select_from(Case).where(scope), open_filter)
    rows = (
        await session.execute(statement.order_by(count.desc(), statement.selected_columns[0]))
    ).all()
    return [GroupCount(key=key, label=label, count=n) for key, label, n in rows]
