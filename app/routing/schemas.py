"""Staff's view of a request's routing (every decision with its candidates' reasons, every
assignment) and a reassignment."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from app.experts.schemas import AssignmentOut, StrictModel
from app.models import RoutingRule


class CandidateOut(BaseModel):
    expert_id: str
    public_name: str | None
    tier: str
    outcome: str
    reason: str | None
    rank: int | None
    language_match: bool
    topic_match: bool
    open_assignments: int
    max_open_assignments: int
    last_assigned_at: str | None


class DecisionOut(BaseModel):
    id: int
    at: dt.datetime
    trigger: str
    rule: RoutingRule
    chosen_expert_id: uuid.UUID | None
    actor: str
    candidates: list[CandidateOut]


class RoutingOut(BaseModel):
    reference: str
    assigned_expert_id: uuid.UUID | None
    assignments: list[AssignmentOut]
    decisions: list[DecisionOut]


class ReassignIn(StrictModel):
    expert_id: uuid.UUID | None = Field(
        None, description="offer to this expert; null: route again, skipping the current one"
    )
    reason: str | None = Field(None, max_length=64, pattern=r"^[a-z_]+$")
