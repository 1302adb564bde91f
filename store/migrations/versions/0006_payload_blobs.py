"""payloads kept outside Temporal's history (the Postgres storage driver)

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payload_blobs",
        sa.Column("namespace", sa.String(length=255), nullable=False),
        sa.Column("workflow_id", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "workflow_id", "digest"),
    )
    op.create_index("ix_payload_blobs_stored_at", "payload_blobs", ["stored_at"])
    # Stored payloads are ciphertext: compressing them gains nothing and Postgres would try
    # (pglz over every value past 2 kB, megabytes of random bytes each), so keep them as is.
    op.execute("ALTER TABLE payload_blobs ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_index("ix_payload_blobs_stored_at", table_name="payload_blobs")
    op.drop_table("payload_blobs")
