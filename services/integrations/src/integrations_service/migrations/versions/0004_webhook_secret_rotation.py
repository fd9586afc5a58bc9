"""An org's replaced iCIMS webhook secret, accepted for an overlap after the change.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 11:22:02.728042
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "connections", sa.Column("icims_webhook_secret_previous", sa.LargeBinary(), nullable=True)
    )
    op.add_column(
        "connections",
        sa.Column("icims_webhook_secret_rotated_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("connections", "icims_webhook_secret_rotated_at")
    op.drop_column("connections", "icims_webhook_secret_previous")
