"""process heartbeats and the watchdog's alerts

Workers and beat write a heartbeat row every few seconds; the API reads them for /readyz and
/metrics and e-mails the admins once per silence (watchdog_alerts). Two new tables only: safe
while the previous release still serves.

Revision ID: e1f2a3b4c5d6
Revises: d5e8a3f1c902
Create Date: 2026-12-08 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UTCDateTime

revision: str = "e1f2a3b4c5d6"
down_revision: str | None = "d5e8a3f1c902"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "process_heartbeats",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_process_heartbeats")),
    )
    op.create_index(
        "ix_process_heartbeats_kind_seen_at", "process_heartbeats", ["kind", "seen_at"]
    )
    op.create_table(
        "watchdog_alerts",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("silent_since", UTCDateTime(), nullable=True),
        sa.Column("alerted_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_watchdog_alerts")),
    )


def downgrade() -> None:
    op.drop_table("watchdog_alerts")
    op.drop_index("ix_process_heartbeats_kind_seen_at", table_name="process_heartbeats")
    op.drop_table("process_heartbeats")
