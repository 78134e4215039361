"""Routing tasks: offers not answered in time go to the next expert."""

from __future__ import annotations

from app.core.database import session_scope
from app.routing import assignments
from workers.celery_app import app


@app.task(name="experts.expire_offers")
def expire_offers() -> int:
    with session_scope() as session:
        return assignments.expire_offers(session)
