"""Routing rules: inside an area, a category's reports go to another dinas than its
default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, any_, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ValidationFailed
from domain.reference.categories import category_by_code
from domain.reference.dinas import active_dinas
from domain.reference.fields import (
    KEEP,
    Keep,
    Problems,
    check_in_range,
    checked_text,
    normalise_code,
    refuse,
)
from geo import rules
from geo.coordinates import LatLon
from geo.lookup import active_set_id
from models import Category, Dinas, Kecamatan, Kelurahan, RoutingRule

DESCRIPTION_MAX = 1000
PRIORITY_RANGE = (0, 1000)


def _distinct_codes(values: Iterable[str]) -> list[str]:
    codes: list[str] = []
    for value in values:
        code = value.strip()
        if code and code not in codes:
            codes.append(code)
    return codes


async def get_routing_rule(*, session: AsyncSession, rule_id: int) -> RoutingRule | None:
    return await session.get(RoutingRule, rule_id)


async def list_routing_rules(
    *, session: AsyncSession, category_code: str, include_inactive: bool = False
) -> Sequence[RoutingRule]:
    """The rules of one category in the order they are tried."""
    query = (
        select(RoutingRule)
        .join(Category, Category.id == RoutingRule.category_id)
        .where(Category.code == normalise_code(category_code))
        .order_by(RoutingRule.priority.desc(), RoutingRule.id)
    )
    if not include_inactive:
        query = query.where(RoutingRule.is_active)
    return (await session.scalars(query)).all()


async def _area_codes(
    session: AsyncSession,
    model: type[Kecamatan] | type[Kelurahan],
    values: Iterable[str],
    *,
    field: str,
    problems: Problems,
) -> list[str]:
    """Codes must exist in the active boundary set; rules keep codes, not ids, so
    that they still apply after a new boundary set is activated."""
    codes = _distinct_codes(values)
    if not codes:
        return codes
    set_id = await active_set_id(session=session)
    known = set(
        (
            await session.scalars(
                select(model.code).where(model.boundary_set_id == set_id, model.code.in_(codes))
            )
        ).all()
    )
    unknown = [code for code in codes if code not in known]
    if unknown:
        problems.add(field, f"not in the active boundary set: {', '.join(unknown)}")
    return codes


def _area(geojson: Mapping[str, Any], *, problems: Problems) -> Any:
    try:
        return rules.area_to_db(rules.parse_area(geojson, field="area"))
    except ValidationFailed as error:
        problems.extend(error)
        return None


def _needs_an_area(problems: Problems) -> None:
    problems.add("area", "a rule needs kecamatanCodes, kelurahanCodes or a GeoJSON area")


async def create_routing_rule(
    *,
    session: AsyncSession,
    category_code: str,
    dinas_code: str,
    priority: int,
    description: str,
    kecamatan_codes: Iterable[str] = (),
    kelurahan_codes: Iterable[str] = (),
    area: Mapping[str, Any] | None = None,
) -> RoutingRule:
    """Inside its area, a rule sends the category's reports to its dinas instead of the
    category's default; the highest priority wins (see `find_routing_rule`)."""
    problems = Problems()
    category = await category_by_code(session=session, code=category_code)
    if category is None:
        problems.add("categoryCode", f"no category has the code {normalise_code(category_code)!r}")
    elif category.parent_id is None:
        problems.add("categoryCode", f"{category.code} is a group: rules apply to its categories")
    dinas = await active_dinas(session, dinas_code, field="dinasCode", problems=problems)
    check_in_range(priority, PRIORITY_RANGE, field="priority", problems=problems)
    description = checked_text(
        description, field="description", max_length=DESCRIPTION_MAX, problems=problems
    )
    kecamatan = await _area_codes(
        session, Kecamatan, kecamatan_codes, field="kecamatanCodes", problems=problems
    )
    kelurahan = await _area_codes(
        session, Kelurahan, kelurahan_codes, field="kelurahanCodes", problems=problems
    )
    geometry = _area(area, problems=problems) if area is not None else None
    if not kecamatan and not kelurahan and area is None:
        _needs_an_area(problems)
    problems.raise_if_any()
    assert category is not None and dinas is not None

    rule = RoutingRule(
        category_id=category.id,
        dinas_id=dinas.id,
        priority=priority,
        description=description,
        kecamatan_codes=kecamatan,
        kelurahan_codes=kelurahan,
        area=geometry,
        is_active=True,
    )
    session.add(rule)
    await session.flush()
    return rule


