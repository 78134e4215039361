"""Booking a consultation at one of the offered slots."""

from __future__ import annotations

import datetime as dt
import uuid

import structlog
from sqlalchemy.orm import Session

from app.core.time import now
from app.experts import bookings as expert_bookings
from app.intake import records
from app.intake import service as intake
from app.models import (
    Consultation,
    ConsultationStatus,
    IntakeRequest,
    RequestStatus,
    guard_band,
)
from app.notifications.mail import stable_message_id
from app.scheduling import slots
from app.scheduling.errors import (
    BookingNotAllowed,
)
from app.scheduling.service.common import (
    _AROUND,
    BOOKABLE,
    Caller,
    _as_utc,
    _engine_args,
    _Expert,
    _insert_or_refuse,
    _load_experts,
    _lock_request,
    _Overlap,
    _taken,
    _target,
)
from app.scheduling.service.meetings import _attach_meeting
from app.scheduling.service.notices import send_invites

log = structlog.get_logger(__name__)


def _check_status(req: IntakeRequest) -> None:
    if req.status in BOOKABLE:
        return
    allowed = [s.value for s in BOOKABLE]
    raise BookingNotAllowed(
        f"A consultation can be booked only while the request is {' or '.join(allowed)}; "
        f"it is {req.status.value}."
        + (
            " Change the booked consultation instead (PATCH)."
            if req.status == RequestStatus.consultation_scheduled
            else ""
        ),
        details={"status": req.status.value, "allowed": allowed},
    )


def book(
    session: Session,
    req: IntakeRequest,
    *,
    start: dt.datetime,
    zone: str | None,
    caller: Caller,
    only_expert: uuid.UUID | None = None,
) -> Consultation:
    """Book the consultation of ``req`` at ``start`` (one of its offered slots); with
    ``only_expert`` (a confirmed hold's) with that expert only."""
    req = _lock_request(session, req)
    _check_status(req)
    zone = zone or req.timezone
    current = now()
    start = _as_utc(start)
    ids, pool = _target(session, req)
    if only_expert is not None:
        if only_expert not in ids:
            raise _taken(session, req, zone, "no_expert")
        ids = [only_expert]
    experts = _load_experts(
        session, ids, start - _AROUND, start + _AROUND, lock=True, hold_of=req.id, now_utc=current
    )
    by_id = {e.row.expert_id: e for e in experts}
    if not pool or only_expert is not None:
        if not experts:
            raise _taken(session, req, zone, "not_offered")
        check = slots.is_slot_free(
            *_engine_args(experts[0]),
            now_utc=current,
            expert_id=experts[0].row.expert_id,
            start_utc=start,
            horizon_timezone=zone,
            busy=experts[0].busy,
        )
        if not check:
            assert check.reason is not None
            raise _taken(session, req, zone, check.reason.value)
        candidates: list[uuid.UUID] = [experts[0].row.expert_id]
    else:
        pool_check = slots.check_pool_slot(
            [e.member() for e in experts], now_utc=current, start_utc=start, horizon_timezone=zone
        )
        if not pool_check:
            reasons = set(pool_check.reasons.values())
            reason = reasons.pop().value if len(reasons) == 1 else "no_expert"
            raise _taken(session, req, zone, reason)
        candidates = [uuid.UUID(str(i)) for i in pool_check.expert_ids]
    chosen: _Expert | None = None
    for expert_id in candidates:
        if expert_bookings.pin_for_booking(session, req, expert_id, actor=caller.actor):
            chosen = by_id[expert_id]
            break
    if chosen is None:
        raise _taken(session, req, zone, "no_expert")
    row = chosen.row
    length = dt.timedelta(minutes=row.slot_minutes)
    band = guard_band(row.buffer_before_minutes, row.buffer_after_minutes)
    consultation_id = uuid.uuid4()
    c = Consultation(
        id=consultation_id,
        request_id=req.id,
        expert_id=row.expert_id,
        start_at=start,
        end_at=start + length,
        blocked_from=start - band,
        blocked_until=start + length + band,
        status=ConsultationStatus.booked,
        ical_uid=f"consultation-{consultation_id}@{_uid_domain()}",
        ical_sequence=0,
        created_by=caller.actor,
    )
    try:
        _insert_or_refuse(session, c)
    except _Overlap:
        raise _taken(session, req, zone, "conflict", expert_ids=[row.expert_id]) from None
    intake.change_status(session, req, RequestStatus.consultation_scheduled, actor=caller.actor)
    records.add_history(
        session,
        req,
        actor=caller.actor,
        action="consultation_booked",
        details={
            "consultation_id": str(c.id),
            "expert_id": str(c.expert_id),
            "start_at": c.start_at.isoformat(),
            "pool": pool,
        },
    )
    _attach_meeting(session, c, chosen.profile, req, row.timezone)
    send_invites(session, c, "booked")
    session.flush()
    log.info("consultation_booked", reference=req.reference, consultation_id=str(c.id))
    return c


def _uid_domain() -> str:
    return stable_message_id("x").split("@", 1)[1].rstrip(">")
