"""Messages in both directions and internal notes on a request.

Shared by cases (staff/expert replies from the case, notes), inbound e-mail (requests and replies
that arrive by mail, threading) and notifications (the Message-ID of every e-mail sent about a
request, so a reply can be threaded onto it). Everything personal (addresses, subject, body,
attachment names) is in ``data_enc``, encrypted with the request's data key; erasure makes it
unreadable by destroying that key. Threading and look-ups use clear, non-personal columns:
``message_id`` (the RFC 5322 Message-ID, without angle brackets) and ``sender_lookup`` (the keyed
e-mail hash, the same as ``requests.email_lookup``).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId, str_enum

#: The seal kinds (AES-GCM associated data, with the request id) of the encrypted columns here:
#: ``request_messages.data_enc`` is JSON sealed as ``MESSAGE_SEAL_KIND`` and
#: ``request_notes.body_enc`` UTF-8 text sealed as ``NOTE_SEAL_KIND`` (app/intake/keys.py).
MESSAGE_SEAL_KIND = "request_message"
NOTE_SEAL_KIND = "request_note"


class MessageDirection(enum.StrEnum):
    inbound = "inbound"  # from the requester (or anyone) to the organisation
    outbound = "outbound"  # from the service to the requester


class MessageKind(enum.StrEnum):
    reply = "reply"  # a person's reply from the case (counts as a first response)
    automatic = "automatic"  # acknowledgement, sample report, reminders: never a first response
    requester = "requester"  # a message the requester (or their lawyer) wrote
    delivery_report = "delivery_report"  # a bounce / DSN attached to the request


class DeliveryState(enum.StrEnum):
    queued = "queued"
    sent = "sent"
    bounced = "bounced"


class RequestMessage(Base):
    __tablename__ = "request_messages"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="RESTRICT"))
    direction: Mapped[MessageDirection] = mapped_column(
        str_enum(MessageDirection, "message_direction", length=16)
    )
    kind: Mapped[MessageKind] = mapped_column(str_enum(MessageKind, "message_kind", length=24))
    # RFC 5322 Message-ID without the angle brackets; unique so a message is taken once.
    message_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(255))
    # Keyed hash of the sender's address (inbound) for "same sender" threading.
    sender_lookup: Mapped[str | None] = mapped_column(String(64))
    # When it was sent (outbound) or received by the mailbox (inbound: Date/Received).
    at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime]
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Outbound: the outbox row that carries it, its delivery state, the contact it counts as.
    outbox_id: Mapped[int | None] = mapped_column(BigIntId)
    delivery: Mapped[DeliveryState | None] = mapped_column(
        str_enum(DeliveryState, "message_delivery", length=16)
    )
    contact_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("request_contacts.id", ondelete="SET NULL")
    )
    # {"from", "to", "subject", "body", "attachments": [...], ...}, encrypted.
    data_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_request_messages_request_id", "request_id"),
        Index("ix_request_messages_outbox_id", "outbox_id"),
    )


class RequestNote(Base):
    """An internal note by staff or the assigned expert; never shown to the requester."""

    __tablename__ = "request_notes"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="RESTRICT"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime]
    body_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_request_notes_request_id", "request_id"),)


class PresenceActivity(enum.StrEnum):
    viewing = "viewing"
    replying = "replying"


class CasePresence(Base):
    """Who has a case open right now (a heartbeat every few seconds): one row per person and
    request, overwritten by each heartbeat; rows older than the window are simply ignored."""

    __tablename__ = "case_presence"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    activity: Mapped[PresenceActivity] = mapped_column(
        str_enum(PresenceActivity, "presence_activity", length=16)
    )
    seen_at: Mapped[dt.datetime]
