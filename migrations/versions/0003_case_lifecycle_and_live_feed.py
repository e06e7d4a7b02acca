"""case lifecycle and live feed

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 01:46:17.197686
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_support",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("supporter", sa.String(length=200), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case.id"], name=op.f("fk_case_support_case_id_case")
        ),
        sa.PrimaryKeyConstraint("case_id", "supporter", name=op.f("pk_case_support")),
    )
    op.add_column("case", sa.Column("assigned_to", sa.Text(), nullable=True))
    op.add_column("case", sa.Column("held_from_status", sa.String(length=16), nullable=True))
    op.add_column("case", sa.Column("rejection_reason", sa.String(length=32), nullable=True))
    op.add_column("case", sa.Column("resolution_note", sa.Text(), nullable=True))
    op.add_column(
        "case",
        sa.Column(
            "evidence_urls", sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
    )
    op.add_column("case", sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("case", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("case", sa.Column("duplicate_of_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "case",
        sa.Column("support_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("case", sa.Column("rating", sa.Integer(), nullable=True))
    op.add_column("case", sa.Column("rating_comment", sa.Text(), nullable=True))
    op.add_column(
        "case",
        sa.Column("escalation_level", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("case", sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_case_open_due",
        "case",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text(
            "status IN ('RECEIVED', 'VERIFIED', 'IN_PROGRESS', 'ON_HOLD', 'REOPENED')"
        ),
    )
    op.create_foreign_key(
        op.f("fk_case_duplicate_of_id_case"), "case", "case", ["duplicate_of_id"], ["id"]
    )
    # Existing rows get the id of this migration's transaction: older than any later one.
    op.execute("ALTER TABLE case_event ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id()")
    op.create_index("ix_case_event_txid_id", "case_event", ["txid", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_case_event_txid_id", table_name="case_event")
    op.drop_column("case_event", "txid")
    op.drop_constraint(op.f("fk_case_duplicate_of_id_case"), "case", type_="foreignkey")
    op.drop_index(
        "ix_case_open_due",
        table_name="case",
        postgresql_where=sa.text(
            "status IN ('RECEIVED', 'VERIFIED', 'IN_PROGRESS', 'ON_HOLD', 'REOPENED')"
        ),
    )
    op.drop_column("case", "escalated_at")
    op.drop_column("case", "escalation_level")
    op.drop_column("case", "rating_comment")
    op.drop_column("case", "rating")
    op.drop_column("case", "support_count")
    op.drop_column("case", "duplicate_of_id")
    op.drop_column("case", "closed_at")
    op.drop_column("case", "resolved_at")
    op.drop_column("case", "evidence_urls")
    op.drop_column("case", "resolution_note")
    op.drop_column("case", "rejection_reason")
    op.drop_column("case", "held_from_status")
    op.drop_column("case", "assigned_to")
    op.drop_table("case_support")
