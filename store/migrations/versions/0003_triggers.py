"""triggers, webhook deliveries, replay ids; run trigger id and request hash

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "triggers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("environment", sa.String(length=32), nullable=False),
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("input_json", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("version_policy", sa.String(length=16), nullable=False),
        sa.Column("pinned_version", sa.Integer(), nullable=True),
        sa.Column("api_key_hash", sa.String(length=64), nullable=True),
        sa.Column("webhook_secret", sa.String(length=100), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_hash"),
    )
    op.create_index(op.f("ix_triggers_environment"), "triggers", ["environment"])
    op.create_index(op.f("ix_triggers_workflow_id"), "triggers", ["workflow_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("environment", sa.String(length=32), nullable=False),
        sa.Column("trigger_id", sa.Uuid(), nullable=False),
        sa.Column("webhook_id", sa.String(length=200), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        _ts("received_at"),
        sa.ForeignKeyConstraint(["trigger_id"], ["triggers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_webhook_deliveries_environment"), "webhook_deliveries",
                    ["environment"])
    op.create_index(op.f("ix_webhook_deliveries_trigger_id"), "webhook_deliveries",
                    ["trigger_id"])
    op.create_table(
        "webhook_seen_ids",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("environment", sa.String(length=32), nullable=False),
        sa.Column("trigger_id", sa.Uuid(), nullable=False),
        sa.Column("webhook_id", sa.String(length=200), nullable=False),
        _ts("seen_at"),
        sa.ForeignKeyConstraint(["trigger_id"], ["triggers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("trigger_id", "webhook_id", name="uq_webhook_seen"),
    )
    op.create_index(op.f("ix_webhook_seen_ids_environment"), "webhook_seen_ids",
                    ["environment"])
    op.add_column("workflow_runs", sa.Column("trigger_id", sa.Uuid(), nullable=True))
    op.add_column("workflow_runs",
                  sa.Column("request_hash", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_workflow_runs_trigger_id"), "workflow_runs", ["trigger_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_workflow_runs_trigger_id"), table_name="workflow_runs")
    op.drop_column("workflow_runs", "request_hash")
    op.drop_column("workflow_runs", "trigger_id")
    op.drop_table("webhook_seen_ids")
    op.drop_table("webhook_deliveries")
    op.drop_table("triggers")
