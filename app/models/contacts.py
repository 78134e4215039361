"""Outbound contacts with a requester: what stops the one-hour clock.

Only a person's outbound contact counts as the first response (docs/domain.md): a reply e-mailed
from the service, or a phone or WhatsApp contact that staff or the expert log. The short note is
personal data and is encrypted with the request's data key. A bounced reply stops counting.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Index, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId, str_enum
from app.models.requests import ContactChannel


class ContactVia(enum.StrEnum):
    logged = "logged"  # staff or the expert record a phone/WhatsApp/e-mail contact made elsewhere
    reply = "reply"  # an e-mail reply sent from the service (its outbox row is kept)


class RequestContact(Base):
    __tablename__ = "request_contacts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="RESTRICT"))
    channel: Mapped[ContactChannel] = mapped_column(
        str_enum(ContactChannel, "request_contact_channel", length=16)
    )
    via: Mapped[ContactVia] = mapped_column(str_enum(ContactVia, "request_contact_via", length=16))
    # When the contact happened (may be earlier than when it was recorded).
    contacted_at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime]
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # For replies: the outbox row that carries it (its delivery can bounce later).
    outbox_id: Mapped[int | None] = mapped_column(BigIntId)
    bounced_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_request_contacts_request_id", "request_id"),)
