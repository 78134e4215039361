"""Contacts with the requester: what staff or the assigned expert log, and the SLA beside it."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

from app.core.validation import SafeAwareDateTime
from app.intake.schemas import SlaOut
from app.models import ContactChannel, ContactVia


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: ContactChannel = Field(description="email, phone or whatsapp")
    contacted_at: SafeAwareDateTime = Field(
        description="when the contact happened, with its offset (not in the future, not before "
        "the request arrived)"
    )
    note: str | None = Field(
        None, max_length=1000, description="a short note (kept encrypted with the request's key)"
    )


class ContactOut(BaseModel):
    id: int
    channel: ContactChannel
    via: ContactVia
    contacted_at: dt.datetime
    recorded_at: dt.datetime
    recorded_by: uuid.UUID | None
    note: str | None
    counts: bool = Field(description="false once a reply bounced: it no longer stops the clock")
    bounced_at: dt.datetime | None


class ContactRecordedOut(ContactOut):
    sla: SlaOut


class ContactsOut(BaseModel):
    reference: str
    sla: SlaOut
    contacts: list[ContactOut]
