"""statistics rollup: stored working hours to resolve, settled cases rolled up per day

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 05:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GROUP_COLUMNS = [
    "status",
    "due_at",
    "kelurahan_code",
    "kecamatan_code",
    "dinas_id",
    "category_id",
    "source",
]
_FILTER_COLUMNS = [*_GROUP_COLUMNS, "kind"]

# Working hours as `domain.working_days.working_hours_between` counts them: for a
# moment t on local day d (WIB, days numbered from 1970-01-01), the working seconds
# since Monday 1969-12-29 are 86400 * (weekdays before d - weekday holidays before d)
# plus the seconds since local midnight when d is a working day. `width_bucket` over
# the sorted day numbers of the weekday holidays counts those before d (a binary
# search). Jakarta has kept UTC+7 without daylight saving since 1964.
_FUNCTIONS = [
    """
CREATE FUNCTION working_seconds_since_epoch(moment timestamptz, weekday_holidays float8[])
RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (floor((d + 3) / 7) * 5 + least(d + 3 - floor((d + 3) / 7) * 7, 5)
            - width_bucket(d - 0.5, weekday_holidays)) * 86400.0
         + CASE WHEN d + 3 - floor((d + 3) / 7) * 7 < 5
                 AND width_bucket(d + 0.5, weekday_holidays)
                     = width_bucket(d - 0.5, weekday_holidays)
                THEN s - d * 86400.0 ELSE 0.0 END
    FROM (SELECT s, floor(s / 86400.0) AS d
          FROM (SELECT date_part('epoch', moment) + 25200.0 AS s) AS local_seconds) AS local_day
$$
""",
    """
CREATE FUNCTION working_hours_between(start timestamptz, finish timestamptz,
                                      weekday_holidays float8[])
RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT greatest(working_seconds_since_epoch(finish, weekday_holidays)
                    - working_seconds_since_epoch(start, weekday_holidays), 0.0) / 3600.0
$$
""",
    """
CREATE FUNCTION weekday_holiday_numbers() RETURNS float8[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg((day - date '1970-01-01')::float8 ORDER BY day), '{}')
    FROM holiday WHERE extract(isodow FROM day) < 6
$$
""",
    # Kept on the row when it becomes known, so that statistics read it instead of
    # computing it for every case of a range; and the transaction that gave the case a
    # final status (CLOSED, REJECTED, DUPLICATE: no action leads out of them), which
    # tells the statistics rollup which cases it already holds.
    """
CREATE FUNCTION case_statistics_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.created_at IS DISTINCT FROM OLD.created_at
       OR NEW.resolved_at IS DISTINCT FROM OLD.resolved_at THEN
        NEW.working_hours_to_resolve := CASE WHEN NEW.resolved_at IS NOT NULL THEN
            working_hours_between(NEW.created_at, NEW.resolved_at, weekday_holiday_numbers())
        END;
    END IF;
    IF NEW.status NOT IN ('CLOSED', 'REJECTED', 'DUPLICATE') THEN
        NEW.settled_txid := NULL;
    ELSIF TG_OP = 'INSERT' OR OLD.status NOT IN ('CLOSED', 'REJECTED', 'DUPLICATE') THEN
        NEW.settled_txid := pg_current_xact_id();
    END IF;
    RETURN NEW;
END
$$
""",
    # A holiday added, moved or removed changes the working hours of every case
    # resolved across that day.
    """
CREATE FUNCTION holiday_rewrites_working_hours() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed date;
    holidays float8[] := weekday_holiday_numbers();
BEGIN
    FOREACH changed IN ARRAY ARRAY[
        CASE WHEN TG_OP <> 'DELETE' THEN NEW.day END,
        CASE WHEN TG_OP <> 'INSERT' THEN OLD.day END
    ] LOOP
        CONTINUE WHEN changed IS NULL OR extract(isodow FROM changed) >= 6;
        UPDATE "case"
        SET working_hours_to_resolve = working_hours_between(created_at, resolved_at, holidays)
        WHERE resolved_at >= (changed::timestamp AT TIME ZONE 'Asia/Jakarta')
          AND created_at < ((changed + 1)::timestamp AT TIME ZONE 'Asia/Jakarta');
    END LOOP;
    RETURN NULL;
END
$$
""",
]

_TRIGGERS = [
    """
CREATE TRIGGER case_statistics_columns
BEFORE INSERT OR UPDATE OF created_at, resolved_at, status ON "case"
FOR EACH ROW EXECUTE FUNCTION case_statistics_columns()
""",
    """
