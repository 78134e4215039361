"""What happens to a booking when its request is reassigned or ends (steps of
``app/flows/request.py``)."""

from __future__ import annotations

import dataclasses
import uuid

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.experts import bookings as expert_bookings
from app.intake import records as intake
from app.models import (
    Consultation,
    ConsultationStatus,
    IntakeRequest,
    RequestStatus,
    guard_band,
)
from app.outbox import service as outbox
from app.scheduling import slots
from app.scheduling.service.changes import _cancel
from app.scheduling.service.common import (
    _AROUND,
    MEETING_DELETE,
    _engine_args,
    _Expert,
    _load_experts,
    _Overlap,
    _update_or_refuse,
    booked_consultation,
    engine_availability,
)
from app.scheduling.service.meetings import _attach_meeting, _clear_meeting
from app.scheduling.service.notices import send_invites

log = structlog.get_logger(__name__)


def can_take_over(
    session: Session, c: Consultation, expert_id: uuid.UUID
) -> tuple[bool, _Expert | None]:
    """Whether ``expert_id`` is free at the consultation's time: inside their working hours
    (any whole minute; their grid does not matter for a booking that exists), no booking or
    buffer in the way, not away, the day's cap not reached. Minimum notice and the horizon do
    not apply to a booking that already exists. The same engine decides."""
    experts = _load_experts(
        session, [expert_id], c.start_at - _AROUND, c.start_at + _AROUND, lock=True
    )
    if not experts:
        return False, None
    e = experts[0]
    minutes = int((c.end_at - c.start_at).total_seconds() // 60)
    days_ahead = (c.start_at - now()).days + 2
    relaxed = dataclasses.replace(
        engine_availability(e.row, e.overrides),
        slot_minutes=minutes,
        interval_minutes=1,
        min_notice_minutes=0,
        horizon_days=max(e.row.horizon_days, days_ahead),
    )
    check = slots.is_slot_free(
        *_engine_args(e, relaxed),
        now_utc=min(now(), c.start_at),
        expert_id=expert_id,
        start_utc=c.start_at,
        busy=e.busy,
    )
    return bool(check), e


def on_request_reassigned(
    session: Session, req: IntakeRequest, from_expert: uuid.UUID, to_expert: uuid.UUID | None
) -> None:
    """Staff reassigned the request (``app.flows.request.reassign``): the booking moves to the
    new expert if they are free then (same UID, SEQUENCE + 1; the requester is told, the old
    expert gets a cancellation), otherwise it is cancelled and the requester asked to rebook."""
    c = session.scalar(
        select(Consultation)
        .where(
            Consultation.request_id == req.id,
            Consultation.expert_id == from_expert,
            Consultation.status == ConsultationStatus.booked,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if c is None:
        return
    if to_expert is not None and to_expert != from_expert:
        free, e = can_take_over(session, c, to_expert)
        if free and e is not None:
            band = guard_band(e.row.buffer_before_minutes, e.row.buffer_after_minutes)
            c.expert_id = to_expert
            c.blocked_from, c.blocked_until = c.start_at - band, c.end_at + band
            c.ical_sequence += 1
            old = (c.meeting_provider, c.meeting_external_id)
            try:
                _update_or_refuse(session)
            except _Overlap:
                free = False
            if free:
                if old[1] is not None and old[0] not in (None, "link"):
                    outbox.enqueue(
                        session,
                        MEETING_DELETE,
                        {"consultation_id": str(c.id), "provider": old[0], "external_id": old[1]},
                    )
                _clear_meeting(c)
                expert_bookings.pin_for_booking(session, req, to_expert, actor="system")
                intake.add_history(
                    session,
                    req,
                    actor="system",
                    action="consultation_moved",
                    details={
                        "consultation_id": str(c.id),
                        "from_expert_id": str(from_expert),
                        "to_expert_id": str(to_expert),
                        "sequence": c.ical_sequence,
                    },
                )
                _attach_meeting(session, c, e.profile, req, e.row.timezone)
                send_invites(session, c, "moved", experts=[from_expert, to_expert])
                session.flush()
                log.info("consultation_moved", reference=req.reference, consultation_id=str(c.id))
                return
            # Refused by the constraint: the row is as it was; cancel it below.
            session.refresh(c)
    _cancel(
        session,
        req,
        c,
        actor="system",
        reason="expert_reassigned",
        event="cancelled_reassigned",
    )
    session.flush()
    log.info("consultation_cancelled_on_reassign", reference=req.reference)


def on_request_ended(session: Session, req: IntakeRequest) -> None:
    """The request ended (withdrawn, declined, spam, closed; ``app.flows.request.ended``): its
    booked consultation is cancelled with it. Nothing goes to the address of a request marked
    as spam."""
    c = booked_consultation(session, req, lock=True)
    if c is None:
        return
    _cancel(
        session,
        req,
        c,
        actor="system",
        reason=f"request_{req.status.value}",
        event="cancelled",
        tell_requester=req.status != RequestStatus.spam,
    )
    log.info("consultation_cancelled_request_ended", reference=req.reference)
