"""What Patriot keeps about the reporter's rights (UU No. 27/2022): each erasure of
a reporter's details, and who was shown those details. Neither ever holds them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.cases import TransactionId


class ReporterErasure(Base):
    """One erasure of a case's reporter details: who, when, why. Never what."""

    __tablename__ = "reporter_erasure"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), unique=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    # True: the retention sweep erased them, not a request.
    automatic: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The erasing transaction: the event log's trigger lets that transaction, and
    # only it, rewrite the details of that case's events (migration 0009).
    txid: Mapped[int] = mapped_column(TransactionId(), server_default=text("pg_current_xact_id()"))


class PersonalDataAccess(Base):
    """A response that showed a reporter's name, phone or e-mail to a partner or a
    staff member; or, without a case, a live feed that may show them from then on."""

    __tablename__ = "personal_data_access"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    subject: Mapped[str] = mapped_column(Text)  # as in the event log: partner:POT, staff:<sub>
    # What the caller was allowed to see as: its role and area, or its partner.
    scope: Mapped[str] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"))
    operation: Mapped[str] = mapped_column(String(100))  # the root field that showed them

    __table_args__ = (
        Index("ix_personal_data_access_at", "at"),
        Index("ix_personal_data_access_case_id", "case_id"),
    )
