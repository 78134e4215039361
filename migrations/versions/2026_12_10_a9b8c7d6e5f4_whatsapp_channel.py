"""whatsapp as a channel: webhook inbox, numbers' conversations, messages; source whatsapp

``whatsapp_inbox`` (raw deliveries, encrypted, unique by body hash), ``whatsapp_contacts`` (one
row per number's keyed hash: its request and the last time it wrote, the 24-hour window) and
``whatsapp_messages`` (one per message, unique by WhatsApp's ``wamid``). ``requests.source``
accepts ``whatsapp``.

Widening the CHECK on SQLite: batch mode would copy ``requests`` and drop the old table, and with
foreign keys on that drop deletes or refuses every row referring to a request. SQLite documents
a simpler procedure for changing a CHECK constraint (ALTER TABLE, "making other kinds of table
schema changes"): rewrite the table's SQL in ``sqlite_schema`` and bump ``schema_version``, all
inside the migration's transaction. Existing rows satisfy the wider check, so no data moves.

Revision ID: a9b8c7d6e5f4
Revises: c3d4e5f6a7b8
Create Date: 2026-12-10 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "a9b8c7d6e5f4"
down_revision: str | None = "c3d4e5f6a7b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "ck_requests_request_source"
NARROW = "source IN ('form', 'email')"
WIDE = "source IN ('form', 'email', 'whatsapp')"


def _sqlite_rewrite_check(old: str, new: str) -> None:
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'requests'"
    ).scalar_one()
    if old not in sql:
        if new in sql:
            return
        raise RuntimeError(f"requests: the check {CHECK} is not as expected")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'requests'",
        (sql.replace(old, new),),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def _widen(old: str, new: str, values: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rewrite_check(old, new)
        return
    op.drop_constraint(op.f(CHECK), "requests", type_="check")
    op.create_check_constraint(op.f(CHECK), "requests", sa.column("source").in_(values))


def upgrade() -> None:
    _widen(NARROW, WIDE, ("form", "email", "whatsapp"))
    op.create_table(
        "whatsapp_inbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("received_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("body_enc", sa.LargeBinary(), nullable=True),
        sa.Column("processed_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_inbox")),
        sa.UniqueConstraint("body_sha256", name=op.f("uq_whatsapp_inbox_body_sha256")),
    )
    op.create_table(
        "whatsapp_contacts",
        sa.Column("phone_lookup", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("last_inbound_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_whatsapp_contacts_request_id_requests"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("phone_lookup", name=op.f("pk_whatsapp_contacts")),
    )
    op.create_index(
        "ix_whatsapp_contacts_request_id", "whatsapp_contacts", ["request_id"], unique=False
    )
    op.create_table(
        "whatsapp_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column(
            "request_message_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("wamid", sa.String(length=255), nullable=True),
        sa.Column(
            "direction",
            sa.Enum(
                "inbound",
                "outbound",
                name="whatsapp_direction",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("phone_lookup", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "queued",
                "sent",
                "delivered",
                "read",
                "failed",
                name="whatsapp_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("status_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("template", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("outbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_whatsapp_messages_request_id_requests"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["request_message_id"],
            ["request_messages.id"],
            name=op.f("fk_whatsapp_messages_request_message_id_request_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_messages")),
        sa.UniqueConstraint("wamid", name=op.f("uq_whatsapp_messages_wamid")),
    )
    op.create_index(
        "ix_whatsapp_messages_request_id", "whatsapp_messages", ["request_id"], unique=False
    )
    op.create_index(
        "ix_whatsapp_messages_phone_lookup", "whatsapp_messages", ["phone_lookup"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_whatsapp_messages_phone_lookup", table_name="whatsapp_messages")
    op.drop_index("ix_whatsapp_messages_request_id", table_name="whatsapp_messages")
    op.drop_table("whatsapp_messages")
    op.drop_index("ix_whatsapp_contacts_request_id", table_name="whatsapp_contacts")
    op.drop_table("whatsapp_contacts")
    op.drop_table("whatsapp_inbox")
    # Requests that came by WhatsApp cannot stay under the narrow check: they are refused here
    # rather than silently relabelled.
    count = (
        op.get_bind()
        .exec_driver_sql("SELECT count(*) FROM requests WHERE source = 'whatsapp'")
        .scalar_one()
    )
    if count:
        raise RuntimeError(f"{count} requests came by WhatsApp: erase or relabel them first")
    _widen(WIDE, NARROW, ("form", "email"))
