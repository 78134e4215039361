"""WhatsApp as a channel: the raw webhook inbox, each number's conversation, each message.

- ``whatsapp_inbox``: one row per webhook delivery Meta made, stored as received (encrypted with
  the master key: no request exists yet to own it) and worked on by the worker; the body is
  dropped once it was taken. ``body_sha256`` is unique, so a delivery Meta repeats is stored once.
- ``whatsapp_contacts``: one row per WhatsApp number (its keyed hash, never the number), the
  request its messages join and when it last wrote to us (the start of the 24-hour
  customer-service window, inside which free text may be sent).
- ``whatsapp_messages``: one row per message in either direction, beside its ``request_messages``
  row (which holds the text, encrypted with the request's data key). ``wamid`` is WhatsApp's
  message id, unique: a message taken twice is a replay. Outbound rows follow the statuses Meta
  reports (sent, delivered, read, failed).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId, str_enum
from app.models.messages import MessageDirection


class WhatsAppStatus(enum.StrEnum):
    received = "received"  # inbound: taken from the webhook
    queued = "queued"  # outbound: an outbox row will send it
    sent = "sent"  # accepted by the Cloud API (or its "sent" status)
    delivered = "delivered"
    read = "read"
    failed = "failed"  # refused by the API or reported failed by a status webhook


class WhatsAppInbox(Base):
    __tablename__ = "whatsapp_inbox"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    received_at: Mapped[dt.datetime]
    body_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(64))
    body_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    processed_at: Mapped[dt.datetime | None]
    # What the worker made of it, e.g. {"created": 1, "joined": 0, "replay": 0, "stale": 0}.
    outcome: Mapped[str | None] = mapped_column(String(255))


class WhatsAppContact(Base):
    __tablename__ = "whatsapp_contacts"

    phone_lookup: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL")
    )
    last_inbound_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]

    __table_args__ = (Index("ix_whatsapp_contacts_request_id", "request_id"),)


class WhatsAppMessage(Base):
    __tablename__ = "whatsapp_messages"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="RESTRICT"))
    request_message_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("request_messages.id", ondelete="SET NULL")
    )
    wamid: Mapped[str | None] = mapped_column(String(255), unique=True)
    direction: Mapped[MessageDirection] = mapped_column(
        str_enum(MessageDirection, "whatsapp_direction", length=16)
    )
    phone_lookup: Mapped[str] = mapped_column(String(64))
    status: Mapped[WhatsAppStatus] = mapped_column(
        str_enum(WhatsAppStatus, "whatsapp_status", length=16)
    )
    status_at: Mapped[dt.datetime]
    error_code: Mapped[int | None]
    # Outbound: the approved template's name (None: free text) and its language.
    template: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    outbox_id: Mapped[int | None] = mapped_column(BigIntId)
    # When it was written (inbound: WhatsApp's timestamp) or queued (outbound).
    at: Mapped[dt.datetime]

    __table_args__ = (
        Index("ix_whatsapp_messages_request_id", "request_id"),
        Index("ix_whatsapp_messages_phone_lookup", "phone_lookup"),
    )
