"""Who a request is offered to, why, and what the expert answered.

- ``Assignment``: one offer of a request to an expert and its outcome. At most one *live*
  assignment (offered or accepted) per request, enforced by a partial unique index.
- ``RoutingDecision``: each routing run, with the rule that matched and every candidate with
  why they were ranked or dropped (ids, codes and counts only: nothing personal).
- ``ExpertNotification``: what an expert is told (listed in the API beside the e-mail).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId, str_enum


class AssignmentStatus(enum.StrEnum):
    offered = "offered"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"
    reassigned = "reassigned"
    cancelled = "cancelled"


LIVE_ASSIGNMENT = (AssignmentStatus.offered, AssignmentStatus.accepted)


class RoutingRule(enum.StrEnum):
    country = "country"
    region = "region"
    general = "general"  # no region for the country and no country expert: staff triage
    none = "none"  # experts exist but none could take it now: staff triage
    staff = "staff"  # staff chose the expert


class Assignment(Base):
    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expert_profiles.user_id", ondelete="CASCADE")
    )
    status: Mapped[AssignmentStatus] = mapped_column(
        str_enum(AssignmentStatus, "assignment_status", length=16)
    )
    offered_at: Mapped[dt.datetime]
    respond_by: Mapped[dt.datetime]
    responded_at: Mapped[dt.datetime | None]
    # A code, not free text: "declined_by_expert", "no_answer", "staff_reassigned", ...
    reason: Mapped[str | None] = mapped_column(String(64))
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("routing_decisions.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_assignments_expert_id_status", "expert_id", "status"),
        Index("ix_assignments_status_respond_by", "status", "respond_by"),
        Index("ix_assignments_request_id", "request_id"),
        Index(
            "uq_assignments_live_request",
            "request_id",
            unique=True,
            postgresql_where=text("status IN ('offered', 'accepted')"),
            sqlite_where=text("status IN ('offered', 'accepted')"),
        ),
    )


class RoutingDecision(Base):
    __tablename__ = "routing_decisions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime]
    # submitted, declined, expired, staff_reassign, staff_route
    trigger: Mapped[str] = mapped_column(String(32))
    rule: Mapped[RoutingRule] = mapped_column(str_enum(RoutingRule, "routing_rule", length=16))
    chosen_expert_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # [{"expert_id", "tier", "outcome": "chosen"|"ranked"|"dropped", "reason", "rank",
    #   "language_match", "topic_match", "open_assignments", "last_assigned_at"}]
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    actor: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_routing_decisions_request_id", "request_id"),)


class ExpertNotification(Base):
    __tablename__ = "expert_notifications"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE")
    )
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE")
    )
    # assignment_offered, assignment_withdrawn, ...
    kind: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    read_at: Mapped[dt.datetime | None]

    __table_args__ = (
        Index("ix_expert_notifications_expert_id_created_at", "expert_id", "created_at"),
    )
