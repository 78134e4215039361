"""Run the outbox in-process (the same service functions the worker task calls)."""

from __future__ import annotations

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
