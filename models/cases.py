"""Cases (reports from POT, SOROT and other partners) and their append-only event log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class CaseStatus(StrEnum):
    RECEIVED = "RECEIVED"
    VERIFIED = "VERIFIED"
    IN_PROGRESS = "IN_PROGRESS"
    ON_HOLD = "ON_HOLD"
    RESOLVED = "RESOLVED"
    REOPENED = "REOPENED"
    CLOSED = "CLOSED"
    REJECTED = "REJECTED"
    DUPLICATE = "DUPLICATE"


OPEN_STATUSES = frozenset(
    {
        CaseStatus.RECEIVED,
        CaseStatus.VERIFIED,
        CaseStatus.IN_PROGRESS,
        CaseStatus.ON_HOLD,
        CaseStatus.REOPENED,
    }
)


class EventType(StrEnum):
    CREATED = "CREATED"
    ROUTED = "ROUTED"


def _sql_list(values: object) -> str:
    return ", ".join(f"'{v}'" for v in values)  # type: ignore[attr-defined]


class Case(Base):
    __tablename__ = "case"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    # Fingerprint of the submitted payload: a retry must match it exactly.
    request_hash: Mapped[str] = mapped_column(String(64))
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    location: Mapped[WKBElement | None] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=True)
    )
    address: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    media_urls: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    # Personal data: stored for follow-up, returned only to those allowed to see it.
    reporter_name: Mapped[str | None] = mapped_column(Text)
    reporter_phone: Mapped[str | None] = mapped_column(String(20))
    reporter_email: Mapped[str | None] = mapped_column(Text)
    anonymous: Mapped[bool] = mapped_column(Boolean)
    confidential: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), index=True)
    kelurahan_id: Mapped[int | None] = mapped_column(ForeignKey("kelurahan.id"))
    kecamatan_id: Mapped[int | None] = mapped_column(ForeignKey("kecamatan.id"))
    # Codes are kept besides the ids so that filters keep working across boundary sets.
    kelurahan_code: Mapped[str | None] = mapped_column(String(32), index=True)
    kecamatan_code: Mapped[str | None] = mapped_column(String(32), index=True)
    dinas_id: Mapped[int] = mapped_column(ForeignKey("dinas.id"), index=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Why the case went where it went.
    routing_boundary_set_id: Mapped[int | None] = mapped_column(ForeignKey("boundary_set.id"))
    routing_snapped: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    routing_distance_m: Mapped[float] = mapped_column(Float, server_default=text("0"))
    routing_rule_id: Mapped[int | None] = mapped_column(ForeignKey("routing_rule.id"))
    routing_reason: Mapped[str] = mapped_column(Text)
    search: Mapped[str] = mapped_column(
        TSVECTOR,
        Computed("to_tsvector('simple', title || ' ' || description)", persisted=True),
    )

    __table_args__ = (
        UniqueConstraint("source", "idempotency_key"),
        CheckConstraint(
            f"kind IN ({_sql_list(['LAPORAN', 'ASPIRASI', 'INFORMASI'])})", name="kind"
        ),
        CheckConstraint(f"status IN ({_sql_list(CaseStatus)})", name="status"),
        CheckConstraint("kind <> 'LAPORAN' OR location IS NOT NULL", name="laporan_has_location"),
        Index("ix_case_category_id", "category_id"),
        Index("ix_case_created_at", "created_at"),
        Index("ix_case_search", "search", postgresql_using="gin"),
    )


class CaseEvent(Base):
    """Append-only: a database trigger refuses updates and deletes."""

    __tablename__ = "case_event"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class TicketCounter(Base):
    """Last ticket number handed out per month; numbers are never reused."""

    __tablename__ = "ticket_counter"

    month: Mapped[str] = mapped_column(String(4), primary_key=True)  # YYMM, Jakarta time
    last_number: Mapped[int] = mapped_column(Integer)
