"""Availability (in and out), slots as the requester sees them, consultations."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from app.core.validation import SafeDate, SafeDateTime
from app.models import Consultation, ConsultationStatus, ExpertProfile, IntakeRequest
from app.scheduling.slots import zone

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _hhmm(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError("must be a time of day as HH:MM (00:00 to 23:59)")
    return value


def _zone(value: str) -> str:
    try:
        zone(value)
    except ValueError:
        raise ValueError(
            "must be a time zone name like 'Europe/Berlin' or 'Asia/Bishkek'"
        ) from None
    return value


HHMM = Annotated[str, AfterValidator(_hhmm)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_zone)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WeeklyRangeIn(StrictModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    start: HHMM
    end: HHMM = Field(description="an end not after the start runs past midnight")


class TimeRangeIn(StrictModel):
    start: HHMM
    end: HHMM


class OverrideIn(StrictModel):
    date: SafeDate = Field(description="the expert's local date")
    ranges: list[TimeRangeIn] = Field(
        default_factory=list, max_length=12, description="other hours that day; empty: day off"
    )


class AvailabilityIn(StrictModel):
    """The whole availability of an expert (PUT replaces it)."""

    timezone: TimeZone | None = Field(None, description="IANA zone; default: the expert's own")
    weekly: list[WeeklyRangeIn] = Field(default_factory=list, max_length=100)
    overrides: list[OverrideIn] = Field(default_factory=list, max_length=400)
    slot_minutes: int = Field(45, ge=5, le=480, description="consultation length")
    interval_minutes: int | None = Field(
        None, ge=5, le=480, description="grid step; default: the consultation length"
    )
    buffer_before_minutes: int = Field(0, ge=0, le=240)
    buffer_after_minutes: int = Field(0, ge=0, le=240)
    min_notice_minutes: int = Field(120, ge=0, le=60 * 24 * 30)
    horizon_days: int = Field(30, ge=1, le=365)
    max_per_day: int | None = Field(None, ge=0, le=100)

    @field_validator("overrides")
    @classmethod
    def _one_override_per_date(cls, value: list[OverrideIn]) -> list[OverrideIn]:
        seen: set[dt.date] = set()
        for o in value:
            if o.date in seen:
                raise ValueError(f"{o.date} is given twice (one override per date)")
            seen.add(o.date)
        return value


class AvailabilityOut(BaseModel):
    expert_id: uuid.UUID
    configured: bool = Field(description="false: defaults shown, no hours set yet (no slots)")
    timezone: str
    weekly: list[WeeklyRangeIn]
    overrides: list[OverrideIn]
    slot_minutes: int
    interval_minutes: int | None
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    horizon_days: int
    max_per_day: int | None


class SlotOut(BaseModel):
    start_utc: str
    end_utc: str
    start_local: str = Field(description="in the asked zone, with its UTC offset")
    end_local: str
    utc_offset: str
    label: str = Field(description="'14:30'; '01:30 (UTC+01:00)' when that wall time repeats")


class SlotDayOut(BaseModel):
    date: dt.date = Field(description="the requester's local date")
    slots: list[SlotOut]


class ExpertNameOut(BaseModel):
    public_name: str


class SlotsOut(BaseModel):
    reference: str
    timezone: str
    from_date: dt.date = Field(serialization_alias="from")
    to_date: dt.date = Field(serialization_alias="to")
    expert: ExpertNameOut | None = Field(description="null: the region's pool of experts")
    pool: bool
    days: list[SlotDayOut]


class BookIn(StrictModel):
    start: SafeDateTime = Field(description="the slot's start_utc, e.g. 2026-11-24T09:00:00Z")
    timezone: TimeZone | None = Field(
        None, description="the zone the slots were asked in (horizon, labels); default: request's"
    )

    @field_validator("start")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a time zone (UTC, e.g. 2026-11-24T09:00:00Z)")
        return value


class ConsultationOut(BaseModel):
    id: uuid.UUID
    reference: str
    status: ConsultationStatus
    start_utc: dt.datetime
    end_utc: dt.datetime
    timezone: str
    start_local: str
    end_local: str
    expert: ExpertNameOut
    join_url: str | None = Field(description="null while the link follows")
    meeting_link: Literal["ready", "follows", "none"]
    ical_uid: str
    ical_sequence: int


def consultation_out(
    session: Session, req: IntakeRequest, c: Consultation, zone_name: str | None = None
) -> ConsultationOut:
    zone_name = zone_name or req.timezone
    profile = session.get(ExpertProfile, c.expert_id)
    tz = zone(zone_name)
    return ConsultationOut(
        id=c.id,
        reference=req.reference,
        status=c.status,
        start_utc=c.start_at,
        end_utc=c.end_at,
        timezone=zone_name,
        start_local=c.start_at.astimezone(tz).isoformat(),
        end_local=c.end_at.astimezone(tz).isoformat(),
        expert=ExpertNameOut(public_name=profile.public_name if profile else ""),
        join_url=c.meeting_join_url,
        meeting_link=(
            "ready" if c.meeting_join_url else ("follows" if c.status == "booked" else "none")
        ),
        ical_uid=c.ical_uid,
        ical_sequence=c.ical_sequence,
    )


class HoldOut(BaseModel):
    """A time held for the request while its requester confirms."""

    id: uuid.UUID = Field(description="send it to `.../consultation/hold/confirm`")
    reference: str
    start_utc: dt.datetime
    end_utc: dt.datetime
    minutes: int = Field(description="the consultation's length")
    timezone: str = Field(description="the zone the slots were shown in")
    start_local: str = Field(description="in that zone, with its UTC offset")
    expert: ExpertNameOut
    expires_at: dt.datetime = Field(
        description="held until this instant (not at it); then released to everyone"
    )


class ConfirmHoldIn(StrictModel):
    hold_id: uuid.UUID = Field(description="the `id` the hold was answered with")
