"""The staff case view (read-only): everything about one request in one reply."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field

from app.experts.schemas import DecisionOut, RoutingOut
from app.intake.schemas import SlaOut
from app.models import (
    CaseStage,
    ContactChannel,
    OutboxStatus,
    RequesterType,
    RequestSource,
    RequestStatus,
)
from app.reference.schemas import CountryProfile
from app.scheduling.schemas import ConsultationOut
from app.sla.schemas import ContactOut


class CaseRequest(BaseModel):
    """The request's fields; ``personal`` is the decrypted form (null once erased)."""

    reference: str
    status: RequestStatus
    source: RequestSource
    requester_type: RequesterType
    preferred_channel: ContactChannel
    country_of_origin: str
    country_of_residence: str
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
    history: list[HistoryOut]
