"""statistics indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GROUP_AND_FILTER_COLUMNS = [
    "status",
    "due_at",
    "kelurahan_code",
    "kecamatan_code",
    "dinas_id",
    "category_id",
    "source",
    "kind",
]


def upgrade() -> None:
    # Covering indexes: statistics over a time range read only these, never the
    # wide rows (title, description, search vector).
    op.create_index(
        "ix_case_stats_created",
        "case",
        ["created_at"],
        unique=False,
        postgresql_include=[*_GROUP_AND_FILTER_COLUMNS, "resolved_at", "location"],
    )
    op.create_index(
        "ix_case_stats_resolved",
        "case",
        ["resolved_at"],
        unique=False,
        postgresql_include=[*_GROUP_AND_FILTER_COLUMNS, "created_at"],
        postgresql_where=sa.text("resolved_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_case_stats_resolved",
        table_name="case",
        postgresql_where=sa.text("resolved_at IS NOT NULL"),
    )
    op.drop_index("ix_case_stats_created", table_name="case")
