"""rerun lineage: the step overrides a run was started with

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Source run, fromStepId and version already live in 0001's columns; a rerun may also
    # patch steps for itself only (`stepOverrides`), recorded here so the run explains itself.
    op.add_column("workflow_runs",
                  sa.Column("overrides", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_index("ix_runs_source_run", "workflow_runs", ["source_run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_source_run", table_name="workflow_runs")
    op.drop_column("workflow_runs", "overrides")
