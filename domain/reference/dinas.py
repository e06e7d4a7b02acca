"""Dinas: the departments cases are routed to."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.reference.fields import (
    KEEP,
    NAME_MAX,
    Keep,
    Problems,
    checked_code,
    checked_text,
    normalise_code,
    refuse,
)
from models import Category, Dinas, RoutingRule

DINAS_CODE_MAX = 32
SHORT_NAME_MAX = 64


async def dinas_by_code(*, session: AsyncSession, code: str) -> Dinas | None:
    result = await session.scalars(select(Dinas).where(Dinas.code == normalise_code(code)))
    return result.one_or_none()


async def list_dinas(*, session: AsyncSession, include_inactive: bool = False) -> Sequence[Dinas]:
    query = select(Dinas).order_by(Dinas.code)
    if not include_inactive:
        query = query.where(Dinas.is_active)
    return (await session.scalars(query)).all()


async def active_dinas(
    session: AsyncSession, code: str, *, field: str, problems: Problems
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
    problems = Problems()
    code = checked_code(code, field="code", max_length=DINAS_CODE_MAX, problems=problems)
    name = checked_text(name, field="name", max_length=NAME_MAX, problems=problems)
    short_name = checked_text(
        short_name, field="shortName", max_length=SHORT_NAME_MAX, problems=problems
    )
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
        raise refuse("code", f"no dinas has the code {normalise_code(code)!r}")
    problems = Problems()
    if not isinstance(name, Keep):
        name = checked_text(name, field="name", max_length=NAME_MAX, problems=problems)
    if not isinstance(short_name, Keep):
        short_name = checked_text(
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
    session: AsyncSession, dinas: Dinas, *, problems: Problems
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
