"""case location in the city's metric projection, for heatmaps

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 05:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # UTM zone 48 south (EPSG:32748), where Bekasi lies: a city heatmap bins these
    # instead of projecting every case at query time.
    for column, function in (("location_utm_x", "ST_X"), ("location_utm_y", "ST_Y")):
        op.add_column(
            "case",
            sa.Column(
                column,
                sa.Float(),
                sa.Computed(f"{function}(ST_Transform(location, 32748))", persisted=True),
                nullable=True,
            ),
        )
    op.create_index(
        "ix_case_heatmap",
        "case",
        ["created_at"],
        unique=False,
        postgresql_include=["location", "location_utm_x", "location_utm_y"],
        postgresql_where=sa.text("location IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_case_heatmap", table_name="case", postgresql_where=sa.text("location IS NOT NULL")
    )
    op.drop_column("case", "location_utm_y")
    op.drop_column("case", "location_utm_x")
