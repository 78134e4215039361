"""Run the outbox in-process (the same service functions the worker task calls)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.database import commit
from app.outbox import service

TEST_WORKER = "test-worker"


def drain(session: Session, *, limit: int = 100) -> int:
    """Claim and deliver every due row now; returns how many were delivered."""
    ids = service.claim(session, worker=TEST_WORKER, limit=limit)
    for message_id in ids:
        service.deliver(session, message_id, worker=TEST_WORKER)
    commit(session)
    return len(ids)


def process_submissions(session: Session) -> int:
    """Deliver the pending ``intake.submitted`` rows now (routing, reminders, documents' timer),
    as the worker does within seconds of a submission, without sending anything else."""
    from app.intake.service import SUBMITTED_KIND
    from app.models import OutboxMessage, OutboxStatus

    ids = session.scalars(
        select(OutboxMessage.id).where(
            OutboxMessage.kind == SUBMITTED_KIND, OutboxMessage.status == OutboxStatus.pending
        )
    ).all()
    if ids:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(status=OutboxStatus.claimed, claimed_by=TEST_WORKER)
        )
    for message_id in ids:
        service.deliver(session, message_id, worker=TEST_WORKER)
    session.flush()
    return len(ids)
