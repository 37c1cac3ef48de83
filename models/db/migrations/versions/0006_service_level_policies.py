"""Service levels: policies (``sla_policy``) and each ticket's clocks.

A ticket's clock columns are kept by the verb path (``models.sla_clock``); ``sla_due_at`` is the
earliest due time still running, 9999-12-31 when none, indexed for the breach timer (any tenant)
and for ``orderBy: SLA_DUE_AT`` (one tenant). Existing tickets get no policy: the next write that
chooses one (a change of priority, organization or channel) starts their clocks.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


#: ``sla_due_at`` of a ticket without a running clock, as each database stores it
NEVER = {"sqlite": "'9999-12-31 00:00:00.000000'", "postgresql": "'9999-12-31 00:00:00+00'"}
TIMESTAMPS = ("first_response_due_at", "resolution_due_at", "first_response_breached_at",
              "resolution_breached_at", "sla_paused_at")  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "sla_policy",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("name", sa.String(length=1000), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("priorities", JSON, nullable=False),
        sa.Column("organization_tiers", JSON, nullable=False),
        sa.Column("channels", JSON, nullable=False),
        sa.Column("first_response_seconds", sa.Integer(), nullable=True),
        sa.Column("resolution_seconds", sa.Integer(), nullable=True),
        sa.Column("business_hours", JSON, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sla_policy_created_at", "sla_policy", ["created_at"])
    op.create_index("ix_sla_policy_tenant", "sla_policy", ["tenant"])
    op.create_index("ix_sla_policy_tenant_created", "sla_policy", ["tenant", "created_at", "id"])

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":  # ADD COLUMN … REFERENCES: no copy of the table
        op.execute("ALTER TABLE ticket ADD COLUMN sla_policy_id VARCHAR(40) REFERENCES sla_policy (id)")
    else:
        op.add_column("ticket", sa.Column("sla_policy_id", sa.String(length=40), sa.ForeignKey("sla_policy.id")))
    for name in TIMESTAMPS:
        op.add_column("ticket", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.add_column("ticket", sa.Column("sla_pauses", JSON, nullable=True))
    op.add_column("ticket", sa.Column("sla_state", sa.String(length=32), nullable=True))
    op.add_column(
        "ticket",
        sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text(NEVER[dialect])),
    )
    op.create_index("ix_ticket_sla_policy_id", "ticket", ["sla_policy_id"])
    op.create_index("ix_ticket_tenant_sla_due", "ticket", ["tenant", "sla_due_at", "id"])
    op.create_index("ix_ticket_sla_due", "ticket", ["sla_due_at"])


def downgrade() -> None:
    for index in ("ix_ticket_sla_due", "ix_ticket_tenant_sla_due", "ix_ticket_sla_policy_id"):
        op.drop_index(index, table_name="ticket")
    with op.batch_alter_table("ticket") as batch_op:
        for name in ("sla_policy_id", *TIMESTAMPS, "sla_pauses", "sla_state", "sla_due_at"):
            batch_op.drop_column(name)
    op.drop_table("sla_policy")
