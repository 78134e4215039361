"""Inbound e-mail: addresses flagged after a permanent bounce, the daily count of
acknowledgements per sender, and the mail set aside (not taken as a person's message).

The first two are keyed by the keyed e-mail hash (the same as ``requests.email_lookup``), never by
the address itself.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import Date, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UUIDPk, str_enum


class FlaggedAddress(Base):
    """An address a delivery-status report said is permanently undeliverable (5.x.x)."""

    __tablename__ = "inbound_flagged_addresses"

    email_lookup: Mapped[str] = mapped_column(String(64), primary_key=True)
    flagged_at: Mapped[dt.datetime]
    # The DSN's status code, e.g. "5.1.1", and how many permanent failures were reported.
    status: Mapped[str] = mapped_column(String(16))
    failures: Mapped[int] = mapped_column(default=1)


class InboundAckCount(Base):
    """How many acknowledgements went to one sender on one (UTC) day."""

    __tablename__ = "inbound_ack_counts"

    sender_lookup: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class SetAsideReason(enum.StrEnum):
    """Why a message was not taken as a person's mail."""

    auto_reply = "auto_reply"  # out-of-office, inbox-rule and other automatic replies
    mailing_list = "mailing_list"  # list and bulk mail, newsletters
    bounce = "bounce"  # from mailer-daemon/postmaster or with a null return path
    read_receipt = "read_receipt"  # a disposition notification (RFC 8098)
    own_mail = "own_mail"  # the service's own mail coming back
    loop = "loop"  # more Received hops than any real delivery takes
    delivery_report_unmatched = "delivery_report_unmatched"  # a DSN about mail we never sent
    unreadable = "unreadable"  # the poller read something that is not an e-mail


class InboundSetAside(UUIDPk, Base):
    """One message set aside: the trace staff see (why, when, how large) and, encrypted, who sent
    it, its subject and (up to ``INTAKE_INBOUND_MAX_MESSAGE_BYTES``) the raw message, so staff can
    open it as a request. Each row has its own data key wrapped by the master key (AES-GCM, the
    row id as associated data); the daily retention run deletes rows older than
    ``INTAKE_INBOUND_SET_ASIDE_DAYS``."""

    __tablename__ = "inbound_set_aside"

    received_at: Mapped[dt.datetime]  # the mailbox's clock, as for a request
    recorded_at: Mapped[dt.datetime]
    via: Mapped[str] = mapped_column(String(16))
    reason: Mapped[SetAsideReason] = mapped_column(
        str_enum(SetAsideReason, "set_aside_reason", length=32)
    )
    # Which header or rule decided, e.g. "Auto-Submitted: auto-replied" (never a header's
    # free text that could carry an address).
    detail: Mapped[str] = mapped_column(String(200))
    size: Mapped[int]
    # Keyed hash of the Message-ID: the same message read twice leaves one trace.
    message_key: Mapped[str] = mapped_column(String(64), unique=True)
    # Keyed hash of the sender's address (as requests.email_lookup), so erasing a request
    # removes what its sender's address left here.
    sender_lookup: Mapped[str | None] = mapped_column(String(64))
    # The request it belongs to: the thread it answers, or the one staff opened from it.
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL")
    )
    data_key_id: Mapped[str] = mapped_column(String(64))
    data_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # {"from", "from_name", "subject", "date"}, sealed with the row's data key.
    data_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # The whole message, sealed; None when too large to keep or once opened as a request.
    raw_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    opened_at: Mapped[dt.datetime | None]
    opened_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (
        Index("ix_inbound_set_aside_recorded_at", "recorded_at"),
        Index("ix_inbound_set_aside_sender_lookup", "sender_lookup"),
        Index("ix_inbound_set_aside_request_id", "request_id"),
    )
