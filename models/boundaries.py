"""Administrative boundaries, versioned as boundary sets (mapit's "generations").

Each import writes a whole new set of kecamatan and kelurahan rows; exactly one
set is active at a time. Cases keep pointing at the rows they were routed to,
so activating a new set never rewrites history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
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
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base


class BoundarySet(Base):
    __tablename__ = "boundary_set"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    accuracy_note: Mapped[str] = mapped_column(Text)
    is_approximate: Mapped[bool] = mapped_column(Boolean)
    # Fingerprint of the imported content, so loading the same seed twice is a no-op.
    content_hash: Mapped[str] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kecamatan_count: Mapped[int] = mapped_column(Integer)
    kelurahan_count: Mapped[int] = mapped_column(Integer)
    quality: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (
        # At most one active set: activation flips two rows in one transaction.
        Index(
            "uq_boundary_set_single_active",
            "is_active",
            unique=True,
            postgresql_where=text("is_active"),
        ),
    )


class Kecamatan(Base):
    __tablename__ = "kecamatan"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    boundary_set_id: Mapped[int] = mapped_column(
        ForeignKey("boundary_set.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    geom: Mapped[WKBElement] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True)
    )
    area_km2: Mapped[float] = mapped_column(Float)

    kelurahan: Mapped[list[Kelurahan]] = relationship(back_populates="kecamatan")

    __table_args__ = (
        UniqueConstraint("boundary_set_id", "code"),
        CheckConstraint("ST_IsValid(geom)", name="valid_geom"),
    )


class Kelurahan(Base):
    __tablename__ = "kelurahan"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    boundary_set_id: Mapped[int] = mapped_column(
        ForeignKey("boundary_set.id", ondelete="CASCADE"), index=True
    )
    kecamatan_id: Mapped[int] = mapped_column(ForeignKey("kecamatan.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    geom: Mapped[WKBElement] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True)
    )
    area_km2: Mapped[float] = mapped_column(Float)

    kecamatan: Mapped[Kecamatan] = relationship(back_populates="kelurahan")

    __table_args__ = (
        UniqueConstraint("boundary_set_id", "code"),
        Index("ix_kelurahan_kecamatan_id", "kecamatan_id"),
        CheckConstraint("ST_IsValid(geom)", name="valid_geom"),
    )


class KelurahanPiece(Base):
    """Small pieces of each kelurahan (ST_Subdivide) so that a point lookup
    tests a few dozen vertices instead of a whole boundary."""

    __tablename__ = "kelurahan_piece"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    boundary_set_id: Mapped[int] = mapped_column(
        ForeignKey("boundary_set.id", ondelete="CASCADE"), index=True
    )
    kelurahan_id: Mapped[int] = mapped_column(
        ForeignKey("kelurahan.id", ondelete="CASCADE"), index=True
    )
    geom: Mapped[WKBElement] = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=True))
