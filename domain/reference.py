"""Administering the reference data: dinas, categories, routing rules, holidays.

Each function checks all of its input before it changes anything, so a refusal
(`ValidationFailed`, naming every bad field as the API spells it) leaves the
session untouched: a GraphQL operation that returns a ValidationError still
commits, and must have written nothing. Functions flush, never commit.

Updates take `KEEP` (the default) for each field they leave as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from enum import Enum
from typing import Any, Final

from sqlalchemy import ColumnElement, any_, extract, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import FieldProblem, ValidationFailed
from geo import rules
from geo.coordinates import LatLon
from geo.lookup import active_set_id
from models import Category, Dinas, Holiday, Kecamatan, Kelurahan, ReportKind, RoutingRule


class Keep(Enum):
    KEEP = "KEEP"


KEEP: Final = Keep.KEEP

CODE_PATTERN = re.compile(r"[A-Z][A-Z0-9_]*")
DINAS_CODE_MAX = 32
CATEGORY_CODE_MAX = 64
NAME_MAX = 200
SHORT_NAME_MAX = 64
DESCRIPTION_MAX = 1000
DEFAULT_DUPLICATE_RADIUS_M = 100
DUPLICATE_RADIUS_RANGE = (1, 5000)
# Service levels count working days; more than a year is a typing error, not a promise.
SERVICE_LEVEL_RANGE = (1, 365)
PRIORITY_RANGE = (0, 1000)


class _Problems:
    def __init__(self) -> None:
        self.items: list[FieldProblem] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(FieldProblem(field, message))

    def extend(self, error: ValidationFailed) -> None:
        self.items.extend(error.problems)

    def has(self, field: str) -> bool:
        return any(p.field == field for p in self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def _refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldProblem(field, message)])


def normalise_code(code: str) -> str:
    return code.strip().upper()


def _code(value: str, *, field: str, max_length: int, problems: _Problems) -> str:
    code = normalise_code(value)
    if not CODE_PATTERN.fullmatch(code):
        problems.add(
            field,
            "use capital letters, digits and underscores, starting with a letter "
            "(e.g. `JALAN_RUSAK`)",
        )
    elif len(code) > max_length:
        problems.add(field, f"at most {max_length} characters")
    return code


def _text(value: str, *, field: str, max_length: int, problems: _Problems) -> str:
    text = value.strip()
    if not text:
        problems.add(field, "must not be empty")
    elif len(text) > max_length:
        problems.add(field, f"at most {max_length} characters")
    return text


def _in_range(value: int, bounds: tuple[int, int], *, field: str, problems: _Problems) -> None:
    low, high = bounds
    if not low <= value <= high:
        problems.add(field, f"must be between {low} and {high}")


def _kinds(values: Iterable[str], *, problems: _Problems) -> list[str]:
    given = {str(v).strip().upper() for v in values}
    unknown = sorted(given - {k.value for k in ReportKind})
    if unknown:
        allowed = ", ".join(k.value for k in ReportKind)
        problems.add("acceptedKinds", f"unknown kind {', '.join(unknown)}; use {allowed}")
    elif not given:
        problems.add("acceptedKinds", "name at least one kind of report")
    # Stored in the enum's order, so equal sets compare equal.
    return [k.value for k in ReportKind if k.value in given]


def _distinct_codes(values: Iterable[str]) -> list[str]:
    codes: list[str] = []
    for value in values:
        code = value.strip()
        if code and code not in codes:
            codes.append(code)
    return codes


# Dinas


async def dinas_by_code(*, session: AsyncSession, code: str) -> Dinas | None:
    result = await session.scalars(select(Dinas).where(Dinas.code == normalise_code(code)))
    return result.one_or_none()


async def list_dinas(*, session: AsyncSession, include_inactive: bool = False) -> Sequence[Dinas]:
    query = select(Dinas).order_by(Dinas.code)
    if not include_inactive:
        query = query.where(Dinas.is_active)
    return (await session.scalars(query)).all()


async def _active_dinas(
    session: AsyncSession, code: str, *, field: str, problems: _Problems
) -> Dinas | None:
    dinas = await dinas_by_code(session=session, code=code)
    if dinas is None:
        problems.add(field, f"no dinas has the code {normalise_code(code)!r}")
    elif not dinas.is_active:
        problems.add(field, f"dinas {dinas.code} is inactive")
    return dinas


async def create_dinas(
    *,
    session: AsyncSession,
    code: str,
    name: str,
    short_name: str,
    is_kelurahan_office: bool = False,
) -> Dinas:
    problems = _Problems()
    code = _code(code, field="code", max_length=DINAS_CODE_MAX, problems=problems)
    name = _text(name, field="name", max_length=NAME_MAX, problems=problems)
    short_name = _text(short_name, field="shortName", max_length=SHORT_NAME_MAX, problems=problems)
    if not problems.has("code") and await dinas_by_code(session=session, code=code):
        problems.add("code", f"dinas {code} already exists")
    problems.raise_if_any()

    dinas = Dinas(
        code=code,
        name=name,
        short_name=short_name,
        is_kelurahan_office=is_kelurahan_office,
        is_active=True,
    )
    session.add(dinas)
    await session.flush()
    return dinas


async def update_dinas(
    *,
    session: AsyncSession,
    code: str,
    name: str | Keep = KEEP,
    short_name: str | Keep = KEEP,
    is_kelurahan_office: bool | Keep = KEEP,
    is_active: bool | Keep = KEEP,
) -> Dinas:
    """Codes are identities (cases, rules and seeds refer to them): they never change."""
    dinas = await dinas_by_code(session=session, code=code)
    if dinas is None:
        raise _refuse("code", f"no dinas has the code {normalise_code(code)!r}")
    problems = _Problems()
    if not isinstance(name, Keep):
        name = _text(name, field="name", max_length=NAME_MAX, problems=problems)
    if not isinstance(short_name, Keep):
        short_name = _text(
            short_name, field="shortName", max_length=SHORT_NAME_MAX, problems=problems
        )
    if is_active is False and dinas.is_active:
        await _check_nothing_routes_to(session, dinas, problems=problems)
    problems.raise_if_any()

    if not isinstance(name, Keep):
        dinas.name = name
    if not isinstance(short_name, Keep):
        dinas.short_name = short_name
    if not isinstance(is_kelurahan_office, Keep):
        dinas.is_kelurahan_office = is_kelurahan_office
    if not isinstance(is_active, Keep):
        dinas.is_active = is_active
    await session.flush()
    return dinas


async def _check_nothing_routes_to(
    session: AsyncSession, dinas: Dinas, *, problems: _Problems
) -> None:
    # An inactive dinas must not receive new cases: whatever routes to it has to
    # be pointed elsewhere first.
    categories = (
        await session.scalars(
            select(Category.code)
            .where(Category.default_dinas_id == dinas.id, Category.is_active)
            .order_by(Category.code)
        )
    ).all()
    rule_ids = (
        await session.scalars(
            select(RoutingRule.id)
            .where(RoutingRule.dinas_id == dinas.id, RoutingRule.is_active)
            .order_by(RoutingRule.id)
        )
    ).all()
    if categories:
        problems.add(
            "isActive",
            f"dinas {dinas.code} is the default of active categories "
            f"{', '.join(categories)}: give them another dinas first",
        )
    if rule_ids:
        problems.add(
            "isActive",
            f"active routing rules {', '.join(map(str, rule_ids))} route to dinas "
            f"{dinas.code}: change or deactivate them first",
        )


# Categories


async def category_by_code(*, session: AsyncSession, code: str) -> Category | None:
    result = await session.scalars(select(Category).where(Category.code == normalise_code(code)))
    return result.one_or_none()


async def get_category(*, session: AsyncSession, category_id: int) -> Category | None:
    return await session.get(Category, category_id)


async def list_categories(
    *,
    session: AsyncSession,
    kind: ReportKind | None = None,
    include_groups: bool = False,
    include_inactive: bool = False,
) -> Sequence[Category]:
    """Categories by code; by default only the active leaves, those a report can take."""
    query = select(Category).order_by(Category.code)
    if kind is not None:
        query = query.where(literal(ReportKind(kind).value) == any_(Category.accepted_kinds))
    if not include_groups:
        query = query.where(Category.parent_id.is_not(None))
    if not include_inactive:
        query = query.where(Category.is_active)
    return (await session.scalars(query)).all()


async def child_categories(
    *, session: AsyncSession, parent_id: int, include_inactive: bool = False
) -> Sequence[Category]:
    query = select(Category).where(Category.parent_id == parent_id).order_by(Category.code)
    if not include_inactive:
        query = query.where(Category.is_active)
    return (await session.scalars(query)).all()


async def _group(session: AsyncSession, code: str, *, problems: _Problems) -> Category | None:
    parent = await category_by_code(session=session, code=code)
    if parent is None:
        problems.add("parentCode", f"no category has the code {normalise_code(code)!r}")
    elif parent.parent_id is not None:
        problems.add("parentCode", f"{parent.code} is not a group: categories have two levels only")
    elif not parent.is_active:
        problems.add("parentCode", f"group {parent.code} is inactive")
    return parent


async def create_category(
    *,
    session: AsyncSession,
    code: str,
    name: str,
    accepted_kinds: Iterable[str],
    parent_code: str | None = None,
    default_dinas_code: str | None = None,
    service_level_days: int | None = None,
    duplicate_radius_m: int = DEFAULT_DUPLICATE_RADIUS_M,
) -> Category:
    """A group when `parent_code` is None (it only groups), else a leaf under that group:
    a leaf routes reports, so it needs a dinas and a service level."""
    problems = _Problems()
    code = _code(code, field="code", max_length=CATEGORY_CODE_MAX, problems=problems)
    name = _text(name, field="name", max_length=NAME_MAX, problems=problems)
    kinds = _kinds(accepted_kinds, problems=problems)
    _in_range(
        duplicate_radius_m, DUPLICATE_RADIUS_RANGE, field="duplicateRadiusM", problems=problems
    )
    if not problems.has("code") and await category_by_code(session=session, code=code):
        problems.add("code", f"category {code} already exists")

    parent: Category | None = None
    dinas: Dinas | None = None
    if parent_code is None:
        if default_dinas_code is not None:
            problems.add("defaultDinasCode", "a group does not route reports: leave it empty")
        if service_level_days is not None:
            problems.add("serviceLevelDays", "a group has no service level: leave it empty")
    else:
        parent = await _group(session, parent_code, problems=problems)
        if default_dinas_code is None:
            problems.add("defaultDinasCode", "a category under a group needs a default dinas")
        else:
            dinas = await _active_dinas(
                session, default_dinas_code, field="defaultDinasCode", problems=problems
            )
        if service_level_days is None:
            problems.add(
                "serviceLevelDays", "a category under a group needs a service level in days"
            )
        else:
            _in_range(
                service_level_days,
                SERVICE_LEVEL_RANGE,
                field="serviceLevelDays",
                problems=problems,
            )
    problems.raise_if_any()

    category = Category(
        code=code,
        name=name,
        parent_id=parent.id if parent else None,
        accepted_kinds=kinds,
        default_dinas_id=dinas.id if dinas else None,
        service_level_days=service_level_days,
        duplicate_radius_m=duplicate_radius_m,
        is_active=True,
    )
    session.add(category)
    await session.flush()
    return category


async def update_category(
    *,
    session: AsyncSession,
    code: str,
    name: str | Keep = KEEP,
    parent_code: str | Keep = KEEP,
    accepted_kinds: Iterable[str] | Keep = KEEP,
    default_dinas_code: str | Keep = KEEP,
    service_level_days: int | Keep = KEEP,
    duplicate_radius_m: int | Keep = KEEP,
    is_active: bool | Keep = KEEP,
) -> Category:
    """A leaf may move to another group; a group stays a group and a leaf a leaf."""
    category = await category_by_code(session=session, code=code)
    if category is None:
        raise _refuse("code", f"no category has the code {normalise_code(code)!r}")
    is_group = category.parent_id is None
    problems = _Problems()
    if not isinstance(name, Keep):
        name = _text(name, field="name", max_length=NAME_MAX, problems=problems)
    kinds = KEEP if isinstance(accepted_kinds, Keep) else _kinds(accepted_kinds, problems=problems)
    if not isinstance(duplicate_radius_m, Keep):
        _in_range(
            duplicate_radius_m, DUPLICATE_RADIUS_RANGE, field="duplicateRadiusM", problems=problems
        )

    parent: Category | None = None
    dinas: Dinas | None = None
    if is_group:
        if not isinstance(parent_code, Keep):
            problems.add("parentCode", f"{category.code} is a group: groups stay at the top")
        if not isinstance(default_dinas_code, Keep):
            problems.add("defaultDinasCode", "a group does not route reports")
        if not isinstance(service_level_days, Keep):
            problems.add("serviceLevelDays", "a group has no service level")
        if is_active is False and category.is_active:
            children = await child_categories(session=session, parent_id=category.id)
            if children:
                problems.add(
                    "isActive",
                    f"group {category.code} still has active categories "
                    f"{', '.join(c.code for c in children)}: deactivate or move them first",
                )
    else:
        if not isinstance(parent_code, Keep):
            parent = await _group(session, parent_code, problems=problems)
        if not isinstance(default_dinas_code, Keep):
            dinas = await _active_dinas(
                session, default_dinas_code, field="defaultDinasCode", problems=problems
            )
        if not isinstance(service_level_days, Keep):
            _in_range(
                service_level_days,
                SERVICE_LEVEL_RANGE,
                field="serviceLevelDays",
                problems=problems,
            )
        if is_active is True and not category.is_active and isinstance(parent_code, Keep):
            assert category.parent_id is not None
            current_parent = await get_category(session=session, category_id=category.parent_id)
            if current_parent is not None and not current_parent.is_active:
                problems.add(
                    "isActive",
                    f"its group {current_parent.code} is inactive: activate it or move "
                    "the category first",
                )
    problems.raise_if_any()

    if not isinstance(name, Keep):
        category.name = name
    if not isinstance(kinds, Keep):
        category.accepted_kinds = kinds
    if not isinstance(duplicate_radius_m, Keep):
        category.duplicate_radius_m = duplicate_radius_m
    if parent is not None:
        category.parent_id = parent.id
    if dinas is not None:
        category.default_dinas_id = dinas.id
    if not isinstance(service_level_days, Keep):
        category.service_level_days = service_level_days
    if not isinstance(is_active, Keep):
        category.is_active = is_active
    await session.flush()
    return category


# Routing rules


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
    problems: _Problems,
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


def _area(geojson: Mapping[str, Any], *, problems: _Problems) -> Any:
    try:
        return rules.area_to_db(rules.parse_area(geojson, field="area"))
    except ValidationFailed as error:
        problems.extend(error)
        return None


def _needs_an_area(problems: _Problems) -> None:
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
    problems = _Problems()
    category = await category_by_code(session=session, code=category_code)
    if category is None:
        problems.add("categoryCode", f"no category has the code {normalise_code(category_code)!r}")
    elif category.parent_id is None:
        problems.add("categoryCode", f"{category.code} is a group: rules apply to its categories")
    dinas = await _active_dinas(session, dinas_code, field="dinasCode", problems=problems)
    _in_range(priority, PRIORITY_RANGE, field="priority", problems=problems)
    description = _text(
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
        raise _refuse("id", f"no routing rule has the id {rule_id}")
    problems = _Problems()
    dinas: Dinas | None = None
    if not isinstance(dinas_code, Keep):
        dinas = await _active_dinas(session, dinas_code, field="dinasCode", problems=problems)
    if not isinstance(priority, Keep):
        _in_range(priority, PRIORITY_RANGE, field="priority", problems=problems)
    if not isinstance(description, Keep):
        description = _text(
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


# Holidays


async def list_holidays(*, session: AsyncSession, year: int | None = None) -> Sequence[Holiday]:
    query = select(Holiday).order_by(Holiday.day)
    if year is not None:
        query = query.where(extract("year", Holiday.day) == year)
    return (await session.scalars(query)).all()


async def holiday_years(*, session: AsyncSession) -> set[int]:
    years = await session.scalars(select(func.distinct(extract("year", Holiday.day))))
    return {int(year) for year in years}


async def add_holiday(*, session: AsyncSession, day: date, name: str) -> Holiday:
    """A day off for the service levels: a national holiday or a cuti bersama day."""
    problems = _Problems()
    name = _text(name, field="name", max_length=NAME_MAX, problems=problems)
    existing = await session.get(Holiday, day)
    if existing is not None:
        problems.add("date", f"{day.isoformat()} is already a holiday: {existing.name}")
    problems.raise_if_any()

    holiday = Holiday(day=day, name=name)
    session.add(holiday)
    await session.flush()
    return holiday


async def remove_holiday(*, session: AsyncSession, day: date) -> Holiday:
    """Returns the removed holiday. Service levels already computed keep their due dates."""
    holiday = await session.get(Holiday, day)
    if holiday is None:
        raise _refuse("date", f"{day.isoformat()} is not a holiday")
    await session.delete(holiday)
    await session.flush()
    return holiday
