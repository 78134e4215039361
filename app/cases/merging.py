"""Merging a duplicate request into another one, and undoing it.

A merged request keeps its data and history but leaves the open queue (app/queue's open clause
excludes ``merged_into_id IS NOT NULL``); it has ended (``ended_at``, unless it had ended before),
so its first-response clock stops without an outcome if the deadline had not passed; its pending
reminders are cancelled (the request it was merged into carries the promise). Unlinking reopens
it (``ended_at`` cleared, or back to its final status's instant) and re-arms the reminders while
nobody has answered. Both requests get a history row. Chains are refused: the
target may not itself be merged, and a request that others were merged into cannot be merged.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.errors import InvalidCaseInput, MergeRefused
from app.core.time import now
from app.intake import records as intake
from app.intake.records import add_history
from app.intake.status import mark_ended, reopened_end
from app.models import IntakeRequest, User
from app.sla import service as sla


def merged_into_reference(session: Session, req: IntakeRequest) -> str | None:
    if req.merged_into_id is None:
        return None
    return session.scalar(
        select(IntakeRequest.reference).where(IntakeRequest.id == req.merged_into_id)
    )


def merged_from_references(session: Session, req: IntakeRequest) -> list[str]:
    return list(
        session.scalars(
            select(IntakeRequest.reference)
            .where(IntakeRequest.merged_into_id == req.id)
            .order_by(IntakeRequest.received_at)
        )
    )


def merge(session: Session, req: IntakeRequest, user: User, into: str) -> IntakeRequest:
    """Merge ``req`` (the duplicate) into the request with reference ``into``; returns that one.
    422 ``into`` when it does not exist or is the same request; 409 for chains."""
    target = intake.get_by_reference(session, into)
    if target is None:
        raise InvalidCaseInput("into", "no request has this reference")
    if target.id == req.id:
        raise InvalidCaseInput("into", "is this request itself")
    if req.merged_into_id is not None:
        raise MergeRefused(
            "This request is already merged into another one; unlink it first.",
            details={"merged_into": merged_into_reference(session, req)},
        )
    if target.merged_into_id is not None:
        raise MergeRefused(
            "That request is itself merged into another one: merge into that one instead.",
            details={"merged_into": merged_into_reference(session, target)},
        )
    if merged_from_references(session, req):
        raise MergeRefused("Other requests were merged into this one: unlink them first.")
    current = now()
    req.merged_into_id = target.id
    mark_ended(req, current)
    cancelled = sla.cancel_pending(session, req)
    by = f"user:{user.id}"
    add_history(
        session,
        req,
        actor=by,
        action="merged_into",
        details={"into": target.reference, "reminders_cancelled": cancelled},
        at=current,
    )
    add_history(
        session, target, actor=by, action="merged_from", details={"from": req.reference}, at=current
    )
    session.flush()
    return target


def unlink(session: Session, req: IntakeRequest, user: User) -> IntakeRequest:
    """Undo a merge: the request is on its own again (and back in the open queue if open).
    409 when it is not merged."""
    target = session.get(IntakeRequest, req.merged_into_id) if req.merged_into_id else None
    if target is None:
        raise MergeRefused("This request is not merged into another one.")
    current = now()
    req.merged_into_id = None
    req.ended_at = reopened_end(session, req)
    # Its own promise again: reminders cancelled by the merge come back while nobody answered.
    rearmed = 0
    if req.first_responded_at is None and req.ended_at is None:
        rearmed = sla.rearm_pending(session, req)
    by = f"user:{user.id}"
    add_history(
        session,
        req,
        actor=by,
        action="merge_undone",
        details={"from": target.reference, "reminders_rearmed": rearmed},
        at=current,
    )
    add_history(
        session,
        target,
        actor=by,
        action="merge_undone",
        details={"unlinked": req.reference},
        at=current,
    )
    session.flush()
    return req
