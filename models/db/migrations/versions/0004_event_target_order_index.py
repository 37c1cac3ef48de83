"""An entity's events in list order from one index: (tenant, target, seq) becomes (tenant,
target, seq, id).

Lists order by their keys and then by id, and without id in the index SQLite chose to walk the
tenant's whole log in seq order instead (2.6 ms instead of 0.01 ms for one ticket's events
among 13,000).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_event_tenant_target_seq", table_name="event")
    op.create_index("ix_event_tenant_target_seq", "event", ["tenant", "target", "seq", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_event_tenant_target_seq", table_name="event")
    op.create_index("ix_event_tenant_target_seq", "event", ["tenant", "target", "seq"], unique=False)
