"""Human-readable ticket numbers: BKS-YYMM-NNNNNN, sequential per month."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CTE, ColumnElement, Text, cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.working_days import JAKARTA
from models import TicketCounter

TICKET_PREFIX = "BKS"
TICKET_DIGITS = 6


def ticket_month(created_at: datetime) -> str:
    """YYMM of `created_at` in Jakarta time: numbering starts again every month."""
    return created_at.astimezone(JAKARTA).strftime("%y%m")


def take_number(*, month: ColumnElement[str], when: ColumnElement[bool]) -> CTE:
    """A CTE that takes the next number of `month` (column `last_number`), only
    if `when` holds.

    The counter row stays locked until the transaction ends, so numbers come out
    in commit order without gaps; a rolled-back submission gives its number back
    before anyone could have seen it. Taking it inside the statement that writes
    the case, the last one before the commit, keeps that lock as short as it can be.
    """
    return (
        insert(TicketCounter)
        .from_select(["month", "last_number"], select(month, literal(1)).where(when))
        .on_conflict_do_update(
            index_elements=[TicketCounter.month],
            set_={"last_number": TicketCounter.last_number + 1},
        )
        .returning(TicketCounter.last_number)
        .cte("ticket_number")
    )


def ticket_text(*, month: ColumnElement[str], number: ColumnElement[int]) -> ColumnElement[str]:
    """BKS-YYMM-NNNNNN, in SQL."""
    digits = cast(number, Text)
    # Zero-padded to six digits; a seventh digit is kept, never cut off.
    padded = func.lpad(digits, func.greatest(TICKET_DIGITS, func.length(digits)), "0")
    return func.concat(f"{TICKET_PREFIX}-", month, "-", padded)


async def give_back_number(*, session: AsyncSession, month: str) -> None:
    """Undo a `take_number` of this transaction whose case was not written.

    The transaction still holds the counter row's lock, so nobody took a number
    after ours: stepping back leaves no gap.
    """
    await session.execute(
        update(TicketCounter)
        .where(TicketCounter.month == month)
        .values(last_number=TicketCounter.last_number - 1)
    )
