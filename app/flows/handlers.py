"""The outbox handlers that run flows in the worker: the submitted flow, and the consultation
reminder (the requester's on their preferred channel)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.flows import request as flows
from app.intake.service import SUBMITTED_KIND
from app.models import OutboxMessage
from app.outbox.registry import handler
from app.sendouts.service import REMINDER_KIND


@handler(SUBMITTED_KIND)
def process_submitted(session: Session, row: OutboxMessage) -> None:
    flows.submitted_by_id(session, uuid.UUID(row.params["request_id"]))


@handler(REMINDER_KIND)
def send_consultation_reminder(session: Session, row: OutboxMessage) -> None:
    flows.consultation_reminder(session, row)
