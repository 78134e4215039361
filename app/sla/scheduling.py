"""Putting a new request's reminders and escalation in the outbox (called by the worker when it
runs a submission's ``intake.submitted`` row, seconds after the submission; every row is due
relative to ``received_at``, so that delay moves nothing).

One row per step, due at ``received_at + minutes``: ``sla.reminder`` for every
``INTAKE_SLA_REMINDER_MINUTES`` entry below the request's target, and ``sla.escalation`` at the
target itself (``sla_minutes``). The rows hold the request id only (like every intake row); who
gets the e-mail is decided when the row comes due (``app/sla/handlers.py``). Each row's
de-duplication key is ``sla:{request_id}:{kind}:{minute}`` (the handler reads the minute from
it), so scheduling twice writes nothing new, and every row of a request shares the prefix
``sla:{request_id}:`` (how a contact cancels them).

This module imports only the outbox and the settings, so intake can call it without a cycle.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.models import IntakeRequest
from app.outbox import service as outbox

REMINDER_KIND = "sla.reminder"
ESCALATION_KIND = "sla.escalation"
#: One e-mail to one person, fanned out from a reminder or escalation row when it comes due.
MAIL_KIND = "sla.mail"
STEP_KINDS = (REMINDER_KIND, ESCALATION_KIND)


def key_prefix(request_id: uuid.UUID) -> str:
    return f"sla:{request_id}:"


def step_key(request_id: uuid.UUID, step: str, minute: int) -> str:
    """``step``: "reminder" or "escalation"."""
    return f"{key_prefix(request_id)}{step}:{minute}"


def minute_of(dedup_key: str | None) -> int:
    """The minute of a step row, from its de-duplication key."""
    if not dedup_key:
        raise ValueError("an SLA step row without its de-duplication key")
    return int(dedup_key.rsplit(":", 1)[1])


def steps(req: IntakeRequest) -> list[outbox.Queued]:
    """The request's reminder rows and its escalation row, not yet written."""
    target = req.sla_minutes
    minutes = sorted({m for m in get_settings().sla_reminder_minutes if 0 < m < target})
    rows = [
        outbox.Queued(
            REMINDER_KIND,
            {"request_id": str(req.id)},
            due_at=req.received_at + dt.timedelta(minutes=minute),
            dedup_key=step_key(req.id, "reminder", minute),
        )
        for minute in minutes
    ]
    rows.append(
        outbox.Queued(
            ESCALATION_KIND,
            {"request_id": str(req.id)},
            due_at=req.received_at + dt.timedelta(minutes=target),
            dedup_key=step_key(req.id, "escalation", target),
        )
    )
    return rows


def schedule(session: Session, req: IntakeRequest) -> int:
    """Queue the request's reminders and escalation (one statement); returns how many rows
    were written (0 when they were already there)."""
    return outbox.enqueue_many(session, steps(req))
