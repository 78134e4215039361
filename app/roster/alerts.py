"""Alerts the roster raises: a request for a region nobody covers now (to the duty lead, at
submission), and the daily e-mail to admins about gaps in the next 7 days."""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session

from app.core.time import now
from app.intake import records as intake
from app.models import IntakeRequest
from app.outbox import service as outbox
from app.roster import service as roster

log = structlog.get_logger(__name__)

UNCOVERED_KIND = "roster.uncovered_alert"
GAPS_KIND = "roster.gaps_mail"
GAP_DAYS = 7


def alert_if_uncovered(session: Session, req: IntakeRequest) -> int:
    """At submission: when the roster is in use and neither an expert of the request's region
    nor its lead is on duty, e-mail the duty lead (nobody on that level: the supervisors) at
    once. Returns how many people are alerted."""
    if req.region_code is None or roster.roster_is_empty(session):
        return 0
    current = now()
    if roster.region_covered(session, req.region_code, current):
        return 0
    lead = roster.duty_lead(session, current)
    people = [lead] if lead is not None else roster.supervisors(session, current)
    for user in people:
        outbox.enqueue(
            session,
            UNCOVERED_KIND,
            {"request_id": str(req.id), "user_id": str(user.id)},
            dedup_key=f"roster:uncovered:{req.id}:{user.id}",
        )
    intake.add_history(
        session,
        req,
        actor="system",
        action="duty_lead_alerted",
        details={
            "reason": "region_uncovered",
            "region_code": req.region_code,
            "to": "duty_lead" if lead is not None else "supervisors",
            "recipients": len(people),
        },
    )
    log.info("roster_region_uncovered", reference=req.reference, recipients=len(people))
    return len(people)


def queue_gap_notices(session: Session) -> int:
    """Once a day per admin while the next 7 days have a gap (the key names the UTC day; the
    handler looks again at send time). Returns how many rows were written."""
    found = roster.upcoming_gaps(session, GAP_DAYS)
    if not found:
        return 0
    day = now().date().isoformat()
    written = 0
    for admin in roster.all_admins(session):
        row = outbox.enqueue(
            session,
            GAPS_KIND,
            {"user_id": str(admin.id), "day": day},
            dedup_key=f"roster:gaps:{day}:{admin.id}",
        )
        written += row is not None
    log.info("roster_gaps_found", gaps=len(found), notices=written)
    return written
