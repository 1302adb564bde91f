"""stored prompts; child-run lineage; parallel inner steps and map item summaries

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "prompts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("environment", sa.String(length=32), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("current_version", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("environment", "slug", name="uq_prompts_env_slug"),
    )
    op.create_index(op.f("ix_prompts_environment"), "prompts", ["environment"])
    op.create_table(
        "prompt_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("environment", sa.String(length=32), nullable=False),
        sa.Column("prompt_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("prompt_system", sa.String(), nullable=True),
        sa.Column("prompt_user", sa.String(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prompt_id", "version", name="uq_prompt_versions"),
    )
    op.create_index(op.f("ix_prompt_versions_environment"), "prompt_versions", ["environment"])
    op.add_column("workflow_runs", sa.Column("parent_run_id", sa.Uuid(), nullable=True))
    op.add_column("workflow_runs",
                  sa.Column("parent_step_id", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_workflow_runs_parent_run_id"), "workflow_runs", ["parent_run_id"])
    op.add_column("workflow_run_steps",
                  sa.Column("parent_step_id", sa.String(length=64), nullable=True))
    op.add_column("workflow_run_steps",
                  sa.Column("map_items", postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("workflow_run_steps", "map_items")
    op.drop_column("workflow_run_steps", "parent_step_id")
    op.drop_index(op.f("ix_workflow_runs_parent_run_id"), table_name="workflow_runs")
    op.drop_column("workflow_runs", "parent_step_id")
    op.drop_column("workflow_runs", "parent_run_id")
    op.drop_index(op.f("ix_prompt_versions_environment"), table_name="prompt_versions")
    op.drop_table("prompt_versions")
    op.drop_index(op.f("ix_prompts_environment"), table_name="prompts")
    op.drop_table("prompts")
