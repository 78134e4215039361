from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from app.intake.sla import SlaState
from app.models import SetAsideReason


class TakenOut(BaseModel):
    action: str = Field(
        description="created | follow_up | reply | delivery_report | set_aside | duplicate"
    )
    reason: str | None = Field(
        None,
        description="why it was set aside (auto_reply, mailing_list, read_receipt, bounce, "
        "own_mail, loop, ...) or is a duplicate",
    )


class TriageIn(BaseModel):
    country_of_origin: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    country_of_residence: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    language: str = Field(min_length=2, max_length=35, description="BCP 47 tag, e.g. 'en'")


class TriageOut(BaseModel):
    reference: str
    country_of_origin: str | None
    country_of_residence: str | None
    language: str
    region_code: str | None = Field(description="null: the general pool")
    assigned_expert_id: str | None = Field(description="set when routing found an expert")
    sla_state: SlaState


class SetAsideOut(BaseModel):
    id: uuid.UUID
    received_at: dt.datetime = Field(description="when the mailbox received it (UTC)")
    recorded_at: dt.datetime = Field(description="when it was set aside (UTC)")
    via: str = Field(description="imap | webhook")
    reason: SetAsideReason = Field(description="why it was not taken as a person's mail")
    detail: str = Field(description="the header or rule that decided, e.g. 'List-Unsubscribe'")
    size: int = Field(description="bytes")
    sender: str | None = Field(description="masked: first letter and domain, e.g. 'f***@x.org'")
    sender_domain: str | None
    subject: str | None
    reference: str | None = Field(
        description="the request it belongs to: the thread it answers, or the one opened from it"
    )
    can_open: bool = Field(description="an encrypted copy is kept and it can be opened")
    opened_at: dt.datetime | None
    opened_by: str | None = Field(description="who opened it (display name)")


class SetAsideListOut(BaseModel):
    items: list[SetAsideOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page")
    retention_days: int = Field(description="each is deleted this many days after it arrived")


class OpenedOut(BaseModel):
    action: str = Field(description="created (a new request) | reply (added to its request)")
    reference: str
