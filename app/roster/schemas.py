"""The roster's admin API: weekly shifts, one-off overrides, gaps, who is on duty."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from app.core.validation import SafeDateTime
from app.models import DutyLevel, OverrideKind


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError("must be a time zone name like 'Europe/Berlin' or 'Asia/Bishkek'")
    return value


Zone = Annotated[str, AfterValidator(_timezone)]


def _wall_clock(value: dt.time) -> dt.time:
    if value.tzinfo is not None:
        raise ValueError("must be a wall-clock time without an offset, e.g. 22:00")
    return value


# A local time of day in the shift's `timezone`. Documented as what it is: OpenAPI's `time`
# format is an RFC 3339 time with an offset, which a wall-clock time has not.
WallClock = Annotated[
    dt.time,
    AfterValidator(_wall_clock),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$",
            "examples": ["22:00"],
        }
    ),
]


class ShiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID = Field(description="a staff, admin or expert account")
    timezone: Zone | None = Field(
        None,
        description="IANA zone of the wall-clock times; default: the expert's profile zone, "
        "else UTC",
    )
    weekday: int = Field(
        ge=0, le=6, description="local weekday the shift starts: 0 Monday .. 6 Sunday"
    )
    starts_local: WallClock = Field(description="local start, e.g. 22:00")
    ends_local: WallClock = Field(
        description="local end; at or before the start means the next day (equal: 24 hours)"
    )
    level: DutyLevel = Field(
        DutyLevel.member, description="member, lead (the duty lead) or supervisor"
    )
    note: str | None = Field(None, max_length=200, description="not personal data")


class ShiftPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: Zone | None = None
    weekday: int | None = Field(None, ge=0, le=6)
    starts_local: WallClock | None = None
    ends_local: WallClock | None = None
    level: DutyLevel | None = None
    note: str | None = Field(None, max_length=200)


class ShiftOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: uuid.UUID
    timezone: str
    weekday: int
    starts_local: WallClock
    ends_local: WallClock
    level: DutyLevel
    note: str | None


class OverrideIn(BaseModel):
    """An extra shift or a cancellation. ``starts_at``/``ends_at`` with an offset are instants;
    without one they are local date-times in ``timezone``."""

    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID
    kind: OverrideKind = Field(description="extra: an additional shift; cancel: off duty")
    starts_at: SafeDateTime
    ends_at: SafeDateTime
    timezone: Zone | None = Field(
        None, description="zone of local (offset-less) times; default as for shifts"
    )
    level: DutyLevel = Field(DutyLevel.member, description="level of an extra shift")
    note: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> OverrideIn:
        if (self.starts_at.tzinfo is None) != (self.ends_at.tzinfo is None):
            raise ValueError("give both times with an offset, or both as local times")
        return self


class OverrideOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: uuid.UUID
    kind: OverrideKind
    starts_at: dt.datetime
    ends_at: dt.datetime
    level: DutyLevel
    note: str | None


class GapOut(BaseModel):
    kind: str = Field(description="staff: nobody of staff on duty; region: no expert nor lead")
    region_code: str | None
    start: dt.datetime
    end: dt.datetime


class GapsOut(BaseModel):
    roster_empty: bool = Field(description="true: the old rule applies and no gap is computed")
    start: dt.datetime
    end: dt.datetime
    gaps: list[GapOut]


class PersonOut(BaseModel):
    id: uuid.UUID
    role: str
    display_name: str


class OnDutyOut(BaseModel):
    at: dt.datetime
    roster_empty: bool
    on_duty: list[PersonOut] = Field(description="the roster's on-duty people (no fallback)")
    on_duty_staff: list[PersonOut] = Field(description="who reminders go to now")
    duty_lead: PersonOut | None
    supervisors: list[PersonOut] = Field(description="who the last escalation level goes to")


class EscalationOut(BaseModel):
    reference: str
    level: int = Field(description="1 on-duty staff, 2 duty lead, 3 supervisors")
    opened_at: dt.datetime
    level_sent_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: uuid.UUID | None
    acknowledged_via: str | None
