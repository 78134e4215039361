"""Roster tasks: the daily e-mail to admins about gaps in the next 7 days."""

from __future__ import annotations

from app.core.database import session_scope
from app.roster import alerts
from workers.celery_app import app


@app.task(name="roster.check_gaps")
def check_gaps() -> int:
    with session_scope() as session:
        return alerts.queue_gap_notices(session)
