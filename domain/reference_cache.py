"""The reference data intake decides with, kept in memory by each server process.

Partners, categories, dinas, routing rules and holidays change a few times a
year, and reading them took six of a submission's round trips. A trigger on each
of their tables gives `reference_version` a new number (from a sequence) in the
transaction that changes them (migration 0007). Intake decides with the data in
memory and writes the case only if the number it decided with is still the
current one; otherwise it reloads and decides again (`domain.intake`). So a
change is seen by the very next submission, also by one in the changing
transaction itself, and a rolled-back change never: its number is never reused.
Not a time-to-live or a notification: either would let a submission route with
a rule that was just deactivated.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import shapely
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from geo import rules
from models import Category, Dinas, Holiday, Partner, RoutingRule
from models.cases import ReferenceVersion

Row = TypeVar("Row", Category, Dinas, RoutingRule)


@dataclass(frozen=True)
class RuleInMemory:
    rule: RoutingRule
    kecamatan_codes: frozenset[str]
    kelurahan_codes: frozenset[str]
    area: shapely.Geometry | None


@dataclass(frozen=True)
class ReferenceData:
    """One consistent reading. The model instances belong to no session (they are
    shared by every request): read them, never change or add them."""

    version: int
    active_partners: frozenset[str]
    active_categories: Mapping[str, Category]  # by code, groups included
    dinas: Mapping[int, Dinas]
    # Active rules per category id, in the order they are tried.
    rules: Mapping[int, tuple[RuleInMemory, ...]]
    holidays: frozenset[date]

    @functools.cached_property
    def holiday_years(self) -> frozenset[int]:
        return frozenset(day.year for day in self.holidays)


async def current_version(*, session: AsyncSession) -> int:
    return int(await session.scalar(select(ReferenceVersion.version)) or 0)


def _detached(model: type[Row], values: Mapping[str, Any]) -> Row:
    # A new instance outside any session: a row loaded through the request's
    # session would sit in its identity map, where that request could change it.
    return model(**values)


async def _rows(session: AsyncSession, model: type[Row], *where: Any) -> list[Row]:
    table = model.__table__
    result = await session.execute(select(table).where(*where))
    return [_detached(model, dict(row._mapping)) for row in result]


async def load_reference_data(*, session: AsyncSession) -> ReferenceData:
    # The version first: data read after it is at least as new, so a mismatch
    # can only cause a needless reload, never a decision on unseen changes.
    version = await current_version(session=session)
    partners = await session.scalars(select(Partner.code).where(Partner.is_active))
    categories = await _rows(session, Category, Category.is_active)
    dinas = await _rows(session, Dinas)
    active_rules = await _rows(session, RoutingRule, RoutingRule.is_active)
    holidays = await session.scalars(select(Holiday.day))

    by_category: defaultdict[int, list[RuleInMemory]] = defaultdict(list)
    for rule in sorted(active_rules, key=lambda r: (-r.priority, r.id)):
        by_category[rule.category_id].append(
            RuleInMemory(
                rule=rule,
                kecamatan_codes=frozenset(rule.kecamatan_codes),
                kelurahan_codes=frozenset(rule.kelurahan_codes),
                area=rules.area_in_memory(rule.area) if rule.area is not None else None,
            )
        )
    return ReferenceData(
        version=version,
        active_partners=frozenset(partners),
        active_categories={c.code: c for c in categories},
        dinas={d.id: d for d in dinas},
        rules={category_id: tuple(found) for category_id, found in by_category.items()},
        holidays=frozenset(holidays),
    )


class ReferenceCache:
    """The latest reading of one process, replaced whole on reload."""

    def __init__(self) -> None:
        self._data: ReferenceData | None = None

    async def get(self, *, session: AsyncSession) -> ReferenceData:
        return self._data or await self.reload(session=session)

    async def reload(self, *, session: AsyncSession) -> ReferenceData:
        self._data = await load_reference_data(session=session)
        return self._data
