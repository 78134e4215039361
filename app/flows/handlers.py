"""The outbox handler that runs the submitted flow in the worker."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.flows import request as flows
from app.intake.service import SUBMITTED_KIND
from app.models import OutboxMessage
from app.outbox.registry import handler


@handler(SUBMITTED_KIND)
def process_submitted(session: Session, row: OutboxMessage) -> None:
    flows.submitted_by_id(session, uuid.UUID(row.params["request_id"]))
