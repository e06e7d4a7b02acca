"""Reading the event log in a total order that never skips a late commit.

Events are ordered by (txid, id): the id of the writing transaction, then the
event id. A reader only takes events of transactions older than every
transaction still running (`pg_snapshot_xmin`), so an event that commits later
than one already delivered always sorts after it: no gap, no repeat. The price
is that a long-running writer holds the feed back until it ends.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable
from dataclasses import dataclass
from functools import total_ordering

from sqlalchemy import BigInteger, ColumnElement, Integer, Select, bindparam, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.errors import FieldProblem, ValidationFailed
from geo.shapes import point_lat_lon
from models import Case, CaseEvent, Category, Dinas
from models.cases import TransactionId

_CURSOR_PREFIX = "ev:"


@total_ordering
@dataclass(frozen=True)
class FeedPosition:
    txid: int
    event_id: int

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, FeedPosition):
            return NotImplemented
        return (self.txid, self.event_id) < (other.txid, other.event_id)

    def cursor(self) -> str:
        raw = f"{_CURSOR_PREFIX}{self.txid}.{self.event_id}"
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @classmethod
    def from_cursor(cls, cursor: str, *, field: str = "after") -> FeedPosition:
        try:
            raw = base64.urlsafe_b64decode(cursor.encode()).decode()
            if raw.startswith(_CURSOR_PREFIX):
                numbers = raw.removeprefix(_CURSOR_PREFIX).split(".")
                # Both are 64-bit in the database: larger ones would fail as parameters.
                if len(numbers) == 2 and all(
                    n.isascii() and n.isdigit() and int(n) < 2**63 for n in numbers
                ):
                    return cls(int(numbers[0]), int(numbers[1]))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass
        raise ValidationFailed([FieldProblem(field, "not an event cursor returned by this API")])


START = FeedPosition(0, 0)


@dataclass(frozen=True)
class FeedItem:
    """An event with what filters need to know about its case, as it is now."""

    position: FeedPosition
    event: CaseEvent
    case: Case
    category_code: str
    category_group_code: str | None
    dinas_code: str
    lat: float | None
    lon: float | None


def _settled() -> ColumnElement[bool]:
    # Transactions below the oldest running one have all ended.
    return CaseEvent.txid < func.pg_snapshot_xmin(func.pg_current_snapshot())


@functools.cache
def _read_after_statement(*, bounded: bool) -> Select[CaseEvent, Case, str, str, str]:
    """Built once per process: composing it (an aliased class, five joins) cost
    four times more CPU than running it, and the live feed runs it after every
    commit that writes events."""
    group = aliased(Category)
    position = tuple_(CaseEvent.txid, CaseEvent.id)
    statement = (
        select(CaseEvent, Case, Category.code, group.code, Dinas.code)
        .join(Case, Case.id == CaseEvent.case_id)
        .join(Category, Category.id == Case.category_id)
        .outerjoin(group, group.id == Category.parent_id)
        .join(Dinas, Dinas.id == Case.dinas_id)
        .where(
            position
            > tuple_(
                bindparam("after_txid", type_=TransactionId()),
                bindparam("after_event_id", type_=BigInteger),
            ),
            _settled(),
        )
        .order_by(CaseEvent.txid, CaseEvent.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if bounded:
        statement = statement.where(
            position
            <= tuple_(
                bindparam("up_to_txid", type_=TransactionId()),
                bindparam("up_to_event_id", type_=BigInteger),
            )
        )
    return statement


async def read_after(
    *,
    session: AsyncSession,
    after: FeedPosition,
    limit: int,
    up_to: FeedPosition | None = None,
) -> list[FeedItem]:
    parameters: dict[str, int] = {
        "after_txid": after.txid,
        "after_event_id": after.event_id,
        "limit": limit,
    }
    if up_to is not None:
        parameters |= {"up_to_txid": up_to.txid, "up_to_event_id": up_to.event_id}
    rows = await session.execute(_read_after_statement(bounded=up_to is not None), parameters)
    items = []
    for event, case, category_code, group_code, dinas_code in rows:
        point = point_lat_lon(case.location) if case.location is not None else None
        items.append(
            FeedItem(
                position=FeedPosition(int(event.txid), event.id),
                event=event,
                case=case,
                category_code=category_code,
                category_group_code=group_code,
                dinas_code=dinas_code,
                lat=point.lat if point else None,
                lon=point.lon if point else None,
            )
        )
    return items


async def committed_after(*, session: AsyncSession, after: FeedPosition) -> bool:
    """Whether any event after `after` has committed, settled or not.

    Right after reading every settled event, yes means events are held back by
    an older transaction still running (or settled a moment ago).
    """
    newer = (
        select(CaseEvent.id)
        .where(
            tuple_(CaseEvent.txid, CaseEvent.id)
            > tuple_(
                bindparam("after_txid", after.txid, type_=TransactionId()),
                bindparam("after_event_id", after.event_id, type_=BigInteger),
            )
        )
        # In index order: without it PostgreSQL expects a third of the table to
        # qualify and scans it sequentially, the whole of it when none does.
        .order_by(CaseEvent.txid, CaseEvent.id)
        .limit(1)
    )
    return (await session.execute(newer)).first() is not None


async def head(*, session: AsyncSession) -> FeedPosition:
    """The position of the newest settled event (START when there is none)."""
    row = (
        await session.execute(
            select(CaseEvent.txid, CaseEvent.id)
            .where(_settled())
            .order_by(CaseEvent.txid.desc(), CaseEvent.id.desc())
            .limit(1)
        )
    ).first()
    return FeedPosition(int(row[0]), row[1]) if row else START


@dataclass(frozen=True)
class FeedFilter:
    kelurahan_codes: frozenset[str] = frozenset()
    kecamatan_codes: frozenset[str] = frozenset()
    dinas_codes: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    category_codes: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north
    # The subscriber's access scope (see domain.access.sees_case).
    visible: Callable[[FeedItem], bool] | None = None

    def matches(self, item: FeedItem) -> bool:
        case = item.case
        if self.visible is not None and not self.visible(item):
            return False
        if self.kelurahan_codes and case.kelurahan_code not in self.kelurahan_codes:
            return False
        if self.kecamatan_codes and case.kecamatan_code not in self.kecamatan_codes:
            return False
        if self.dinas_codes and item.dinas_code not in self.dinas_codes:
            return False
        if self.statuses and case.status not in self.statuses:
            return False
        if self.kinds and case.kind not in self.kinds:
            return False
        if self.category_codes and not (
            item.category_code in self.category_codes
            or item.category_group_code in self.category_codes
        ):
            return False
        if self.bbox is not None:
            if item.lat is None or item.lon is None:
                return False
            west, south, east, north = self.bbox
            if not (west <= item.lon <= east and south <= item.lat <= north):
                return False
        return True
