"""Where booking a consultation meets routing (docs/domain.md "Booking and assignment"):
booking pins the request to that expert and accepts the assignment for them.

``respond()`` cannot be used for this: it refuses an offer whose answer time has run out (a
requester may book before ``expire_offers`` has passed the offer on), and it needs the expert's
account as the actor. Capacity follows the same counter as routing (``take_capacity``).
"""

from __future__ import annotations

import datetime as dt
import uuid

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.intake import records as intake
from app.models import (
    Assignment,
    AssignmentStatus,
    ExpertNotification,
    IntakeRequest,
)
from app.routing import repository
from app.sendouts import service as sendouts

log = structlog.get_logger(__name__)


def _notify(
    session: Session,
    expert_id: uuid.UUID,
    kind: str,
    req: IntakeRequest,
    assignment: Assignment,
    at: dt.datetime,
) -> None:
    session.add(
        ExpertNotification(
            expert_id=expert_id,
            request_id=req.id,
            assignment_id=assignment.id,
            kind=kind,
            created_at=at,
        )
    )


def pool_assignable(session: Session, req: IntakeRequest, expert_id: uuid.UUID) -> bool:
    """Whether booking may give this request to this expert: they were not passed over for it
    before (declined, no answer, reassigned away)."""
    passed = session.scalar(
        select(Assignment.id)
        .where(
            Assignment.request_id == req.id,
            Assignment.expert_id == expert_id,
            Assignment.status.in_(list(repository.PASSED_OVER)),
        )
        .limit(1)
    )
    return passed is None


def pin_for_booking(
    session: Session, req: IntakeRequest, expert_id: uuid.UUID, *, actor: str
) -> Assignment | None:
    """Make ``expert_id`` the request's accepted expert. The caller holds the request's row lock.

    - Live assignment of this expert: accepted (if it was only offered).
    - No live assignment (the region pool): a unit of the expert's capacity is taken and an
      accepted assignment created; ``None`` when the expert has no capacity left (the caller
      tries the next expert of the pool).
    - A live assignment of another expert: ``ValueError`` (the caller books the assigned
      expert only).
    """
    current = now()
    live = repository.live_assignment(session, req.id, for_update=True)
    if live is not None:
        if live.expert_id != expert_id:
            raise ValueError("the request is assigned to another expert")
        if live.status == AssignmentStatus.offered:
            live.status = AssignmentStatus.accepted
            live.responded_at = current
            intake.add_history(
                session,
                req,
                action="assignment_accepted",
                actor=actor,
                details={"assignment_id": live.id, "expert_id": str(expert_id), "via": "booking"},
                at=current,
            )
            _notify(session, expert_id, "assignment_booked", req, live, current)
            sendouts.expert_assigned(session, req, expert_id)  # documents now
        return live
    if not repository.take_capacity(session, expert_id, current):
        return None
    assignment = Assignment(
        request_id=req.id,
        expert_id=expert_id,
        status=AssignmentStatus.accepted,
        offered_at=current,
        respond_by=current,
        responded_at=current,
        reason="booked_from_pool",
    )
    session.add(assignment)
    session.flush()  # the partial unique index refuses a second live assignment here
    req.assigned_expert_id = expert_id
    intake.add_history(
        session,
        req,
        action="assignment_accepted",
        actor=actor,
        details={
            "assignment_id": assignment.id,
            "expert_id": str(expert_id),
            "via": "pool_booking",
        },
        at=current,
    )
    _notify(session, expert_id, "assignment_booked", req, assignment, current)
    sendouts.expert_assigned(session, req, expert_id)  # documents now
    log.info("assignment_booked_from_pool", reference=req.reference, assignment_id=assignment.id)
    return assignment
