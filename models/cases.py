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
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

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


# No action leads out of these.
FINAL_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.REJECTED, CaseStatus.DUPLICATE})

OPEN_STATUSES = frozenset(
    {
        CaseStatus.RECEIVED,
        CaseStatus.VERIFIED,
        CaseStatus.IN_PROGRESS,
        CaseStatus.ON_HOLD,
        CaseStatus.REOPENED,
    }
)
# The open cases whose service clock runs: a held case's clock stops (resuming
# moves its due time on by the time it was held), so it is never overdue.
RUNNING_STATUSES = OPEN_STATUSES - {CaseStatus.ON_HOLD}


class EventType(StrEnum):
    CREATED = "CREATED"
    ROUTED = "ROUTED"
    VERIFIED = "VERIFIED"
    HELD = "HELD"
    RESUMED = "RESUMED"
    REJECTED = "REJECTED"
    ASSIGNED = "ASSIGNED"
    REROUTED = "REROUTED"
    STARTED = "STARTED"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"
    REOPENED = "REOPENED"
    COMMENTED = "COMMENTED"
    MARKED_DUPLICATE = "MARKED_DUPLICATE"
    DUPLICATE_MERGED = "DUPLICATE_MERGED"
    SUPPORTED = "SUPPORTED"
    RATED = "RATED"
    ESCALATED = "ESCALATED"
    # The reporter's rights (UU No. 27/2022): the details never enter the log.
    REPORTER_HIDDEN = "REPORTER_HIDDEN"
    REPORTER_ERASED = "REPORTER_ERASED"


class RejectionReason(StrEnum):
    NOT_OUR_AUTHORITY = "NOT_OUR_AUTHORITY"  # bukan wewenang
    INVALID = "INVALID"
    SPAM = "SPAM"


class TransactionId(UserDefinedType[int]):
    """PostgreSQL's xid8: the id of the transaction that wrote a row."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "xid8"


# So that reflection (alembic's model/migration comparison) knows the type.
postgresql_base.ischema_names["xid8"] = TransactionId


def _sql_list(values: object) -> str:
    return ", ".join(f"'{v}'" for v in values)  # type: ignore[attr-defined]


# What statistics group or filter by: the covering indexes below hold them all.
STATS_GROUP_COLUMNS = (
    "status",
    "due_at",
    "kelurahan_code",
    "kecamatan_code",
    "dinas_id",
    "category_id",
    "source",
)


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
    # Set once, when the reporter's details were erased (on request or by retention).
    reporter_erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
    # Lifecycle.
    assigned_to: Mapped[str | None] = mapped_column(Text)
    held_from_status: Mapped[str | None] = mapped_column(String(16))
    rejection_reason: Mapped[str | None] = mapped_column(String(32))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    evidence_urls: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"))
    support_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    # 0: on time; 1: escalated to the handling dinas or kelurahan; 2: to the POC.
    escalation_level: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Written by a database trigger (migration 0006) whenever resolved_at changes, and
    # again for the cases concerned when a holiday changes: statistics read them.
    working_hours_to_resolve: Mapped[float | None] = mapped_column(Float)
    # The transaction that gave the case a final status (CLOSED, REJECTED, DUPLICATE),
    # set by the same trigger: the statistics rollup holds the cases it has seen settle.
    settled_txid: Mapped[int | None] = mapped_column(TransactionId())
    # The location in UTM zone 48 south (EPSG:32748, Bekasi's): heatmaps bin these
    # instead of projecting every case when asked.
    location_utm_x: Mapped[float | None] = mapped_column(
        Float, Computed("ST_X(ST_Transform(location, 32748))", persisted=True)
    )
    location_utm_y: Mapped[float | None] = mapped_column(
        Float, Computed("ST_Y(ST_Transform(location, 32748))", persisted=True)
    )
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
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
        # The escalation sweep looks only at open cases past their due time.
        Index(
            "ix_case_open_due",
            "due_at",
            postgresql_where=text(
                "status IN ('RECEIVED', 'VERIFIED', 'IN_PROGRESS', 'ON_HOLD', 'REOPENED')"
            ),
        ),
        # Statistics read cases by creation or resolution time; covering indexes hold
        # every column they group or filter by, so they never visit the wide rows.
        Index(
            "ix_case_stats_created",
            "created_at",
            postgresql_include=[
                *STATS_GROUP_COLUMNS,
                "kind",
                "resolved_at",
                "location",
            ],
        ),
        Index(
            "ix_case_stats_resolved",
            "resolved_at",
            postgresql_include=[
                *STATS_GROUP_COLUMNS,
                "kind",
                "created_at",
                "working_hours_to_resolve",
            ],
            postgresql_where=text("status IN ('RESOLVED', 'CLOSED')"),
        ),
        # What the statistics rollup does not hold yet: unsettled cases, and those
        # settled since its last refresh.
        Index(
            "ix_case_unsettled_created",
            "created_at",
            postgresql_include=list(STATS_GROUP_COLUMNS),
            postgresql_where=text("settled_txid IS NULL"),
        ),
        Index(
            "ix_case_unsettled_resolved",
            "resolved_at",
            postgresql_include=[*STATS_GROUP_COLUMNS, "working_hours_to_resolve"],
            postgresql_where=text("status = 'RESOLVED'"),
        ),
        Index(
            "ix_case_settled_txid",
            "settled_txid",
            postgresql_where=text("settled_txid IS NOT NULL"),
        ),
        # Settled cases whose reporter details the retention sweep has yet to erase.
        Index(
            "ix_case_reporter_retention",
            "updated_at",
            postgresql_where=text(
                "status IN ('CLOSED', 'REJECTED', 'DUPLICATE') AND (reporter_name IS NOT NULL "
                "OR reporter_phone IS NOT NULL OR reporter_email IS NOT NULL)"
            ),
        ),
        # A city heatmap over a time range reads only this.
        Index(
            "ix_case_heatmap",
            "created_at",
            postgresql_include=["location", "location_utm_x", "location_utm_y"],
            postgresql_where=text("location IS NOT NULL"),
        ),
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
    # Readers of the live feed order events by (txid, id) and only read those of
    # transactions older than every running one, so no late commit is ever skipped.
    txid: Mapped[int] = mapped_column(TransactionId(), server_default=text("pg_current_xact_id()"))

    __table_args__ = (Index("ix_case_event_txid_id", "txid", "id"),)


class CaseSupport(Base):
    """A citizen saying "I have this problem too", counted once per citizen."""

    __tablename__ = "case_support"

    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), primary_key=True)
    supporter: Mapped[str] = mapped_column(String(200), primary_key=True)  # partner:citizen id
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TicketCounter(Base):
    """Last ticket number handed out per month; numbers are never reused."""

    __tablename__ = "ticket_counter"

    month: Mapped[str] = mapped_column(String(4), primary_key=True)  # YYMM, Jakarta time
    last_number: Mapped[int] = mapped_column(Integer)


class ReferenceVersion(Base):
    """One row: a new number (from a sequence) whenever a statement changes the
    partners, categories, dinas, routing rules or holidays (a trigger on each, in
    the changing transaction). Intake keeps those in memory and writes a case only
    while the number it decided with is still current."""

    __tablename__ = "reference_version"

    one: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    version: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (CheckConstraint("one", name="single_row"),)
