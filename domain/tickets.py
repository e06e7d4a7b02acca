"""Human-readable ticket numbers: BKS-YYMM-NNNNNN, sequential per month."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.working_days import JAKARTA
from models import TicketCounter

TICKET_PREFIX = "BKS"


async def next_ticket(*, session: AsyncSession, created_at: datetime) -> str:
    """Take the next number of the month (Jakarta time) of `created_at`.

    The counter row is locked until the transaction ends, so numbers come out in
    commit order without gaps; a rolled-back submission gives its number back
    before anyone could have seen it, so no number is ever shown twice.
    """
    month = created_at.astimezone(JAKARTA).strftime("%y%m")
    statement = (
        insert(TicketCounter)
        .values(month=month, last_number=1)
        .on_conflict_do_update(
            index_elements=[TicketCounter.month],
            set_={"last_number": TicketCounter.last_number + 1},
        )
        .returning(TicketCounter.last_number)
    )
    number = (await session.execute(statement)).scalar_one()
    return f"{TICKET_PREFIX}-{month}-{number:06d}"
