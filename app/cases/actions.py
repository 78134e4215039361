"""Staff actions on a case that delegate to the owning domain: logging a phone or WhatsApp
contact (the first-response clock) and sending the sample report again (sendouts' choice of
report, a new outbox row of its own). Status moves and (re)assignment cross domains: they are
``app.flows.request.change_status`` and ``reassign``, called by the router and the page."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.cases.errors import CaseErased, NothingToSend
from app.core.time import now
from app.intake import records as intake
from app.intake.records import add_history
from app.models import (
    ContactChannel,
    IntakeRequest,
    OutboxMessage,
    RequestContact,
    User,
)
from app.outbox import service as outbox
from app.sendouts import service as sendouts
from app.sla import service as sla

RESEND_SAMPLE_KIND = "cases.sample_report"


def actor(user: User) -> str:
    return f"user:{user.id}"


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
