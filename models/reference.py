"""Reference data the city edits: dinas, categories, routing rules, holidays, partners."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class ReportKind(StrEnum):
    LAPORAN = "LAPORAN"  # complaint about a problem at a place
    ASPIRASI = "ASPIRASI"  # opinion or suggestion
    INFORMASI = "INFORMASI"  # request for information


# The kelurahan office is a handler like a dinas; which office is decided by the
# case's kelurahan.
KELURAHAN_OFFICE_CODE = "KELURAHAN"


class Dinas(Base):
    __tablename__ = "dinas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    short_name: Mapped[str] = mapped_column(String(64))
    is_kelurahan_office: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class Category(Base):
    __tablename__ = "category"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("category.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    accepted_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    default_dinas_id: Mapped[int | None] = mapped_column(ForeignKey("dinas.id"))
    service_level_days: Mapped[int | None] = mapped_column(Integer)
    duplicate_radius_m: Mapped[int] = mapped_column(Integer, server_default=text("100"))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))

    __table_args__ = (
        # A leaf category routes reports; a group (parent_id null) only groups.
        CheckConstraint(
            "parent_id IS NULL OR (default_dinas_id IS NOT NULL AND service_level_days > 0)",
            name="leaf_routes",
        ),
        CheckConstraint("duplicate_radius_m BETWEEN 1 AND 5000", name="radius_range"),
    )


class RoutingRule(Base):
    """Overrides a category's default dinas inside an area."""

    __tablename__ = "routing_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"), index=True)
    dinas_id: Mapped[int] = mapped_column(ForeignKey("dinas.id"))
    priority: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    kecamatan_codes: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), server_default=text("'{}'")
    )
    kelurahan_codes: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), server_default=text("'{}'")
    )
    area: Mapped[WKBElement | None] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True)
    )
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(
            "area IS NOT NULL OR cardinality(kecamatan_codes) > 0 "
            "OR cardinality(kelurahan_codes) > 0",
            name="has_area",
        ),
    )


class Holiday(Base):
    """A day off the service levels skip: a national holiday from the calendar
    (`source` "national") or one the city's administrators added ("city")."""

    __tablename__ = "holiday"
    __table_args__ = (
        CheckConstraint("source IN ('national', 'city')", name="holiday_source_known"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, server_default=text("'city'"))


class Partner(Base):
    """A registered reporting app (POT, SOROT, ...): the `source` of a report."""

    __tablename__ = "partner"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class PartnerKey(Base):
    """An API key of a partner app. Only its SHA-256 is stored: the key itself is
    shown once, when it is created."""

    __tablename__ = "partner_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell keys apart
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
