"""experts' own calendars: connections, busy times, conflict alerts; consultation feeds

``calendar_connections``: an expert's ICS address or CalDAV account (secrets encrypted with the
master key) and its refresh state; ``calendar_busy``: the last good busy times of each;
``calendar_conflict_alerts``: one row per consultation and calendar event found overlapping (the
alert goes out once); ``consultation_feeds``: an expert's private feed token (hash for look-up,
encrypted copy to show it again).

Revision ID: fb2d897eaee8
Revises: e7a1c5d3b920
Create Date: 2026-12-09 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "fb2d897eaee8"
down_revision: str | None = "e7a1c5d3b920"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_connections",
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "ics",
                "caldav",
                name="calendar_kind",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("address_hint", sa.String(length=200), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=True),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("secret_key_id", sa.String(length=64), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("last_attempt_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("failing_since", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_refresh_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("alerted_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("busy_count", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            app.models.base.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            app.models.base.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["expert_profiles.user_id"],
            name=op.f("fk_calendar_connections_expert_id_expert_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_connections")),
    )
    op.create_index(
        op.f("ix_calendar_connections_expert_id"),
        "calendar_connections",
        ["expert_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_calendar_connections_next_refresh_at"),
        "calendar_connections",
        ["next_refresh_at"],
        unique=False,
    )
    op.create_table(
        "consultation_feeds",
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_enc", sa.LargeBinary(), nullable=False),
        sa.Column("token_key_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_read_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["expert_profiles.user_id"],
            name=op.f("fk_consultation_feeds_expert_id_expert_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("expert_id", name=op.f("pk_consultation_feeds")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_consultation_feeds_token_hash")),
    )
    op.create_table(
        "calendar_busy",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("starts_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["calendar_connections.id"],
            name=op.f("fk_calendar_busy_connection_id_calendar_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["expert_profiles.user_id"],
            name=op.f("fk_calendar_busy_expert_id_expert_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_busy")),
    )
    op.create_index(
        op.f("ix_calendar_busy_connection_id"), "calendar_busy", ["connection_id"], unique=False
    )
    op.create_index(
        "ix_calendar_busy_expert_id_starts_at",
        "calendar_busy",
        ["expert_id", "starts_at"],
        unique=False,
    )
    op.create_table(
        "calendar_conflict_alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["calendar_connections.id"],
            name=op.f("fk_calendar_conflict_alerts_connection_id_calendar_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_calendar_conflict_alerts_consultation_id_consultations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_conflict_alerts")),
        sa.UniqueConstraint(
            "consultation_id", "event_key", name="uq_calendar_conflict_alerts_consultation_event"
        ),
    )
    op.create_index(
        op.f("ix_calendar_conflict_alerts_connection_id"),
        "calendar_conflict_alerts",
        ["connection_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_calendar_conflict_alerts_connection_id"), table_name="calendar_conflict_alerts"
    )
    op.drop_table("calendar_conflict_alerts")
    op.drop_index("ix_calendar_busy_expert_id_starts_at", table_name="calendar_busy")
    op.drop_index(op.f("ix_calendar_busy_connection_id"), table_name="calendar_busy")
    op.drop_table("calendar_busy")
    op.drop_table("consultation_feeds")
    op.drop_index(
        op.f("ix_calendar_connections_next_refresh_at"), table_name="calendar_connections"
    )
    op.drop_index(op.f("ix_calendar_connections_expert_id"), table_name="calendar_connections")
    op.drop_table("calendar_connections")
