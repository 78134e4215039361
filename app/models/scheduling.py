"""Consultations: each expert's availability (weekly hours, date overrides, rules) and the
booked consultations.

- ``ExpertAvailability``: one row per expert (1:1 with ``expert_profiles``), weekly ranges in
  the expert's own IANA zone as JSON ``[{"weekday": 0, "start": "09:00", "end": "13:00"}]``
  (0 = Monday; an end not after the start runs past midnight).
- ``AvailabilityOverride``: other hours on one of the expert's local dates (no ranges: day off).
- ``Consultation``: a booked (or cancelled, held, no-show) consultation of a request with an
  expert. ``blocked_from``/``blocked_until`` is the time the booking keeps from other bookings
  of the same expert; on PostgreSQL an exclusion constraint (btree_gist) refuses two *booked*
  rows of one expert whose blocked ranges overlap. See ``guard_band`` for why the blocked range
  is ``[start - m/2, end + m/2)`` with ``m = max(buffer_before, buffer_after)``.
  On SQLite the same rule is kept by a check-then-insert inside ``BEGIN IMMEDIATE``.

The meeting's password admits guests: it is stored encrypted with the master key
(``meeting_password_enc`` + ``meeting_password_key_id``).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId, Timestamps, UUIDPk, str_enum

#: Name of the PostgreSQL exclusion constraint; the booking service recognises its violation.
BOOKED_OVERLAP_CONSTRAINT = "ex_consultations_booked_overlap"


class ConsultationStatus(enum.StrEnum):
    booked = "booked"
    cancelled = "cancelled"
    held = "held"
    no_show = "no_show"


#: Statuses whose time counts as taken for the slot engine (a held or missed consultation
#: still counts towards the day's cap).
BUSY_STATUSES = (ConsultationStatus.booked, ConsultationStatus.held, ConsultationStatus.no_show)


def guard_band(buffer_before_minutes: int, buffer_after_minutes: int) -> dt.timedelta:
    """Half the minimum gap between two consultations of one expert, put on each side.

    The engine's rule (app/scheduling/slots.py, docs/domain.md "Buffers surround every
    booking"; buffers may overlap other buffers) leaves at least ``max(before, after)``
    minutes between two consultations. Two ranges ``[start - m/2, end + m/2)`` are disjoint
    exactly when the gap is at least ``m``, so the exclusion constraint refuses exactly what
    the engine refuses. (``[start - before, end + after)`` would demand ``before + after``
    and refuse slots the engine offers.) Minutes * 30 is a whole number of seconds.
    """
    return dt.timedelta(seconds=max(buffer_before_minutes, buffer_after_minutes) * 30)


class ExpertAvailability(Timestamps, Base):
    __tablename__ = "expert_availability"

    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expert_profiles.user_id", ondelete="CASCADE"), primary_key=True
    )
    timezone: Mapped[str] = mapped_column(String(64))
    # [{"weekday": 0..6, "start": "HH:MM", "end": "HH:MM"}]
    weekly: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    slot_minutes: Mapped[int] = mapped_column(default=45)
    interval_minutes: Mapped[int | None]
    buffer_before_minutes: Mapped[int] = mapped_column(default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(default=0)
    min_notice_minutes: Mapped[int] = mapped_column(default=120)
    horizon_days: Mapped[int] = mapped_column(default=30)
    max_per_day: Mapped[int | None]

    __table_args__ = (
        CheckConstraint("slot_minutes > 0", name="slot_minutes_positive"),
        CheckConstraint(
            "interval_minutes IS NULL OR interval_minutes > 0", name="interval_minutes_positive"
        ),
        CheckConstraint(
            "buffer_before_minutes >= 0 AND buffer_after_minutes >= 0",
            name="buffers_not_negative",
        ),
        CheckConstraint("min_notice_minutes >= 0", name="min_notice_not_negative"),
        CheckConstraint("horizon_days >= 0", name="horizon_not_negative"),
        CheckConstraint("max_per_day IS NULL OR max_per_day >= 0", name="max_per_day_not_negative"),
    )


class AvailabilityOverride(Base):
    __tablename__ = "availability_overrides"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expert_profiles.user_id", ondelete="CASCADE")
    )
    date: Mapped[dt.date] = mapped_column(Date)
    # [{"start": "HH:MM", "end": "HH:MM"}]; empty: a day off.
    ranges: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    __table_args__ = (UniqueConstraint("expert_id", "date"),)


class Consultation(UUIDPk, Timestamps, Base):
    __tablename__ = "consultations"

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expert_profiles.user_id", ondelete="CASCADE")
    )
    start_at: Mapped[dt.datetime]
    end_at: Mapped[dt.datetime]
    blocked_from: Mapped[dt.datetime]
    blocked_until: Mapped[dt.datetime]
    status: Mapped[ConsultationStatus] = mapped_column(
        str_enum(ConsultationStatus, "consultation_status", length=16)
    )
    # iCalendar: one UID for the life of the consultation; SEQUENCE + 1 on every change.
    ical_uid: Mapped[str] = mapped_column(String(255), unique=True)
    ical_sequence: Mapped[int] = mapped_column(default=0)
    # The online meeting; all null while the link "follows" (the provider has not answered).
    meeting_provider: Mapped[str | None] = mapped_column(String(16))
    meeting_external_id: Mapped[str | None] = mapped_column(String(500))
    meeting_join_url: Mapped[str | None] = mapped_column(String(1000))
    meeting_password_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    meeting_password_key_id: Mapped[str | None] = mapped_column(String(64))
    # Zoom's numeric meeting id (64-bit) for webhook look-ups; what Zoom reported of the meeting.
    zoom_meeting_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    meeting_started_at: Mapped[dt.datetime | None]
    meeting_ended_at: Mapped[dt.datetime | None]
    meeting_deleted_at: Mapped[dt.datetime | None]
    # "requester", "user:<uuid>", "system"
    created_by: Mapped[str] = mapped_column(String(64))
    cancelled_at: Mapped[dt.datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("end_at > start_at", name="ends_after_start"),
        CheckConstraint(
            "blocked_from <= start_at AND blocked_until >= end_at", name="blocked_covers_slot"
        ),
        Index("ix_consultations_expert_id_start_at", "expert_id", "start_at"),
        Index("ix_consultations_request_id", "request_id"),
        # One booked consultation per request at a time.
        Index(
            "uq_consultations_booked_request",
            "request_id",
            unique=True,
            postgresql_where=text("status = 'booked'"),
            sqlite_where=text("status = 'booked'"),
        ),
        # Never two booked consultations of one expert whose blocked ranges overlap
        # (PostgreSQL only; skipped on SQLite, where BEGIN IMMEDIATE serialises the check).
        ExcludeConstraint(
            ("expert_id", "="),
            (func.tstzrange(text("blocked_from"), text("blocked_until")), "&&"),
            name=BOOKED_OVERLAP_CONSTRAINT,
            using="gist",
            where=text("status = 'booked'"),
        ).ddl_if(dialect="postgresql"),
    )
