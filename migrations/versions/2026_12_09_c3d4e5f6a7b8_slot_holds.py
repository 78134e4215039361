"""slot holds: a chosen time held for one request while its requester confirms

``slot_holds``: one row per request at most (``uq_slot_holds_request_id``) and per expert and
start (``uq_slot_holds_expert_id``), with the instant it expires; the slot engine treats a
hold that has not expired as a booking for everyone else.

Revision ID: c3d4e5f6a7b8
Revises: fb2d897eaee8
Create Date: 2026-12-09 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "c3d4e5f6a7b8"
down_revision: str | None = "fb2d897eaee8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slot_holds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("start_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_slot_holds_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["expert_profiles.user_id"],
            name=op.f("fk_slot_holds_expert_id_expert_profiles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_slot_holds_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot_holds")),
        sa.UniqueConstraint("expert_id", "start_at", name=op.f("uq_slot_holds_expert_id")),
        sa.UniqueConstraint("request_id", name=op.f("uq_slot_holds_request_id")),
    )
    op.create_index("ix_slot_holds_expires_at", "slot_holds", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_slot_holds_expires_at", table_name="slot_holds")
    op.drop_table("slot_holds")
