"""The statistics rollup: settled cases counted per local day and group, refreshed in
the background.

A settled case (CLOSED, REJECTED or DUPLICATE) never changes again in anything the
statistics count: no action leads out of those statuses, and only open cases are
rerouted. So once counted, its counts stay right, and a refresh only adds the cases
that settled since the previous one: those whose `settled_txid` (set by a trigger in
the settling transaction) the previous refresh's snapshot did not see. The refresh
records its own snapshot with the counts in the same transaction, which is what lets
the readers (`domain.stats`) read every other case themselves, exactly.

Working hours depend on the holidays: the rollup records the weekday holidays it was
counted with, readers ignore it when they differ from today's, and the next refresh
rebuilds it.

Only one refresh runs at a time (an advisory lock); it runs in a REPEATABLE READ
transaction so that its statements and the recorded snapshot see the same cases. No
request ever writes to the rollup: submitting or changing a case locks nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    LargeBinary,
    String,
    and_,
    cast,
    delete,
    func,
    literal,
    not_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, CaseStatsDay, CaseStatsRollup, CaseStatus
from models.cases import TransactionId
from models.stats import Snapshot

# pg_try_advisory_xact_lock key: "PATRIOT" "STATS" as a number nobody else uses.
ROLLUP_LOCK = 7_201_000_006
ROLLUP_ID = 1
_EMPTY = literal(b"", LargeBinary)


def _dimensions() -> dict[str, Any]:
    """Each rollup dimension and its key as text ("" for none)."""
    return {
        "KELURAHAN": func.coalesce(Case.kelurahan_code, ""),
        "KECAMATAN": func.coalesce(Case.kecamatan_code, ""),
        "DINAS": cast(Case.dinas_id, String),
        "CATEGORY": cast(Case.category_id, String),
        "STATUS": Case.status,
        "SOURCE": Case.source,
        "DAY": literal("", String),
    }


def _local_date(moment: Any) -> ColumnElement[Any]:
    return cast(func.timezone("Asia/Jakarta", moment), Date)


@dataclass(frozen=True)
class RollupRefresh:
    rebuilt: bool  # everything counted again (first refresh, or the holidays changed)
    rows: int  # day rows written


async def refresh_rollup(*, session: AsyncSession, now: datetime) -> RollupRefresh | None:
    """Add the cases settled since the last refresh (or rebuild); None when another
    refresh holds the lock. Call it in a REPEATABLE READ transaction of its own."""
    if not await session.scalar(select(func.pg_try_advisory_xact_lock(ROLLUP_LOCK))):
        return None
    # Locked, so that a refresh whose snapshot predates another's commit fails instead
    # of adding the same cases twice (REPEATABLE READ refuses to lock a row changed
    # since the snapshot).
    state = (
        await session.execute(
            select(
                cast(CaseStatsRollup.snapshot, String),
                CaseStatsRollup.weekday_holidays == func.weekday_holiday_numbers(),
            )
            .where(CaseStatsRollup.id == ROLLUP_ID)
            .with_for_update()
        )
    ).one_or_none()
    rebuild = state is None or not state[1]
    if rebuild:
        await session.execute(delete(CaseStatsDay))
        settled: ColumnElement[bool] = Case.settled_txid.is_not(None)
    else:
        assert state is not None
        before = cast(literal(state[0], String), Snapshot())
        settled = and_(
            Case.settled_txid >= func.pg_snapshot_xmin(before, type_=TransactionId()),
            not_(func.pg_visible_in_snapshot(Case.settled_txid, before)),
        )
    rows = 0
    if rebuild or await session.scalar(select(func.count()).where(settled)):
        for dimension, key in _dimensions().items():
            rows += await _add(session=session, dimension=dimension, key=key, settled=settled)
    await session.execute(
        insert(CaseStatsRollup)
        .values(
            id=ROLLUP_ID,
            snapshot=cast(func.pg_current_snapshot(), Snapshot()),
            weekday_holidays=func.weekday_holiday_numbers(),
            refreshed_at=now,
        )
        .on_conflict_do_update(
            index_elements=[CaseStatsRollup.id],
            set_={
                "snapshot": cast(func.pg_current_snapshot(), Snapshot()),
                "weekday_holidays": func.weekday_holiday_numbers(),
                "refreshed_at": now,
            },
        )
    )
    return RollupRefresh(rebuilt=rebuild, rows=rows)


async def _add(
    *, session: AsyncSession, dimension: str, key: Any, settled: ColumnElement[bool]
) -> int:
    received = select(
        _local_date(Case.created_at).label("day"),
        key.label("key"),
        literal(1, Integer).label("received"),
        literal(0, Integer).label("resolved"),
        literal(0, Integer).label("on_time"),
        literal(None, LargeBinary).label("hours"),
    ).where(settled)
    # Of the settled statuses only CLOSED is a standing resolution.
    resolved = select(
        _local_date(Case.resolved_at),
        key,
        literal(0, Integer),
        literal(1, Integer),
        cast(Case.resolved_at <= Case.due_at, Integer),
        func.float8send(Case.working_hours_to_resolve),
    ).where(settled, Case.status == CaseStatus.CLOSED.value, Case.resolved_at.is_not(None))
    rows = union_all(received, resolved).subquery("contributions")
    counts = select(
        literal(dimension, String),
        rows.c.day,
        rows.c.key,
        func.sum(rows.c.received),
        func.sum(rows.c.resolved),
        func.sum(rows.c.on_time),
        func.coalesce(func.string_agg(rows.c.hours, _EMPTY), _EMPTY),
    ).group_by(rows.c.day, rows.c.key)
    statement = insert(CaseStatsDay).from_select(
        ["dimension", "day", "key", "received", "resolved", "resolved_on_time", "hours"], counts
    )
    table = CaseStatsDay.__table__.c
    statement = statement.on_conflict_do_update(
        index_elements=[CaseStatsDay.dimension, CaseStatsDay.day, CaseStatsDay.key],
        set_={
            "received": table.received + statement.excluded.received,
            "resolved": table.resolved + statement.excluded.resolved,
            "resolved_on_time": table.resolved_on_time + statement.excluded.resolved_on_time,
            "hours": table.hours.concat(statement.excluded.hours),
        },
    )
    result = await session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
