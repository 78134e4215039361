"""Holding a chosen time while its requester confirms, then booking it.

Choosing a free time does not book it: ``hold`` keeps it for that request for
``INTAKE_SLOT_HOLD_MINUTES`` (``slot_holds``), ``confirm`` books it (or moves the booked
consultation there), ``release`` lets it go. While a hold is live (``now < expires_at``,
``app.scheduling.slots.hold_live``) the slot engine treats it as a booking of its expert for
every other request, so nobody else is offered the time or can book or hold it; the request's
own hold hides nothing from it. An expired hold is simply ignored, and deleted lazily: by the
next hold of the same expert (under that expert's lock) or by its own request.

Never two holds of one time: a hold, like a booking, locks the expert's availability row
(``FOR UPDATE``; SQLite: ``BEGIN IMMEDIATE``) before the engine checks the time, and
``uq_slot_holds_expert_id`` (expert, start) refuses a second row whatever path writes it.
Booking on confirm goes through ``book``/``reschedule`` with their own checks and PostgreSQL's
exclusion constraint, so two people never confirm the same time.
"""

from __future__ import annotations

import datetime as dt
import uuid

import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.models import Consultation, ExpertProfile, IntakeRequest, SlotHold
from app.scheduling import slots
from app.scheduling.errors import HoldExpired, HoldNotFound
from app.scheduling.service.booking import _check_status, book
from app.scheduling.service.changes import reschedule
from app.scheduling.service.common import (
    _AROUND,
    Caller,
    _as_utc,
    _engine_args,
    _load_experts,
    _lock_request,
    _taken,
    _target,
    alternatives,
    booked_consultation,
)

log = structlog.get_logger(__name__)


def hold_minutes() -> int:
    return get_settings().slot_hold_minutes


def hold(
    session: Session,
    req: IntakeRequest,
    *,
    start: dt.datetime,
    zone: str | None,
    caller: Caller,
) -> SlotHold:
    """Hold ``start`` (one of the request's offered slots) for ``req`` until it is confirmed,
    released, replaced by another choice or expired. Refused like a booking (``SlotTaken``
    with the reason and alternatives) when the time is not free for this request."""
    req = _lock_request(session, req)
    current = booked_consultation(session, req)
    if current is None:
        _check_status(req)
    zone = zone or req.timezone
    at = now()
    start = _as_utc(start)
    if current is not None:  # a new time for the booked consultation: the same expert
        ids, pool = [current.expert_id], False
    else:
        ids, pool = _target(session, req)
    experts = _load_experts(
        session,
        ids,
        start - _AROUND,
        start + _AROUND,
        lock=True,
        skip_consultation=current.id if current is not None else None,
        hold_of=req.id,
        now_utc=at,
    )
    by_id = {e.row.expert_id: e for e in experts}
    # Under the experts' locks: their expired holds and this request's earlier choice go.
    session.execute(
        delete(SlotHold).where(
            (SlotHold.request_id == req.id)
            | (SlotHold.expert_id.in_(list(by_id)) & (SlotHold.expires_at <= at))
        )
    )
    if not experts:
        raise _taken(session, req, zone, "not_offered", expert_ids=ids)
    if not pool:
        e = experts[0]
        check = slots.is_slot_free(
            *_engine_args(e),
            now_utc=at,
            expert_id=e.row.expert_id,
            start_utc=start,
            horizon_timezone=zone,
            busy=e.busy,
        )
        if not check:
            assert check.reason is not None
            raise _taken(session, req, zone, check.reason.value, expert_ids=ids)
        chosen = e
    else:
        pool_check = slots.check_pool_slot(
            [e.member() for e in experts], now_utc=at, start_utc=start, horizon_timezone=zone
        )
        if not pool_check:
            reasons = set(pool_check.reasons.values())
            reason = reasons.pop().value if len(reasons) == 1 else "no_expert"
            raise _taken(session, req, zone, reason)
        chosen = by_id[uuid.UUID(str(pool_check.expert_ids[0]))]
    row = SlotHold(
        request_id=req.id,
        expert_id=chosen.row.expert_id,
        start_at=start,
        end_at=start + dt.timedelta(minutes=chosen.row.slot_minutes),
        timezone=zone,
        expires_at=at + dt.timedelta(minutes=hold_minutes()),
        created_at=at,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        if "uq_slot_holds" not in str(exc.orig):
            raise
        raise _taken(session, req, zone, "conflict", expert_ids=ids) from None
    log.info("slot_held", reference=req.reference, hold_id=str(row.id), actor=caller.actor)
    return row


def current_hold(session: Session, req: IntakeRequest) -> SlotHold | None:
    """The request's live hold, or None (none, or expired)."""
    row = session.scalar(select(SlotHold).where(SlotHold.request_id == req.id))
    if row is None or not slots.hold_live(row.expires_at, now()):
        return None
    return row


def expert_name(session: Session, row: SlotHold) -> str:
    profile = session.get(ExpertProfile, row.expert_id)
    return profile.public_name if profile is not None else ""


def confirm(
    session: Session, req: IntakeRequest, *, hold_id: uuid.UUID | None, caller: Caller
) -> Consultation:
    """Book the held time (or move the booked consultation there). Refused with
    ``HoldNotFound`` when no such hold exists and ``HoldExpired`` once it has expired (its time
    is then offered to everyone again, this requester too, if nobody took it)."""
    req = _lock_request(session, req)
    row = session.scalar(
        select(SlotHold)
        .where(SlotHold.request_id == req.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is None or (hold_id is not None and row.id != hold_id):
        raise HoldNotFound(
            "No time is held for you: choose a time first.",
            details={"alternatives": alternatives(session, req, req.timezone)},
        )
    at = now()
    if not slots.hold_live(row.expires_at, at):
        raise HoldExpired(
            row.start_at,
            hold_minutes(),
            alternatives(session, req, row.timezone),
            still_free=_still_free(session, req, row, at),
        )
    start, zone, expert_id = row.start_at, row.timezone, row.expert_id
    session.delete(row)
    session.flush()
    if booked_consultation(session, req) is not None:
        c = reschedule(session, req, start=start, zone=zone, caller=caller)
    else:
        c = book(session, req, start=start, zone=zone, caller=caller, only_expert=expert_id)
    log.info("hold_confirmed", reference=req.reference, consultation_id=str(c.id))
    return c


def _still_free(session: Session, req: IntakeRequest, row: SlotHold, at: dt.datetime) -> bool:
    """Whether an expired hold's time is free for its request now (offered to it again)."""
    booked = booked_consultation(session, req)
    experts = _load_experts(
        session,
        [row.expert_id],
        row.start_at - _AROUND,
        row.start_at + _AROUND,
        skip_consultation=booked.id if booked is not None else None,
        hold_of=req.id,
        now_utc=at,
    )
    if not experts:
        return False
    e = experts[0]
    check = slots.is_slot_free(
        *_engine_args(e),
        now_utc=at,
        expert_id=e.row.expert_id,
        start_utc=row.start_at,
        horizon_timezone=row.timezone,
        busy=e.busy,
    )
    return bool(check)


def release(session: Session, req: IntakeRequest) -> bool:
    """Let the request's held time go (True when there was one)."""
    result = session.execute(delete(SlotHold).where(SlotHold.request_id == req.id))
    session.flush()
    return bool(getattr(result, "rowcount", 0))
