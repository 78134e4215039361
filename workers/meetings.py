"""Meeting tasks: consultations whose Zoom meeting never started are marked no-show."""

from __future__ import annotations

from app.core.database import session_scope
from app.meetings import events
from workers.celery_app import app


@app.task(name="meetings.mark_no_shows")
def mark_no_shows() -> int:
    with session_scope() as session:
        return events.mark_no_shows(session)
