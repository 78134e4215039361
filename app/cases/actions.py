"""Staff actions on a case that delegate to the owning domain: status moves (the one state
machine, app/intake/status.py), assignment (routing's reassign), logging a phone or WhatsApp
contact (the first-response clock) and sending the sample report again (sendouts' choice of
report, a new outbox row of its own)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from app.cases.errors import CaseErased, NothingToSend
from app.core.time import now
from app.experts import assignments
from app.intake import service as intake
from app.intake.service import add_history
from app.models import (
    Assignment,
    ContactChannel,
    IntakeRequest,
    OutboxMessage,
    RequestContact,
    RequestStatus,
    User,
)
from app.outbox import service as outbox
from app.sendouts import service as sendouts
from app.sla import service as sla

RESEND_SAMPLE_KIND = "cases.sample_report"


def actor(user: User) -> str:
    return f"user:{user.id}"


def change_status(
    session: Session, req: IntakeRequest, user: User, target: RequestStatus
) -> IntakeRequest:
    """Move the request along the state machine; 409 naming the allowed moves otherwise."""
    return intake.change_status(session, req, target, actor=actor(user))


def assign(
    session: Session,
    req: IntakeRequest,
    user: User,
    expert_id: uuid.UUID | None,
    reason: str | None = None,
) -> Assignment | None:
    """Offer the request to ``expert_id`` (or, with None, to the next candidate), taking it from
    its current expert if any: routing's reassign (a booked consultation follows the request)."""
    return assignments.reassign(session, req, by=user, expert_id=expert_id, reason=reason)


def log_contact(
    session: Session,
    req: IntakeRequest,
    user: User,
    channel: ContactChannel,
    contacted_at: dt.datetime | None = None,
    note: str | None = None,
) -> RequestContact:
    """Record a phone, WhatsApp or e-mail contact made outside the service (the first one stops
    the one-hour clock); ``contacted_at`` defaults to now."""
    return sla.record_contact(
        session,
        req,
        channel=channel,
        contacted_at=contacted_at or now(),
        note=note,
        by_user=user,
    )


def resend_sample_report(session: Session, req: IntakeRequest, user: User) -> OutboxMessage:
    """Send the best-matching sample report again, now. The first delivery of the automatic
    documents e-mail turns later automatic rows into no-ops (``documents_sent``), so a resend is
    its own outbox kind, without a dedup key: each request from staff sends once more.
    409 when there is no sample report to send or the request was erased."""
    if intake.reveal_pii(req) is None:
        raise CaseErased()
    doc = sendouts.best_sample_report(session, req)
    if doc is None:
        raise NothingToSend(
            "There is no sample report for this country, its region, or a general one: "
            "upload one first (/api/v1/admin/sample-reports)."
        )
    row = outbox.enqueue(session, RESEND_SAMPLE_KIND, {"request_id": str(req.id)})
    if row is None:  # pragma: no cover - no dedup key
        raise RuntimeError("not queued")
    add_history(
        session,
        req,
        actor=actor(user),
        action="sample_report_resend_queued",
        details={"outbox_id": row.id, "document_id": str(doc.id)},
    )
    session.flush()
    return row
