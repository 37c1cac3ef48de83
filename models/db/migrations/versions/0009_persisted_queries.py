"""Persisted queries: GraphQL documents by the SHA-256 of their text, registered by an operator
(for every tenant) or kept for the tenant whose client sent them (automatic persisted queries).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "persisted_query",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hash", "tenant"),
    )
    op.create_index("ix_persisted_query_created_at", "persisted_query", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_persisted_query_created_at", table_name="persisted_query")
    op.drop_table("persisted_query")
