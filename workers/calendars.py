"""Calendar tasks: read every due calendar of the experts (beat sends this every minute).

Per calendar three steps, so that no transaction stays open while the network is slow: claim
and decrypt (one transaction), read and parse (none), record (one transaction). One calendar's
fault never stops the others.
"""

from __future__ import annotations

import structlog

from app.calendars import refresh
from app.core.database import session_scope
from workers.celery_app import app

log = structlog.get_logger(__name__)


def refresh_due(limit: int = 50) -> int:
    """Read the calendars due now; returns how many were read."""
    with session_scope() as session:
        due = refresh.due(session, limit=limit)
    done = 0
    for connection_id in due:
        with session_scope() as session:
            target = refresh.claim(session, connection_id)
        if target is None:
            continue
        outcome = refresh.read(target)
        with session_scope() as session:
            refresh.record(session, connection_id, outcome)
        done += 1
    return done


@app.task(name="calendars.refresh_due")
def refresh_due_task() -> int:
    return refresh_due()
