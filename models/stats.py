"""The statistics rollup: settled cases counted per local day, kept by a background refresh."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ARRAY, CheckConstraint, Date, DateTime, Float, Integer, LargeBinary, String
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from models.base import Base


class Snapshot(UserDefinedType[str]):
    """PostgreSQL's pg_snapshot: which transactions a snapshot sees (text form xmin:xmax:xip)."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "pg_snapshot"


# So that reflection (alembic's model/migration comparison) knows the type.
postgresql_base.ischema_names["pg_snapshot"] = Snapshot


class CaseStatsDay(Base):
    """One local day (WIB) of one group of one dimension, over the settled cases the
    rollup has seen: received that day, and standing resolutions made that day."""

    __tablename__ = "case_stats_day"

    # KELURAHAN, KECAMATAN, DINAS, CATEGORY, STATUS, SOURCE, or DAY (every case: key "").
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # The group's code or id as text; "" for cases without the attribute.
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    received: Mapped[int] = mapped_column(Integer)
    resolved: Mapped[int] = mapped_column(Integer)
    resolved_on_time: Mapped[int] = mapped_column(Integer)
    # The working hours to resolve of each resolution, as big-endian float8 values one
    # after the other: exact percentiles need every value, not a histogram.
    hours: Mapped[bytes] = mapped_column(LargeBinary)


class CaseStatsRollup(Base):
    """The single row saying what the rollup holds: the settled cases visible in
    `snapshot`, with working hours counted over `weekday_holidays`."""

    __tablename__ = "case_stats_rollup"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    snapshot: Mapped[str] = mapped_column(Snapshot())
    weekday_holidays: Mapped[list[float]] = mapped_column(ARRAY(Float))
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
