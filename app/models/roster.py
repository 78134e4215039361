"""The duty roster (who is on duty when) and the escalation chain of a breached request.

A ``RosterShift`` repeats every week: a weekday and a wall-clock start and end in the person's
own IANA zone (an end at or before the start means the shift runs past midnight into the next
day). Occurrences are computed in that zone and converted to UTC, so daylight-saving changes move
the UTC instants, not the wall-clock hours. A ``RosterOverride`` is a one-off change in UTC
instants: an extra shift, or a cancellation of whatever the person had in that period.

An ``Escalation`` is opened when a request's first response is overdue; it climbs one level
(on-duty staff -> duty lead -> supervisors) every ``INTAKE_ESCALATION_ACK_MINUTES`` until
someone acknowledges it or the requester is contacted.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId, Timestamps, str_enum


class DutyLevel(enum.StrEnum):
    """``member``: on duty; ``lead``: the duty lead (also on duty); ``supervisor``: the
    supervisor level of the escalation chain."""

    member = "member"
    lead = "lead"
    supervisor = "supervisor"


class OverrideKind(enum.StrEnum):
    extra = "extra"
    cancel = "cancel"


class RosterShift(Timestamps, Base):
    __tablename__ = "roster_shifts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    timezone: Mapped[str] = mapped_column(String(64))
    # 0 = Monday ... 6 = Sunday, the local weekday the shift starts on.
    weekday: Mapped[int]
    starts_local: Mapped[dt.time] = mapped_column(Time())
    # At or before ``starts_local``: ends the next day (equal: a 24-hour shift).
    ends_local: Mapped[dt.time] = mapped_column(Time())
    level: Mapped[DutyLevel] = mapped_column(str_enum(DutyLevel, "duty_level", length=16))
    note: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
        Index("ix_roster_shifts_user_id", "user_id"),
    )


class RosterOverride(Base):
    __tablename__ = "roster_overrides"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[OverrideKind] = mapped_column(str_enum(OverrideKind, "override_kind", length=16))
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    # The level of an extra shift (ignored for a cancellation).
    level: Mapped[DutyLevel] = mapped_column(str_enum(DutyLevel, "duty_level", length=16))
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime]

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_roster_overrides_ends_at", "ends_at"),
    )


class Escalation(Base):
    """One per request whose first response became overdue."""

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), unique=True
    )
    opened_at: Mapped[dt.datetime]
    # The highest level sent so far (1 on-duty staff, 2 duty lead, 3 supervisors).
    level: Mapped[int]
    level_sent_at: Mapped[dt.datetime]
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # "link" (the e-mail's signed link) or "case" (the API).
    acknowledged_via: Mapped[str | None] = mapped_column(String(16))
