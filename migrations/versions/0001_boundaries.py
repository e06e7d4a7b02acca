# geoalchemy2.alembic_helpers adds create_geospatial_table and its kin to alembic's
# `op` when imported: they exist at run time only.
# mypy: disable-error-code="attr-defined"
"""boundary sets, kecamatan and kelurahan

Revision ID: 0001
Revises:
Create Date: 2026-11-28 01:23:07.812260
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The extension may already exist (the test set-up or a DBA creates it); it is
    # never dropped on downgrade because other schemas may depend on it.
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "boundary_set",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("accuracy_note", sa.Text(), nullable=False),
        sa.Column("is_approximate", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("kecamatan_count", sa.Integer(), nullable=False),
        sa.Column("kelurahan_count", sa.Integer(), nullable=False),
        sa.Column(
            "quality",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_boundary_set")),
    )
    op.create_index(
        "uq_boundary_set_single_active",
        "boundary_set",
        ["is_active"],
        unique=True,
        postgresql_where=sa.text("is_active"),
    )
    op.create_geospatial_table(
        "kecamatan",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("boundary_set_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("area_km2", sa.Float(), nullable=False),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_kecamatan_valid_geom")),
        sa.ForeignKeyConstraint(
            ["boundary_set_id"],
            ["boundary_set.id"],
            name=op.f("fk_kecamatan_boundary_set_id_boundary_set"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kecamatan")),
        sa.UniqueConstraint(
            "boundary_set_id", "code", name=op.f("uq_kecamatan_boundary_set_id_code")
        ),
    )
    op.create_geospatial_index(
        "idx_kecamatan_geom",
        "kecamatan",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_kecamatan_boundary_set_id"), "kecamatan", ["boundary_set_id"], unique=False
    )
    op.create_geospatial_table(
        "kelurahan",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("boundary_set_id", sa.BigInteger(), nullable=False),
        sa.Column("kecamatan_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("area_km2", sa.Float(), nullable=False),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_kelurahan_valid_geom")),
        sa.ForeignKeyConstraint(
            ["boundary_set_id"],
            ["boundary_set.id"],
            name=op.f("fk_kelurahan_boundary_set_id_boundary_set"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["kecamatan_id"],
            ["kecamatan.id"],
            name=op.f("fk_kelurahan_kecamatan_id_kecamatan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kelurahan")),
        sa.UniqueConstraint(
            "boundary_set_id", "code", name=op.f("uq_kelurahan_boundary_set_id_code")
        ),
    )
    op.create_geospatial_index(
        "idx_kelurahan_geom",
        "kelurahan",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_kelurahan_boundary_set_id"), "kelurahan", ["boundary_set_id"], unique=False
    )
    op.create_index("ix_kelurahan_kecamatan_id", "kelurahan", ["kecamatan_id"], unique=False)
    op.create_geospatial_table(
        "kelurahan_piece",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("boundary_set_id", sa.BigInteger(), nullable=False),
        sa.Column("kelurahan_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["boundary_set_id"],
            ["boundary_set.id"],
            name=op.f("fk_kelurahan_piece_boundary_set_id_boundary_set"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["kelurahan_id"],
            ["kelurahan.id"],
            name=op.f("fk_kelurahan_piece_kelurahan_id_kelurahan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kelurahan_piece")),
    )
    op.create_geospatial_index(
        "idx_kelurahan_piece_geom",
        "kelurahan_piece",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_kelurahan_piece_boundary_set_id"),
        "kelurahan_piece",
        ["boundary_set_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_kelurahan_piece_kelurahan_id"), "kelurahan_piece", ["kelurahan_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_kelurahan_piece_kelurahan_id"), table_name="kelurahan_piece")
    op.drop_index(op.f("ix_kelurahan_piece_boundary_set_id"), table_name="kelurahan_piece")
    op.drop_geospatial_index(
        "idx_kelurahan_piece_geom",
        table_name="kelurahan_piece",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("kelurahan_piece")
    op.drop_index("ix_kelurahan_kecamatan_id", table_name="kelurahan")
    op.drop_index(op.f("ix_kelurahan_boundary_set_id"), table_name="kelurahan")
    op.drop_geospatial_index(
        "idx_kelurahan_geom", table_name="kelurahan", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("kelurahan")
    op.drop_index(op.f("ix_kecamatan_boundary_set_id"), table_name="kecamatan")
    op.drop_geospatial_index(
        "idx_kecamatan_geom", table_name="kecamatan", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("kecamatan")
    op.drop_index(
        "uq_boundary_set_single_active",
        table_name="boundary_set",
        postgresql_where=sa.text("is_active"),
    )
    op.drop_table("boundary_set")
