"""front door at rest: refused webhook deliveries counted per trigger, sealed webhook
secrets fit their column, API-key prefixes cut to what they may show

Refused deliveries (unsigned, malformed, forged, replayed) no longer write a row: the trigger
counts them (``refused_deliveries``, the last reason and time). Webhook secrets are sealed
with the payload key ring (``enc1:`` + base64, ~200 characters); rows written before are read
as they are and sealed on their first verified delivery (read-both). Stored key prefixes held
the first 12 characters, the whole of a short key: they are cut to what ``store.keys.prefix_of``
shows (``pp_`` + at most 6, fewer for a short key; a 12-character prefix, whose key length is
unknown, keeps the 5 a 12-character key would show).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("triggers", sa.Column("refused_deliveries", sa.BigInteger(),
                                        server_default="0", nullable=False))
    op.add_column("triggers", sa.Column("last_refused_reason", sa.String(length=200),
                                        nullable=True))
    op.add_column("triggers", sa.Column("last_refused_at", sa.DateTime(timezone=True),
                                        nullable=True))
    op.alter_column("triggers", "webhook_secret", type_=sa.String(length=400),
                    existing_nullable=True)
    # Refused deliveries already stored become the count they now are.
    op.execute("""
        UPDATE triggers SET refused_deliveries = refused.n FROM (
            SELECT trigger_id, count(*) AS n FROM webhook_deliveries WHERE NOT verified
            GROUP BY trigger_id) AS refused
        WHERE triggers.id = refused.trigger_id""")
    op.execute("DELETE FROM webhook_deliveries WHERE NOT verified")
    op.execute("""
        UPDATE api_keys SET prefix = CASE
            WHEN length(prefix) >= 12 THEN left(prefix, 5)
            WHEN prefix LIKE 'pp\\_%' THEN left(prefix, 3 + least(6, (length(prefix) - 3) / 4))
            ELSE left(prefix, least(6, length(prefix) / 4)) END""")


def downgrade() -> None:
    op.alter_column("triggers", "webhook_secret", type_=sa.String(length=100),
                    existing_nullable=True)
    op.drop_column("triggers", "last_refused_at")
    op.drop_column("triggers", "last_refused_reason")
    op.drop_column("triggers", "refused_deliveries")
