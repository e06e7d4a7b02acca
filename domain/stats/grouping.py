"""How statistics group cases: the groupings, each one's key in SQL, and the public key
and label of each key."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import BoundarySet, Case, Category, Dinas, Kecamatan, Kelurahan, Partner

_EPOCH_DAY = date(1970, 1, 1)
_JAKARTA_OFFSET_S = 7 * 3600
_SECONDS_PER_DAY = 86_400


class StatsGroup(StrEnum):
    KELURAHAN = "KELURAHAN"
    KECAMATAN = "KECAMATAN"
    DINAS = "DINAS"
    CATEGORY = "CATEGORY"
    STATUS = "STATUS"
    SOURCE = "SOURCE"
    DAY = "DAY"
    WEEK = "WEEK"


TIME_GROUPS = frozenset({StatsGroup.DAY, StatsGroup.WEEK})


def _local_seconds(moment: Any) -> ColumnElement[Any]:
    # Seconds since 1970-01-01 00:00 WIB. Jakarta has kept UTC+7, without daylight
    # saving, since 1964; fixed arithmetic is ten times cheaper than a named time zone.
    return func.date_part("epoch", moment) + float(_JAKARTA_OFFSET_S)


def _local_day(moment: Any) -> ColumnElement[Any]:
    return func.floor(_local_seconds(moment) / float(_SECONDS_PER_DAY))


def _weekday(day: ColumnElement[Any]) -> ColumnElement[Any]:
    """0 for Monday … 6 for Sunday (1970-01-01 was a Thursday)."""
    shifted = day + 3.0
    return shifted - func.floor(shifted / 7.0) * 7.0


def day_number(day: date) -> int:
    return (day - _EPOCH_DAY).days


def week_of(number: int) -> int:
    return number - (number + 3) % 7


def group_key(group_by: StatsGroup, moment: Any) -> Any:
    match group_by:
        case StatsGroup.KELURAHAN:
            return Case.kelurahan_code
        case StatsGroup.KECAMATAN:
            return Case.kecamatan_code
        case StatsGroup.DINAS:
            return Case.dinas_id
        case StatsGroup.CATEGORY:
            return Case.category_id
        case StatsGroup.STATUS:
            return Case.status
        case StatsGroup.SOURCE:
            return Case.source
        case StatsGroup.DAY:
            return _local_day(moment)
        case StatsGroup.WEEK:
            day = _local_day(moment)
            return day - _weekday(day)


def plain_key(key: Any) -> str | None:
    if key is None:
        return None
    return key.isoformat() if isinstance(key, date) else str(key)


async def group_labels(
    *, session: AsyncSession, group_by: StatsGroup, keys: Sequence[Any]
) -> dict[Any, tuple[str | None, str | None]]:
    """Public key and label of each raw group key (ids become codes)."""
    present = [k for k in keys if k is not None]
    if not present:
        return {}
    match group_by:
        case StatsGroup.KELURAHAN | StatsGroup.KECAMATAN:
            model = Kelurahan if group_by is StatsGroup.KELURAHAN else Kecamatan
            # A code keeps its name across boundary sets unless a regulation renamed
            # it: the active set's name wins.
            areas = await session.execute(
                select(model.code, model.name)
                .join(BoundarySet, BoundarySet.id == model.boundary_set_id)
                .where(model.code.in_(present))
                .order_by(BoundarySet.is_active, model.id)
            )
            return {code: (code, name) for code, name in areas}
        case StatsGroup.DINAS:
            rows = await session.execute(
                select(Dinas.id, Dinas.code, Dinas.short_name).where(Dinas.id.in_(present))
            )
            return {i: (code, name) for i, code, name in rows}
        case StatsGroup.CATEGORY:
            rows = await session.execute(
                select(Category.id, Category.code, Category.name).where(Category.id.in_(present))
            )
            return {i: (code, name) for i, code, name in rows}
        case StatsGroup.SOURCE:
            partners = await session.execute(
                select(Partner.code, Partner.name).where(Partner.code.in_(present))
            )
            return {code: (code, name) for code, name in partners}
        case StatsGroup.DAY | StatsGroup.WEEK:
            # Day numbers since 1970-01-01 (WIB) become ISO dates.
            return {k: ((_EPOCH_DAY + timedelta(days=int(k))).isoformat(), None) for k in present}
        case StatsGroup.STATUS:
            return {k: (plain_key(k), None) for k in present}
