"""Slots held while a requester confirms: ``slot_holds``.

Choosing a free time on the booking page holds it for that request for a few minutes
(``INTAKE_SLOT_HOLD_MINUTES``); the confirm step then books it. While a hold has not expired
(``now < expires_at``) the slot engine treats it as a booking of its expert for everyone but
its own request, so nobody else is offered that time or can book it.

Database guarantees, beside the expert's availability row lock that serialises every hold and
booking of one expert:
- ``uq_slot_holds_request_id``: one hold per request (a new choice replaces the old one);
- ``uq_slot_holds_expert_id``: ``(expert_id, start_at)`` unique, so two holds of the same
  slot can never both be written, whatever code path writes them. An expired hold is deleted
  before a new one of its slot is written (under the lock), and holds are swept lazily.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import now
from app.models.base import Base, UUIDPk


class SlotHold(UUIDPk, Base):
    __tablename__ = "slot_holds"

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expert_profiles.user_id", ondelete="CASCADE")
    )
    start_at: Mapped[dt.datetime]
    end_at: Mapped[dt.datetime]
    # The zone the slots were shown in (the booking's horizon is judged in it).
    timezone: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=now)

    __table_args__ = (
        CheckConstraint("end_at > start_at", name="ends_after_start"),
        UniqueConstraint("request_id"),
        UniqueConstraint("expert_id", "start_at"),
        Index("ix_slot_holds_expires_at", "expires_at"),
    )