CREATE TRIGGER holiday_rewrites_working_hours
AFTER INSERT OR DELETE OR UPDATE OF day ON holiday
FOR EACH ROW EXECUTE FUNCTION holiday_rewrites_working_hours()
""",
]

_BACKFILL = """
UPDATE "case" SET
    working_hours_to_resolve = CASE WHEN resolved_at IS NOT NULL THEN
        working_hours_between(created_at, resolved_at, holidays.days) END,
    settled_txid = CASE WHEN status IN ('CLOSED', 'REJECTED', 'DUPLICATE')
        THEN pg_current_xact_id() END
FROM (SELECT weekday_holiday_numbers() AS days) AS holidays
WHERE resolved_at IS NOT NULL OR status IN ('CLOSED', 'REJECTED', 'DUPLICATE')
"""


def upgrade() -> None:
    op.add_column("case", sa.Column("working_hours_to_resolve", sa.Float(), nullable=True))
    op.execute('ALTER TABLE "case" ADD COLUMN settled_txid xid8')
    for function in _FUNCTIONS:
        op.execute(function)
    op.execute(_BACKFILL)
    for trigger in _TRIGGERS:
        op.execute(trigger)

    op.drop_index(
        "ix_case_stats_resolved",
        table_name="case",
        postgresql_where=sa.text("resolved_at IS NOT NULL"),
    )
    # Standing resolutions only, with their working hours: the resolved side of the
    # statistics never visits the wide rows.
    op.create_index(
        "ix_case_stats_resolved",
        "case",
        ["resolved_at"],
        unique=False,
        postgresql_include=[*_FILTER_COLUMNS, "created_at", "working_hours_to_resolve"],
        postgresql_where=sa.text("status IN ('RESOLVED', 'CLOSED')"),
    )
    # What the rollup does not hold: cases not yet settled (small: open ones and those
    # resolved within the auto-close window), and those settled since its last refresh.
    op.create_index(
        "ix_case_unsettled_created",
        "case",
        ["created_at"],
        unique=False,
        postgresql_include=_GROUP_COLUMNS,
        postgresql_where=sa.text("settled_txid IS NULL"),
    )
    op.create_index(
        "ix_case_unsettled_resolved",
        "case",
        ["resolved_at"],
        unique=False,
        postgresql_include=[*_GROUP_COLUMNS, "working_hours_to_resolve"],
        postgresql_where=sa.text("status = 'RESOLVED'"),
    )
    op.create_index(
        "ix_case_settled_txid",
        "case",
        ["settled_txid"],
        unique=False,
        postgresql_where=sa.text("settled_txid IS NOT NULL"),
    )

    op.create_table(
        "case_stats_day",
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.Column("resolved_on_time", sa.Integer(), nullable=False),
        sa.Column("hours", postgresql.BYTEA(), nullable=False),
        sa.PrimaryKeyConstraint("dimension", "day", "key", name=op.f("pk_case_stats_day")),
    )
    op.execute(
        """
        CREATE TABLE case_stats_rollup (
            id integer NOT NULL,
            snapshot pg_snapshot NOT NULL,
            weekday_holidays float8[] NOT NULL,
            refreshed_at timestamptz NOT NULL,
            CONSTRAINT pk_case_stats_rollup PRIMARY KEY (id),
            CONSTRAINT ck_case_stats_rollup_single_row CHECK (id = 1)
        )
        """
    )


def downgrade() -> None:
    op.drop_table("case_stats_rollup")
    op.drop_table("case_stats_day")
    op.drop_index(
        "ix_case_settled_txid",
        table_name="case",
        postgresql_where=sa.text("settled_txid IS NOT NULL"),
    )
    op.drop_index(
        "ix_case_unsettled_resolved",
        table_name="case",
        postgresql_where=sa.text("status = 'RESOLVED'"),
    )
    op.drop_index(
        "ix_case_unsettled_created",
        table_name="case",
        postgresql_where=sa.text("settled_txid IS NULL"),
    )
    op.drop_index(
        "ix_case_stats_resolved",
        table_name="case",
        postgresql_where=sa.text("status IN ('RESOLVED', 'CLOSED')"),
    )
    op.create_index(
        "ix_case_stats_resolved",
        "case",
        ["resolved_at"],
        unique=False,
        postgresql_include=[*_FILTER_COLUMNS, "created_at"],
        postgresql_where=sa.text("resolved_at IS NOT NULL"),
    )
    op.execute("DROP TRIGGER holiday_rewrites_working_hours ON holiday")
    op.execute('DROP TRIGGER case_statistics_columns ON "case"')
    op.execute("DROP FUNCTION holiday_rewrites_working_hours()")
    op.execute("DROP FUNCTION case_statistics_columns()")
    op.execute("DROP FUNCTION weekday_holiday_numbers()")
    op.execute("DROP FUNCTION working_hours_between(timestamptz, timestamptz, float8[])")
    op.execute("DROP FUNCTION working_seconds_since_epoch(timestamptz, float8[])")
    op.drop_column("case", "settled_txid")
    op.drop_column("case", "working_hours_to_resolve")
