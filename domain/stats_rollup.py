"""The statistics rollup: settled cases counted per local day and group, refreshed in
the background.

A settled case (CLOSED, REJECTED or DUPLICATE) never changes again in anything the
statistics count: no action leads out of those statuses, and only open cases are
rerouted. So once counted, its counts stay right, and a refresh only adds the cases
that settled since the previous one: those whose `settled_txid` (set by a trigger in
the settling transaction) the previous refresh's snapshot did not see. The refresh
records its own snapshot with the counts in the same transaction, which is what lets
the readers (`domain.stats.rollup_reading`) read every other case themselves, exactly.

Working hours depend on the holidays: the rollup records the weekday holidays it was
counted with, readers ignore it when they differ from today's, and the next refresh
rebuilds it.

Only one refresh runs at a time (an advisory lock); it runs in a REPEATABLE READ
transaction so that its statements and the recorded snapshot see the same cases. It
reads and counts first, holding no transaction id (the live feed waits for every
transaction with one), and writes its few statements at the end. No request ever
writes to the rollup: submitting or changing a case locks nothing here.
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
    Select,
    String,
    and_,
    bindparam,
    cast,
    column,
    delete,
    func,
    literal,
    not_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, CaseStatsDay, CaseStatsRollup, CaseStatus
from models.cases import TransactionId
from models.stats import Snapshot

# pg_try_advisory_xact_lock key: "PATRIOT" "STATS" as a number nobody else uses.
ROLLUP_LOCK = 7_201_000_006
ROLLUP_ID = 1
# Day rows per INSERT (a rebuild writes about 93,000, with 43 MB of hours).
WRITE_BATCH = 10_000
_DAY_COLUMNS: dict[str, Any] = {
    "dimension": String,
    "day": Date,
    "key": String,
    "received": Integer,
    "resolved": Integer,
    "resolved_on_time": Integer,
    "hours": LargeBinary,
}
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


@dataclass(frozen=True)
class RollupContributions:
    """What a refresh adds, read and counted before anything is written."""

    rebuild: bool
    snapshot: str  # the snapshot the counts were read in (text form)
    rows: list[dict[str, Any]]  # case_stats_day rows to add


async def refresh_rollup(*, session: AsyncSession, now: datetime) -> RollupRefresh | None:
    """Add the cases settled since the last refresh (or rebuild); None when another
    refresh holds the lock. Call it in a REPEATABLE READ transaction of its own."""
    contributions = await count_contributions(session=session)
    if contributions is None:
        return None
    return await write_contributions(session=session, contributions=contributions, now=now)


async def count_contributions(*, session: AsyncSession) -> RollupContributions | None:
    """Read and count, writing nothing: a transaction gets its id at its first write,
    and the live feed holds back every event until each transaction with an id that
    started before it has ended, so the seconds of a rebuild must pass without one."""
    if not await session.scalar(select(func.pg_try_advisory_xact_lock(ROLLUP_LOCK))):
        return None
    # The snapshot is the transaction's, fixed at its first statement: every count
    # below reads exactly the cases it sees.
    snapshot = await session.scalar(select(cast(func.pg_current_snapshot(), String)))
    assert snapshot is not None
    state = (
        await session.execute(
            select(
                cast(CaseStatsRollup.snapshot, String),
                CaseStatsRollup.weekday_holidays == func.weekday_holiday_numbers(),
            ).where(CaseStatsRollup.id == ROLLUP_ID)
        )
    ).one_or_none()
    rebuild = state is None or not state[1]
    if rebuild:
        settled: ColumnElement[bool] = Case.settled_txid.is_not(None)
    else:
        assert state is not None
        before = cast(literal(state[0], String), Snapshot())
        settled = and_(
            Case.settled_txid >= func.pg_snapshot_xmin(before, type_=TransactionId()),
            not_(func.pg_visible_in_snapshot(Case.settled_txid, before)),
        )
    rows: list[dict[str, Any]] = []
    if rebuild or await session.scalar(select(func.count()).where(settled)):
        for dimension, key in _dimensions().items():
            counted = await session.execute(_counts(dimension=dimension, key=key, settled=settled))
            rows.extend(dict(row._mapping) for row in counted)
    return RollupContributions(rebuild=rebuild, snapshot=snapshot, rows=rows)


async def write_contributions(
    *, session: AsyncSession, contributions: RollupContributions, now: datetime
) -> RollupRefresh:
    """Record the snapshot, then the counts: a few short statements at the end."""
    snapshot = cast(literal(contributions.snapshot, String), Snapshot())
    # The rollup row first. A refresh whose snapshot predates another refresh's commit
    # (it read the rollup before that refresh recorded what it added) would add the
    # same cases twice; REPEATABLE READ refuses to update, or to insert over, a row
    # committed after the snapshot (a serialization failure), so it fails here
    # before writing anything else, and the next sweep refreshes again.
    await session.execute(
        insert(CaseStatsRollup)
        .values(
            id=ROLLUP_ID,
            snapshot=snapshot,
            weekday_holidays=func.weekday_holiday_numbers(),
            refreshed_at=now,
        )
        .on_conflict_do_update(
            index_elements=[CaseStatsRollup.id],
            set_={
                "snapshot": snapshot,
                "weekday_holidays": func.weekday_holiday_numbers(),
                "refreshed_at": now,
            },
        )
    )
    if contributions.rebuild:
        await session.execute(delete(CaseStatsDay))
    for start in range(0, len(contributions.rows), WRITE_BATCH):
        await session.execute(_add_rows(contributions.rows[start : start + WRITE_BATCH]))
    return RollupRefresh(rebuilt=contributions.rebuild, rows=len(contributions.rows))


def _add_rows(rows: list[dict[str, Any]]) -> Insert:
    """Add day rows to those there, sent as one array per column that the server
    unnests: bound as the rows of a multi-row VALUES, a rebuild's 93,000 rows took
    18 s to write (every value a parameter of its own); as seven arrays, 2.8 s."""
    arrays = [
        cast(bindparam(name, [row[name] for row in rows]), ARRAY(type_))
        for name, type_ in _DAY_COLUMNS.items()
    ]
    added = (
        func.unnest(*arrays)
        .table_valued(*(column(name, type_) for name, type_ in _DAY_COLUMNS.items()))
        .render_derived()
    )
    statement = insert(CaseStatsDay).from_select(list(_DAY_COLUMNS), select(added))
    table = CaseStatsDay.__table__.c
    return statement.on_conflict_do_update(
        index_elements=[CaseStatsDay.dimension, CaseStatsDay.day, CaseStatsDay.key],
        set_={
            "received": table.received + statement.excluded.received,
            "resolved": table.resolved + statement.excluded.resolved,
            "resolved_on_time": table.resolved_on_time + statement.excluded.resolved_on_time,
            "hours": table.hours.concat(statement.excluded.hours),
        },
    )


def _counts(*, dimension: str, key: Any, settled: ColumnElement[bool]) -> Select[Any]:
    """One dimension's contribution of the settled cases, per local day and key."""
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
    return select(
        literal(dimension, String).label("dimension"),
        rows.c.day,
        rows.c.key,
        func.sum(rows.c.received).label("received"),
        func.sum(rows.c.resolved).label("resolved"),
        func.sum(rows.c.on_time).label("resolved_on_time"),
        func.coalesce(func.string_agg(rows.c.hours, _EMPTY), _EMPTY).label("hours"),
    ).group_by(rows.c.day, rows.c.key)
