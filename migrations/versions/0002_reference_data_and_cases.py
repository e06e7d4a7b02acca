# geoalchemy2.alembic_helpers adds create_geospatial_table and its kin to alembic's
# `op` when imported: they exist at run time only.
# mypy: disable-error-code="attr-defined"
"""reference data and cases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 01:29:14.802317
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dinas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("short_name", sa.String(length=64), nullable=False),
        sa.Column(
            "is_kelurahan_office", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dinas")),
        sa.UniqueConstraint("code", name=op.f("uq_dinas_code")),
    )
    op.create_table(
        "holiday",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_holiday")),
    )
    op.create_table(
        "partner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner")),
        sa.UniqueConstraint("code", name=op.f("uq_partner_code")),
    )
    op.create_table(
        "ticket_counter",
        sa.Column("month", sa.String(length=4), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_ticket_counter")),
    )
    op.create_table(
        "category",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("accepted_kinds", sa.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("default_dinas_id", sa.Integer(), nullable=True),
        sa.Column("service_level_days", sa.Integer(), nullable=True),
        sa.Column(
            "duplicate_radius_m", sa.Integer(), server_default=sa.text("100"), nullable=False
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint(
            "duplicate_radius_m BETWEEN 1 AND 5000", name=op.f("ck_category_radius_range")
        ),
        sa.CheckConstraint(
            "parent_id IS NULL OR (default_dinas_id IS NOT NULL AND service_level_days > 0)",
            name=op.f("ck_category_leaf_routes"),
        ),
        sa.ForeignKeyConstraint(
            ["default_dinas_id"], ["dinas.id"], name=op.f("fk_category_default_dinas_id_dinas")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["category.id"], name=op.f("fk_category_parent_id_category")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category")),
        sa.UniqueConstraint("code", name=op.f("uq_category_code")),
    )
    op.create_index(op.f("ix_category_parent_id"), "category", ["parent_id"], unique=False)
    op.create_geospatial_table(
        "routing_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("dinas_id", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "kecamatan_codes",
            sa.ARRAY(sa.String(length=32)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "kelurahan_codes",
            sa.ARRAY(sa.String(length=32)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "area",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "area IS NOT NULL OR cardinality(kecamatan_codes) > 0 OR cardinality(kelurahan_codes) > 0",
            name=op.f("ck_routing_rule_has_area"),
        ),
        sa.ForeignKeyConstraint(
            ["category_id"], ["category.id"], name=op.f("fk_routing_rule_category_id_category")
        ),
        sa.ForeignKeyConstraint(
            ["dinas_id"], ["dinas.id"], name=op.f("fk_routing_rule_dinas_id_dinas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rule")),
    )
    op.create_geospatial_index(
        "idx_routing_rule_area",
        "routing_rule",
        ["area"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_routing_rule_category_id"), "routing_rule", ["category_id"], unique=False
    )
    op.create_geospatial_table(
        "case",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("ticket", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "media_urls", sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("reporter_name", sa.Text(), nullable=True),
        sa.Column("reporter_phone", sa.String(length=20), nullable=True),
        sa.Column("reporter_email", sa.Text(), nullable=True),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kelurahan_id", sa.BigInteger(), nullable=True),
        sa.Column("kecamatan_id", sa.BigInteger(), nullable=True),
        sa.Column("kelurahan_code", sa.String(length=32), nullable=True),
        sa.Column("kecamatan_code", sa.String(length=32), nullable=True),
        sa.Column("dinas_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("routing_boundary_set_id", sa.BigInteger(), nullable=True),
        sa.Column("routing_snapped", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("routing_distance_m", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("routing_rule_id", sa.Integer(), nullable=True),
        sa.Column("routing_reason", sa.Text(), nullable=False),
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('simple', title || ' ' || description)", persisted=True),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind <> 'LAPORAN' OR location IS NOT NULL", name=op.f("ck_case_laporan_has_location")
        ),
        sa.CheckConstraint(
            "kind IN ('LAPORAN', 'ASPIRASI', 'INFORMASI')", name=op.f("ck_case_kind")
        ),
        sa.CheckConstraint(
            "status IN ('RECEIVED', 'VERIFIED', 'IN_PROGRESS', 'ON_HOLD', 'RESOLVED', 'REOPENED', 'CLOSED', 'REJECTED', 'DUPLICATE')",
            name=op.f("ck_case_status"),
        ),
        sa.ForeignKeyConstraint(
            ["category_id"], ["category.id"], name=op.f("fk_case_category_id_category")
        ),
        sa.ForeignKeyConstraint(["dinas_id"], ["dinas.id"], name=op.f("fk_case_dinas_id_dinas")),
        sa.ForeignKeyConstraint(
            ["kecamatan_id"], ["kecamatan.id"], name=op.f("fk_case_kecamatan_id_kecamatan")
        ),
        sa.ForeignKeyConstraint(
            ["kelurahan_id"], ["kelurahan.id"], name=op.f("fk_case_kelurahan_id_kelurahan")
        ),
        sa.ForeignKeyConstraint(
            ["routing_boundary_set_id"],
            ["boundary_set.id"],
            name=op.f("fk_case_routing_boundary_set_id_boundary_set"),
        ),
        sa.ForeignKeyConstraint(
            ["routing_rule_id"],
            ["routing_rule.id"],
            name=op.f("fk_case_routing_rule_id_routing_rule"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case")),
        sa.UniqueConstraint(
            "source", "idempotency_key", name=op.f("uq_case_source_idempotency_key")
        ),
        sa.UniqueConstraint("ticket", name=op.f("uq_case_ticket")),
    )
    op.create_geospatial_index(
        "idx_case_location",
        "case",
        ["location"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_case_category_id", "case", ["category_id"], unique=False)
    op.create_index("ix_case_created_at", "case", ["created_at"], unique=False)
    op.create_index(op.f("ix_case_dinas_id"), "case", ["dinas_id"], unique=False)
    op.create_index(op.f("ix_case_kecamatan_code"), "case", ["kecamatan_code"], unique=False)
    op.create_index(op.f("ix_case_kelurahan_code"), "case", ["kelurahan_code"], unique=False)
    op.create_index("ix_case_search", "case", ["search"], unique=False, postgresql_using="gin")
    op.create_index(op.f("ix_case_status"), "case", ["status"], unique=False)
    op.create_table(
        "case_event",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_case_event_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_event")),
    )
    op.create_index(op.f("ix_case_event_case_id"), "case_event", ["case_id"], unique=False)

    op.execute(
        """
        CREATE FUNCTION case_event_is_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'case_event is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER case_event_append_only BEFORE UPDATE OR DELETE ON case_event "
        "FOR EACH ROW EXECUTE FUNCTION case_event_is_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER case_event_append_only ON case_event")
    op.execute("DROP FUNCTION case_event_is_append_only()")
    op.drop_index(op.f("ix_case_event_case_id"), table_name="case_event")
    op.drop_table("case_event")
    op.drop_index(op.f("ix_case_status"), table_name="case")
    op.drop_index("ix_case_search", table_name="case", postgresql_using="gin")
    op.drop_index(op.f("ix_case_kelurahan_code"), table_name="case")
    op.drop_index(op.f("ix_case_kecamatan_code"), table_name="case")
    op.drop_index(op.f("ix_case_dinas_id"), table_name="case")
    op.drop_index("ix_case_created_at", table_name="case")
    op.drop_index("ix_case_category_id", table_name="case")
    op.drop_geospatial_index(
        "idx_case_location", table_name="case", postgresql_using="gist", column_name="location"
    )
    op.drop_geospatial_table("case")
    op.drop_index(op.f("ix_routing_rule_category_id"), table_name="routing_rule")
    op.drop_geospatial_index(
        "idx_routing_rule_area",
        table_name="routing_rule",
        postgresql_using="gist",
        column_name="area",
    )
    op.drop_geospatial_table("routing_rule")
    op.drop_index(op.f("ix_category_parent_id"), table_name="category")
    op.drop_table("category")
    op.drop_table("ticket_counter")
    op.drop_table("partner")
    op.drop_table("holiday")
    op.drop_table("dinas")