async def update_routing_rule(
    *,
    session: AsyncSession,
    rule_id: int,
    dinas_code: str | Keep = KEEP,
    priority: int | Keep = KEEP,
    description: str | Keep = KEEP,
    kecamatan_codes: Iterable[str] | Keep = KEEP,
    kelurahan_codes: Iterable[str] | Keep = KEEP,
    area: Mapping[str, Any] | Keep | None = KEEP,
    is_active: bool | Keep = KEEP,
) -> RoutingRule:
    """`area=None` removes the drawn area. A rule's category never changes: make a new rule."""
    rule = await get_routing_rule(session=session, rule_id=rule_id)
    if rule is None:
        raise refuse("id", f"no routing rule has the id {rule_id}")
    problems = Problems()
    dinas: Dinas | None = None
    if not isinstance(dinas_code, Keep):
        dinas = await active_dinas(session, dinas_code, field="dinasCode", problems=problems)
    if not isinstance(priority, Keep):
        check_in_range(priority, PRIORITY_RANGE, field="priority", problems=problems)
    if not isinstance(description, Keep):
        description = checked_text(
            description, field="description", max_length=DESCRIPTION_MAX, problems=problems
        )
    kecamatan = (
        rule.kecamatan_codes
        if isinstance(kecamatan_codes, Keep)
        else await _area_codes(
            session, Kecamatan, kecamatan_codes, field="kecamatanCodes", problems=problems
        )
    )
    kelurahan = (
        rule.kelurahan_codes
        if isinstance(kelurahan_codes, Keep)
        else await _area_codes(
            session, Kelurahan, kelurahan_codes, field="kelurahanCodes", problems=problems
        )
    )
    geometry: Any = None
    if isinstance(area, Keep):
        has_area = rule.area is not None
    elif area is None:
        has_area = False
    else:
        geometry = _area(area, problems=problems)
        has_area = True
    if not kecamatan and not kelurahan and not has_area:
        _needs_an_area(problems)
    problems.raise_if_any()

    if dinas is not None:
        rule.dinas_id = dinas.id
    if not isinstance(priority, Keep):
        rule.priority = priority
    if not isinstance(description, Keep):
        rule.description = description
    if not isinstance(kecamatan_codes, Keep):
        rule.kecamatan_codes = kecamatan
    if not isinstance(kelurahan_codes, Keep):
        rule.kelurahan_codes = kelurahan
    if not isinstance(area, Keep):
        rule.area = geometry
    if not isinstance(is_active, Keep):
        rule.is_active = is_active
    await session.flush()
    return rule


async def deactivate_routing_rule(*, session: AsyncSession, rule_id: int) -> RoutingRule:
    """Rules are deactivated, never deleted: cases keep pointing at the rule that routed them."""
    return await update_routing_rule(session=session, rule_id=rule_id, is_active=False)


async def find_routing_rule(
    *,
    session: AsyncSession,
    category_id: int,
    kecamatan_code: str | None,
    kelurahan_code: str | None,
    point: LatLon | None,
) -> RoutingRule | None:
    """The active rule of the category that applies to a place: its kecamatan codes
    hold the kecamatan, or its kelurahan codes the kelurahan, or its area covers
    the point. Highest priority first; equal priorities go to the oldest rule
    (lowest id), so the answer never depends on the query plan."""
    applies: list[ColumnElement[bool]] = []
    if kecamatan_code:
        applies.append(literal(kecamatan_code) == any_(RoutingRule.kecamatan_codes))
    if kelurahan_code:
        applies.append(literal(kelurahan_code) == any_(RoutingRule.kelurahan_codes))
    if point is not None:
        applies.append(rules.area_covers(point))
    if not applies:
        return None
    result = await session.scalars(
        select(RoutingRule)
        .where(RoutingRule.category_id == category_id, RoutingRule.is_active, or_(*applies))
        .order_by(RoutingRule.priority.desc(), RoutingRule.id)
        .limit(1)
    )
    return result.one_or_none()
