"""Categories: groups, and the categories under them that route reports to a dinas."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import any_, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.reference.dinas import active_dinas
from domain.reference.fields import (
    KEEP,
    NAME_MAX,
    Keep,
    Problems,
    check_in_range,
    checked_code,
    checked_text,
    normalise_code,
    refuse,
)
from models import Category, Dinas, ReportKind

CATEGORY_CODE_MAX = 64
DEFAULT_DUPLICATE_RADIUS_M = 100
DUPLICATE_RADIUS_RANGE = (1, 5000)
# Service levels count working days; more than a year is a typing error, not a promise.
SERVICE_LEVEL_RANGE = (1, 365)


def _kinds(values: Iterable[str], *, problems: Problems) -> list[str]:
    given = {str(v).strip().upper() for v in values}
    unknown = sorted(given - {k.value for k in ReportKind})
    if unknown:
        allowed = ", ".join(k.value for k in ReportKind)
        problems.add("acceptedKinds", f"unknown kind {', '.join(unknown)}; use {allowed}")
    elif not given:
        problems.add("acceptedKinds", "name at least one kind of report")
    # Stored in the enum's order, so equal sets compare equal.
    return [k.value for k in ReportKind if k.value in given]


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


async def _group(session: AsyncSession, code: str, *, problems: Problems) -> Category | None:
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
    problems = Problems()
    code = checked_code(code, field="code", max_length=CATEGORY_CODE_MAX, problems=problems)
    name = checked_text(name, field="name", max_length=NAME_MAX, problems=problems)
    kinds = _kinds(accepted_kinds, problems=problems)
    check_in_range(
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
            dinas = await active_dinas(
                session, default_dinas_code, field="defaultDinasCode", problems=problems
            )
        if service_level_days is None:
            problems.add(
                "serviceLevelDays", "a category under a group needs a service level in days"
            )
        else:
            check_in_range(
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
        raise refuse("code", f"no category has the code {normalise_code(code)!r}")
    is_group = category.parent_id is None
    problems = Problems()
    if not isinstance(name, Keep):
        name = checked_text(name, field="name", max_length=NAME_MAX, problems=problems)
    kinds = KEEP if isinstance(accepted_kinds, Keep) else _kinds(accepted_kinds, problems=problems)
    if not isinstance(duplicate_radius_m, Keep):
        check_in_range(
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
            dinas = await active_dinas(
                session, default_dinas_code, field="defaultDinasCode", problems=problems
            )
        if not isinstance(service_level_days, Keep):
            check_in_range(
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
