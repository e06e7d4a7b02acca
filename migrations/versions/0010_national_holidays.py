"""where a holiday came from: the national calendar, or the city's administrators

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows seeded before are the city's: administrators own them.
    op.add_column(
        "holiday",
        sa.Column("source", sa.Text(), server_default=sa.text("'city'"), nullable=False),
    )
    op.create_check_constraint("holiday_source_known", "holiday", "source IN ('national', 'city')")


def downgrade() -> None:
    op.drop_constraint("holiday_source_known", "holiday", type_="check")
    op.drop_column("holiday", "source")
