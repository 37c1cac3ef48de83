"""An index per entity table on (tenant, created_at, id): the default list order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("organization", "contact", "deal", "subscription", "ticket", "issue", "activity", "metric")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_tenant_created", table, ["tenant", "created_at", "id"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_tenant_created", table_name=table)
