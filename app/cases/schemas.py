"""The staff case view (read-only): everything about one request in one reply."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.intake.schemas import SlaOut
from app.models import (
    CaseStage,
    ContactChannel,
    OutboxStatus,
    RequesterType,
    RequestSource,
    RequestStatus,
)
from app.models.messages import DeliveryState, MessageDirection, MessageKind, PresenceActivity
from app.reference.schemas import CountryProfile
from app.routing.schemas import DecisionOut, RoutingOut
from app.scheduling.schemas import ConsultationOut
from app.sla.schemas import ContactOut


class CaseRequest(BaseModel):
    """The request's fields; ``personal`` is the decrypted form (null once erased)."""

    reference: str
    status: RequestStatus
    source: RequestSource
    requester_type: RequesterType
    preferred_channel: ContactChannel
    country_of_origin: str | None
    country_of_residence: str | None
    region_code: str | None
    case_stage: CaseStage
    deadline: dt.date | None
    topics: list[str]
    wants: list[str]
    consent_updates: list[str]
    language: str
    timezone: str
    discreet: bool
    received_at: dt.datetime
    withdrawn_at: dt.datetime | None
    assigned_expert_id: uuid.UUID | None
    linked_request_reference: str | None
    merged_into_reference: str | None = Field(
        None, description="this request is a duplicate merged into that one (not in the queue)"
    )
    merged_from_references: list[str] = Field(
        default_factory=list, description="duplicates merged into this request"
    )
    personal: dict[str, Any] | None = Field(
        description="name, contact details, case summary (decrypted); null once erased"
    )
    erased: bool


class HistoryOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    details: dict[str, Any]
    data: Any | None = Field(None, description="the encrypted part, decrypted (if any)")


class MessageOut(BaseModel):
    """An outbox row about this request: ids only, rendered at send time."""

    id: int
    kind: str
    status: OutboxStatus
    due_at: dt.datetime
    sent_at: dt.datetime | None
    attempts: int


class NoteOut(BaseModel):
    id: int
    created_at: dt.datetime
    author_id: uuid.UUID | None
    author_name: str | None
    body: str | None = Field(description="decrypted; null once the request was erased")


class CaseMessageOut(BaseModel):
    """A message in either direction (request_messages), its personal part decrypted."""

    id: int
    direction: MessageDirection
    kind: MessageKind
    at: dt.datetime
    message_id: str | None = Field(description="RFC 5322 Message-ID without angle brackets")
    in_reply_to: str | None
    author_id: uuid.UUID | None
    delivery: DeliveryState | None
    outbox_id: int | None
    contact_id: int | None = Field(description="the first-response contact it counts as")
    data: dict[str, Any] | None = Field(
        description="to/from, subject, body, attachment names (decrypted); null once erased"
    )


class PresentOut(BaseModel):
    user_id: uuid.UUID
    name: str
    role: str
    activity: PresenceActivity
    seen_at: dt.datetime


class PresenceOut(BaseModel):
    reference: str
    window_seconds: int = Field(description="someone not seen for this long has left")
    others: list[PresentOut] = Field(description="everyone else on this case now (not you)")


class OwnerOut(BaseModel):
    user_id: uuid.UUID
    name: str
    taken_at: dt.datetime


class CaseOut(BaseModel):
    request: CaseRequest
    sla: SlaOut
    country_profile: CountryProfile | None
    routing: RoutingOut
    latest_decision: DecisionOut | None
    consultations: list[ConsultationOut]
    contacts: list[ContactOut]
    messages_sent: list[MessageOut] = Field(
        description="outbound messages about this request (kind and delivery status)"
    )
    messages: list[CaseMessageOut] = Field(
        description="e-mails in both directions (replies, automatic mails, the requester's)"
    )
    notes: list[NoteOut]
    others_present: list[PresentOut] = Field(
        description="other staff or experts who have this case open now"
    )
    history: list[HistoryOut]
    owner: OwnerOut | None = Field(
        None, description='the staff member who took the request ("Take it"); null: nobody'
    )


# Actions ------------------------------------------------------------------------------------


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: RequestStatus = Field(description="the new status (the state machine decides)")


class StatusOut(BaseModel):
    reference: str
    status: RequestStatus
    allowed_next: list[RequestStatus]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=10_000, description="kept encrypted")


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expert_id: uuid.UUID | None = Field(
        None, description="offer it to this expert; null: to the next candidate"
    )
    reason: str | None = Field(None, max_length=200, description="non-personal, e.g. 'workload'")


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=20_000, description="plain text")
    subject: str | None = Field(
        None,
        max_length=200,
        description="optional; default: a neutral subject in the requester's language",
    )


class ReplyOut(CaseMessageOut):
    sla: SlaOut


class ResendOut(BaseModel):
    reference: str
    outbox_id: int
    status: OutboxStatus


class CorrectionIn(BaseModel):
    """Only the fields given change; contact details are kept encrypted."""

    model_config = ConfigDict(extra="forbid")

    country_of_origin: str | None = Field(None, max_length=2)
    country_of_residence: str | None = Field(None, max_length=2)
    language: str | None = Field(None, max_length=35)
    timezone: str | None = Field(None, max_length=64)
    preferred_channel: ContactChannel | None = None
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)
    whatsapp: str | None = Field(None, max_length=40)
    reroute: bool | None = Field(
        None,
        description="route again; default: when the country of origin or the language changed",
    )


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    into: str = Field(min_length=1, max_length=32, description="the reference to merge into")


class MergeOut(BaseModel):
    reference: str
    merged_into_reference: str | None


class PresenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activity: PresenceActivity = PresenceActivity.viewing


class TakeOut(BaseModel):
    reference: str
    owner: OwnerOut


class ReplyPreviewOut(BaseModel):
    to: str = Field(description="the requester's address")
    subject: str = Field(description="the subject as sent (the reference added if missing)")
    text: str = Field(
        description="the e-mail's text exactly as sent: greeting, the body, signature, "
        "reference and the private link, whose token is masked here (it is the requester's)"
    )
    language: str = Field(description="the language of the e-mail (the requester's)")
    digest: str = Field(description="names this e-mail (recipient, subject, text)")
    greeting: str | None = Field(
        description="the greeting the body opens with; the e-mail greets already, so sending "
        "it would greet the requester twice (the case page refuses it)"
    )
