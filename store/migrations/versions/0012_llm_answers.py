"""recorded model answers (answer an identical call again without calling the model) and the
step's pointer to the call an answer came from

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "llm_answers",
        sa.Column("environment", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("run_id", sa.String(length=100), nullable=False),
        sa.Column("step_id", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("environment", "key"),
    )
    op.create_index("ix_llm_answers_recorded_at", "llm_answers", ["recorded_at"])
    op.add_column("workflow_run_steps", sa.Column(
        "cached_from", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()),
        nullable=True))


def downgrade() -> None:
    op.drop_column("workflow_run_steps", "cached_from")
    op.drop_index("ix_llm_answers_recorded_at", table_name="llm_answers")
    op.drop_table("llm_answers")
