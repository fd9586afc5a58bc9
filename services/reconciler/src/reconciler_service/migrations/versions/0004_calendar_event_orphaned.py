"""calendar_event_orphaned: the job type and its rule's index

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:12:40.318204
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TYPES = "('icims_note_missing', 'calendar_event_missing', 'state_mismatch')"
NEW_TYPES = (
    "('icims_note_missing', 'calendar_event_missing', 'calendar_event_orphaned', 'state_mismatch')"
)


def upgrade() -> None:
    op.drop_constraint(op.f("ck_jobs_job_type"), "jobs", type_="check")
    op.create_check_constraint(op.f("ck_jobs_job_type"), "jobs", f"job_type IN {NEW_TYPES}")
    op.create_index(
        "ix_bookings_calendar_orphaned",
        "bookings",
        ["end_at"],
        unique=False,
        postgresql_where=sa.text("status = 'cancelled' AND calendar_state = 'present'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_bookings_calendar_orphaned",
        table_name="bookings",
        postgresql_where=sa.text("status = 'cancelled' AND calendar_state = 'present'"),
    )
    # The older release knows no such job and could neither run nor list it.
    op.execute("DELETE FROM jobs WHERE job_type = 'calendar_event_orphaned'")
    op.drop_constraint(op.f("ck_jobs_job_type"), "jobs", type_="check")
    op.create_check_constraint(op.f("ck_jobs_job_type"), "jobs", f"job_type IN {OLD_TYPES}")
