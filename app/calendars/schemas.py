"""Calendars' API shapes (Pydantic v2)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class CalendarIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["ics", "caldav"] = Field(
        description="ics: a private ICS address (Google's 'secret address in iCal format', "
        "Outlook's published ICS link, an iCloud public calendar); caldav: a CalDAV account"
    )
    address: SecretStr = Field(description="https:// or webcal:// address; kept encrypted")
    label: str | None = Field(None, max_length=100, description="a name to recognise it by")
    username: str | None = Field(None, max_length=320, description="CalDAV only")
    password: SecretStr | None = Field(None, description="CalDAV only: an app password")


class CalendarOut(BaseModel):
    id: uuid.UUID
    kind: str
    label: str
    address_hint: str
    username: str | None
    created_at: dt.datetime
    last_success_at: dt.datetime | None
    last_error: str | None
    failing_since: dt.datetime | None
    next_refresh_at: dt.datetime
    busy_count: int


class FeedOut(BaseModel):
    active: bool
    url: str | None = Field(None, description="the private address; anyone holding it reads it")
    created_at: dt.datetime | None = None


class ReasonOut(BaseModel):
    rule: str = Field(
        description="outside_hours, override, off_grid, leave, booking, booking_buffer, "
        "daily_cap, minimum_notice, horizon, calendar_busy, other"
    )
    message: str
    calendar_id: uuid.UUID | None = None
    calendar: str | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None


class ExpertExplanationOut(BaseModel):
    expert_id: uuid.UUID
    expert: str
    offered: bool
    reasons: list[ReasonOut]


class ExplanationOut(BaseModel):
    at: dt.datetime
    experts: list[ExpertExplanationOut]
