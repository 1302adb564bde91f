"""llm steps: attempt log, repairs, per-model outputs and aggregate tokens on steps

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("attempt_log", "repairs", "model_outputs", "aggregate_tokens")


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("workflow_run_steps",
                      sa.Column(name, postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    # GET /api/usage sums step costs per environment over the runs of a time range.
    op.create_index("ix_runs_env_created", "workflow_runs", ["environment", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_env_created", table_name="workflow_runs")
    for name in reversed(_COLUMNS):
        op.drop_column("workflow_run_steps", name)
