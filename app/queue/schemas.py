"""The staff queue's reply: non-personal items only (no names, no contact details)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from app.intake.sla import SlaState
from app.models import RequesterType, RequestSource, RequestStatus
from app.queue.repository import QueueSort, QueueView


class QueueExpert(BaseModel):
    id: uuid.UUID
    public_name: str | None


class QueueOwner(BaseModel):
    id: uuid.UUID
    name: str


class QueueItem(BaseModel):
    reference: str
    status: RequestStatus
    sla_state: SlaState
    minutes_left: int | None = Field(
        description="minutes to the first-response deadline (negative: overdue); null once "
        "responded or ended"
    )
    country: str | None = Field(
        description="country of origin (ISO 3166-1 alpha-2); null: not known yet (e-mail)"
    )
    region: str | None
    wants: list[str]
    source: RequestSource
    requester_type: RequesterType
    language: str
    expert: QueueExpert | None
    owner: QueueOwner | None = Field(
        None, description='the staff member who took the request ("Take it"); null: nobody'
    )
    received_at: dt.datetime
    first_response_due_at: dt.datetime
    first_responded_at: dt.datetime | None
    ended_at: dt.datetime | None = Field(
        description="when the request ended (final status, or merged); null: open"
    )


class QueueCounts(BaseModel):
    """Over every open request (not narrowed by the filters)."""

    by_status: dict[str, int]
    by_sla_state: dict[str, int] = Field(
        description="awaiting, due_soon, breached, met (an open request is never ``ended``)"
    )
    total_open: int


class QueuePage(BaseModel):
    view: QueueView
    sort: QueueSort
    items: list[QueueItem]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")
    counts: QueueCounts | None
