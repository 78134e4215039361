"""Retention: once a day, erase requests past their retention period (never an open one)."""

from __future__ import annotations

from app.core.database import session_scope
from app.privacy import service
from workers.celery_app import app


@app.task(name="privacy.run_retention")
def run_retention() -> dict[str, int]:
    with session_scope() as session:
        return service.run_retention(session)
