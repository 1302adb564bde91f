"""daily spend per environment and per workflow: what was spent today and what calls in flight
hold, so a daily limit holds across every run and worker

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daily_spend",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("spent_usd", sa.Float(), nullable=False),
        sa.Column("held_usd", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "day"),
    )


def downgrade() -> None:
    op.drop_table("daily_spend")
