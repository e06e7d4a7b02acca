"""the reporter's rights: erasures, the record of who saw reporters, retention

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION case_event_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""

# The one way to change a logged event: the transaction that records an erasure
# of a case's reporter may rewrite the details of that case's events (to take out
# the reporter's details quoted in them), and nothing else of them. Deletes stay
# refused.
_APPEND_ONLY_BUT_ERASURES = """
CREATE OR REPLACE FUNCTION case_event_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.id = OLD.id AND NEW.case_id = OLD.case_id AND NEW.type = OLD.type
       AND NEW.actor = OLD.actor AND NEW.at = OLD.at AND NEW.txid = OLD.txid
       AND EXISTS (
           SELECT 1 FROM reporter_erasure
           WHERE reporter_erasure.case_id = OLD.case_id
             AND reporter_erasure.txid = pg_current_xact_id()
       )
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'case_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""

_RETENTION_WHERE = sa.text(
    "status IN ('CLOSED', 'REJECTED', 'DUPLICATE') AND (reporter_name IS NOT NULL "
    "OR reporter_phone IS NOT NULL OR reporter_email IS NOT NULL)"
)


def upgrade() -> None:
    op.add_column("case", sa.Column("reporter_erased_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_case_reporter_retention",
        "case",
        ["updated_at"],
        unique=False,
        postgresql_where=_RETENTION_WHERE,
    )
    op.create_table(
        "reporter_erasure",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("automatic", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case.id"], name=op.f("fk_reporter_erasure_case_id_case")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporter_erasure")),
        sa.UniqueConstraint("case_id", name=op.f("uq_reporter_erasure_case_id")),
    )
    op.execute(
        "ALTER TABLE reporter_erasure ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id()"
    )
    op.create_table(
        "personal_data_access",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("operation", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case.id"], name=op.f("fk_personal_data_access_case_id_case")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_data_access")),
    )
    op.create_index("ix_personal_data_access_at", "personal_data_access", ["at"], unique=False)
    op.create_index(
        "ix_personal_data_access_case_id", "personal_data_access", ["case_id"], unique=False
    )
    op.execute(_APPEND_ONLY_BUT_ERASURES)


def downgrade() -> None:
    op.execute(_APPEND_ONLY)
    op.drop_index("ix_personal_data_access_case_id", table_name="personal_data_access")
    op.drop_index("ix_personal_data_access_at", table_name="personal_data_access")
    op.drop_table("personal_data_access")
    op.drop_table("reporter_erasure")
    op.drop_index(
        "ix_case_reporter_retention", table_name="case", postgresql_where=_RETENTION_WHERE
    )
    op.drop_column("case", "reporter_erased_at")
