"""What Zoom tells us about meetings, applied to consultations (in the worker), and the
no-show sweep.

- ``record_webhook`` (the request): stores the event under its idempotency key (unique) and
  enqueues ``meetings.webhook_event`` with the row id; a second delivery finds the key taken
  and does nothing.
- ``apply_event`` (the worker): ``meeting.started`` sets ``meeting_started_at``;
  ``meeting.ended`` sets ``meeting_ended_at`` and makes the consultation ``held`` (the request
  ``consultation_held``, with history); ``meeting.deleted`` of a consultation that is still
  booked (so not cancelled by us) sets ``meeting_deleted_at`` and alerts staff.
- ``mark_no_shows`` (beat): Zoom consultations whose end (plus a grace period) has passed
  without a ``meeting.started`` become ``no_show``. The ``link`` provider cannot know whether a
  meeting took place, so its consultations are left alone.
"""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.time import now
from app.intake import records
from app.intake import service as intake
from app.intake.status import can_move
from app.meetings.webhooks import ZoomEvent
from app.models import (
    Consultation,
    ConsultationStatus,
    IntakeRequest,
    RequestStatus,
    ZoomWebhookEvent,
)
from app.outbox import service as outbox

log = structlog.get_logger(__name__)

WEBHOOK_EVENT_KIND = "meetings.webhook_event"
DELETED_ALERT_KIND = "meetings.deleted_alert"
STARTED, ENDED, DELETED = "meeting.started", "meeting.ended", "meeting.deleted"
HANDLED_EVENTS = (STARTED, ENDED, DELETED)
NO_SHOW_GRACE = dt.timedelta(minutes=30)
ACTOR = "zoom"


def record_webhook(session: Session, event: ZoomEvent) -> ZoomWebhookEvent | None:
    """Store the event and queue its processing; None when it was received before."""
    row = ZoomWebhookEvent(
        dedup_key=event.idempotency_key,
        event=event.event[:64],
        meeting_id=event.meeting_id,
        meeting_uuid=event.meeting_uuid[:200] if event.meeting_uuid else None,
        event_ts=event.event_ts,
        received_at=now(),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        log.info("zoom_webhook_duplicate", zoom_event=event.event)
        return None
    if event.event in HANDLED_EVENTS and event.meeting_id is not None:
        outbox.enqueue(session, WEBHOOK_EVENT_KIND, {"event_id": row.id})
    else:
        row.processed_at = row.received_at  # nothing to do for it
    session.flush()
    return row


def _event_time(row: ZoomWebhookEvent) -> dt.datetime:
    if row.event_ts:
        return dt.datetime.fromtimestamp(row.event_ts / 1000, tz=dt.UTC)
    return row.received_at


def apply_event(session: Session, row: ZoomWebhookEvent) -> None:
    """Apply one stored event to its consultation (found by Zoom's 64-bit meeting id)."""
    if row.processed_at is not None:
        return
    row.processed_at = now()
    c = (
        session.scalars(
            select(Consultation)
            .where(Consultation.zoom_meeting_id == row.meeting_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if row.meeting_id is not None
        else None
    )
    if c is None:
        log.info("zoom_webhook_unknown_meeting", zoom_event=row.event)
        return
    at = _event_time(row)
    if row.event == STARTED:
        if c.meeting_started_at is None:
            c.meeting_started_at = at
    elif row.event == ENDED:
        _ended(session, c, at)
    elif row.event == DELETED:
        _deleted(session, c, at)
    session.flush()
    log.info("zoom_webhook_applied", zoom_event=row.event, consultation_id=str(c.id))


def _ended(session: Session, c: Consultation, at: dt.datetime) -> None:
    c.meeting_ended_at = at
    if c.meeting_started_at is None:
        c.meeting_started_at = at  # an ended meeting was started (the start event may be late)
    if c.status not in (ConsultationStatus.booked, ConsultationStatus.no_show):
        return
    before = c.status
    c.status = ConsultationStatus.held
    req = session.get(IntakeRequest, c.request_id, with_for_update=True)
    if req is None:
        return
    if can_move(req.status, RequestStatus.consultation_held):
        intake.change_status(session, req, RequestStatus.consultation_held, actor=ACTOR)
    records.add_history(
        session,
        req,
        actor=ACTOR,
        action="consultation_held",
        details={"consultation_id": str(c.id), "was": before.value},
    )


def _deleted(session: Session, c: Consultation, at: dt.datetime) -> None:
    if c.status != ConsultationStatus.booked or c.meeting_deleted_at is not None:
        return  # cancelled by us (we deleted it), or already known
    c.meeting_deleted_at = at
    outbox.enqueue(session, DELETED_ALERT_KIND, {"consultation_id": str(c.id)})
    log.warning("zoom_meeting_deleted_outside", consultation_id=str(c.id))


def mark_no_shows(session: Session, *, grace: dt.timedelta = NO_SHOW_GRACE) -> int:
    """Booked Zoom consultations that ended (by the clock) ``grace`` ago and never started."""
    rows = session.scalars(
        select(Consultation)
        .where(
            Consultation.status == ConsultationStatus.booked,
            Consultation.meeting_provider == "zoom",
            Consultation.zoom_meeting_id.is_not(None),
            Consultation.meeting_started_at.is_(None),
            Consultation.end_at < now() - grace,
        )
        .order_by(Consultation.end_at)
        .limit(500)
        .with_for_update(skip_locked=True)
    ).all()
    for c in rows:
        c.status = ConsultationStatus.no_show
        req = session.get(IntakeRequest, c.request_id)
        if req is not None:
            records.add_history(
                session,
                req,
                actor="system",
                action="consultation_no_show",
                details={"consultation_id": str(c.id)},
            )
    session.flush()
    if rows:
        log.info("consultations_no_show", count=len(rows))
    return len(rows)
