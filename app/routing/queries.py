"""Staff's view of a request's routing: every decision with its candidates' reasons, every
assignment."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.experts.schemas import assignment_out
from app.models import Assignment, ExpertProfile, IntakeRequest, RoutingDecision
from app.routing.schemas import CandidateOut, DecisionOut, RoutingOut


def routing_of(
    session: Session, req: IntakeRequest
) -> tuple[Sequence[Assignment], Sequence[RoutingDecision]]:
    assignments = session.scalars(
        select(Assignment).where(Assignment.request_id == req.id).order_by(Assignment.id)
    ).all()
    decisions = session.scalars(
        select(RoutingDecision)
        .where(RoutingDecision.request_id == req.id)
        .order_by(RoutingDecision.id)
    ).all()
    return assignments, decisions


def routing_out(session: Session, req: IntakeRequest) -> RoutingOut:
    """A request's routing for staff: every decision with its candidates' reasons (and their
    public names), every assignment."""
    rows, decisions = routing_of(session, req)
    ids = {c["expert_id"] for d in decisions for c in d.candidates}
    names = {
        str(p.user_id): p.public_name
        for p in session.scalars(
            select(ExpertProfile).where(ExpertProfile.user_id.in_([uuid.UUID(i) for i in ids]))
        )
    }
    return RoutingOut(
        reference=req.reference,
        assigned_expert_id=req.assigned_expert_id,
        assignments=[assignment_out(a, req.reference) for a in rows],
        decisions=[
            DecisionOut(
                id=d.id,
                at=d.at,
                trigger=d.trigger,
                rule=d.rule,
                chosen_expert_id=d.chosen_expert_id,
                actor=d.actor,
                candidates=[
                    CandidateOut(**c, public_name=names.get(c["expert_id"])) for c in d.candidates
                ],
            )
            for d in decisions
        ],
    )
