"""reference version: a new number whenever the reference data intake routes with changes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 05:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What `domain.reference_cache` keeps in memory.
_WATCHED_TABLES = ("partner", "category", "dinas", "routing_rule", "holiday")


def upgrade() -> None:
    # Numbers come from a sequence, never from version + 1: a rolled-back change
    # must not leave a number that a later, different change could take again.
    op.execute("CREATE SEQUENCE reference_version_seq")
    op.create_table(
        "reference_version",
        sa.Column("one", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("one", name=op.f("ck_reference_version_single_row")),
        sa.PrimaryKeyConstraint("one", name=op.f("pk_reference_version")),
    )
    op.execute("INSERT INTO reference_version (version) VALUES (nextval('reference_version_seq'))")
    op.execute(
        """
        CREATE FUNCTION bump_reference_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE reference_version SET version = nextval('reference_version_seq');
            RETURN NULL;
        END $$
        """
    )
    for table in _WATCHED_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_bumps_reference_version "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_reference_version()"
        )


def downgrade() -> None:
    for table in _WATCHED_TABLES:
        op.execute(f"DROP TRIGGER {table}_bumps_reference_version ON {table}")
    op.execute("DROP FUNCTION bump_reference_version()")
    op.drop_table("reference_version")
    op.execute("DROP SEQUENCE reference_version_seq")
