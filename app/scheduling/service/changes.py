"""Rescheduling and cancelling a booked consultation."""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.intake import records
from app.intake import service as intake
from app.models import (
    Consultation,
    ConsultationStatus,
    IntakeRequest,
    RequestStatus,
    User,
    guard_band,
)
from app.outbox import service as outbox
from app.scheduling import slots
from app.scheduling.errors import (
    ConsultationNotFound,
)
from app.scheduling.service.common import (
    _AROUND,
    MEETING_UPDATE,
    Caller,
    Event,
    _as_utc,
    _engine_args,
    _load_experts,
    _lock_request,
    _Overlap,
    _taken,
    _update_or_refuse,
    booked_consultation,
)
from app.scheduling.service.meetings import _drop_meeting
from app.scheduling.service.notices import send_invites

log = structlog.get_logger(__name__)


def _own_consultation(
    session: Session, req: IntakeRequest, caller: Caller, *, lock: bool
) -> Consultation:
    c = booked_consultation(session, req, lock=lock)
    if c is None or (
        caller.kind == "expert" and (caller.user is None or c.expert_id != caller.user.id)
    ):
        raise ConsultationNotFound("This request has no booked consultation.")
    return c


def check_expert_access(session: Session, req: IntakeRequest, user: User) -> None:
    """An expert sees a request's consultation only when it is theirs (404 otherwise)."""
    if req.assigned_expert_id == user.id:
        return
    mine = session.scalar(
        select(Consultation.id).where(
            Consultation.request_id == req.id, Consultation.expert_id == user.id
        )
    )
    if mine is None:
        raise ConsultationNotFound("This request has no consultation of yours.")


def reschedule(
    session: Session,
    req: IntakeRequest,
    *,
    start: dt.datetime,
    zone: str | None,
    caller: Caller,
) -> Consultation:
    """Move the booked consultation to another free slot of the same expert: same UID,
    SEQUENCE + 1, the updated invite to both sides."""
    req = _lock_request(session, req)
    c = _own_consultation(session, req, caller, lock=True)
    zone = zone or req.timezone
    start = _as_utc(start)
    if start == c.start_at:
        return c
    experts = _load_experts(
        session,
        [c.expert_id],
        start - _AROUND,
        start + _AROUND,
        lock=True,
        skip_consultation=c.id,
        hold_of=req.id,
    )
    if not experts:
        raise _taken(session, req, zone, "not_offered", expert_ids=[c.expert_id])
    e = experts[0]
    check = slots.is_slot_free(
        *_engine_args(e),
        now_utc=now(),
        expert_id=c.expert_id,
        start_utc=start,
        horizon_timezone=zone,
        busy=e.busy,
    )
    if not check:
        assert check.reason is not None
        raise _taken(
            session,
            req,
            zone,
            check.reason.value,
            expert_ids=[c.expert_id],
            skip_consultation=c.id,
        )
    before = c.start_at
    length = dt.timedelta(minutes=e.row.slot_minutes)
    band = guard_band(e.row.buffer_before_minutes, e.row.buffer_after_minutes)
    c.start_at, c.end_at = start, start + length
    c.blocked_from, c.blocked_until = start - band, start + length + band
    c.ical_sequence += 1
    try:
        _update_or_refuse(session)
    except _Overlap:
        raise _taken(
            session, req, zone, "conflict", expert_ids=[c.expert_id], skip_consultation=c.id
        ) from None
    records.add_history(
        session,
        req,
        actor=caller.actor,
        action="consultation_rescheduled",
        details={
            "consultation_id": str(c.id),
            "from": before.isoformat(),
            "to": c.start_at.isoformat(),
            "sequence": c.ical_sequence,
        },
    )
    if c.meeting_external_id is not None and c.meeting_provider != "link":
        outbox.enqueue(session, MEETING_UPDATE, {"consultation_id": str(c.id)})
    send_invites(session, c, "rescheduled")
    session.flush()
    log.info("consultation_rescheduled", reference=req.reference, consultation_id=str(c.id))
    return c


def _cancel(
    session: Session,
    req: IntakeRequest,
    c: Consultation,
    *,
    actor: str,
    reason: str,
    event: Event,
    tell_requester: bool = True,
) -> None:
    c.status = ConsultationStatus.cancelled
    c.cancelled_at = now()
    c.cancelled_by = actor
    c.cancel_reason = reason
    c.ical_sequence += 1
    session.flush()
    if req.status == RequestStatus.consultation_scheduled:
        intake.change_status(session, req, RequestStatus.in_progress, actor=actor)
    records.add_history(
        session,
        req,
        actor=actor,
        action="consultation_cancelled",
        details={
            "consultation_id": str(c.id),
            "expert_id": str(c.expert_id),
            "reason": reason,
            "sequence": c.ical_sequence,
        },
    )
    _drop_meeting(session, c)
    send_invites(session, c, event, requester=tell_requester)


def cancel(session: Session, req: IntakeRequest, *, caller: Caller) -> Consultation:
    """Cancel the booked consultation: METHOD:CANCEL to both sides; the request goes back to
    ``in_progress``."""
    req = _lock_request(session, req)
    c = _own_consultation(session, req, caller, lock=True)
    _cancel(session, req, c, actor=caller.actor, reason=f"by_{caller.kind}", event="cancelled")
    session.flush()
    log.info("consultation_cancelled", reference=req.reference, consultation_id=str(c.id))
    return c
