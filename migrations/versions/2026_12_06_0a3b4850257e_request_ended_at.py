"""requests.ended_at: when a request ended (final status or merged), read by the SLA rule

Backfill from the history: a request in a final status ended when it moved there (the last
``status_changed`` row to that status); one merged into another when it was merged (the last
``merged_into`` row), whichever came first. Rows without that history (not written by this
service) take ``withdrawn_at``, else ``updated_at``: no earlier than the real end, so such a
request is never judged ``ended`` when it may have been ``breached``.

Revision ID: 0a3b4850257e
Revises: f1a2b3c4d518
Create Date: 2026-12-06 01:50:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = '0a3b4850257e'
down_revision: str | None = 'f1a2b3c4d518'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINAL = "('closed', 'declined', 'spam', 'withdrawn')"
FINAL_AT = (
    "(SELECT MAX(h.at) FROM request_history h WHERE h.request_id = requests.id"
    " AND h.action = 'status_changed' AND h.to_status = requests.status)"
)
MERGED_AT = (
    "(SELECT MAX(h.at) FROM request_history h WHERE h.request_id = requests.id"
    " AND h.action = 'merged_into')"
)


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('ended_at', app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    # Plain SQL that PostgreSQL and SQLite both run; instants are copied, never converted.
    op.execute(f"UPDATE requests SET ended_at = {FINAL_AT} WHERE status IN {FINAL}")
    op.execute(
        "UPDATE requests SET ended_at = COALESCE(withdrawn_at, updated_at)"
        f" WHERE status IN {FINAL} AND ended_at IS NULL"
    )
    op.execute(
        f"UPDATE requests SET ended_at = {MERGED_AT}"
        f" WHERE merged_into_id IS NOT NULL AND {MERGED_AT} IS NOT NULL"
        f" AND (ended_at IS NULL OR ended_at > {MERGED_AT})"
    )
    op.execute(
        "UPDATE requests SET ended_at = updated_at"
        " WHERE merged_into_id IS NOT NULL AND ended_at IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('ended_at')
