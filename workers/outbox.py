"""Outbox tasks: claim due rows and deliver them, each in its own transaction."""

from __future__ import annotations

import time

import structlog

from app.core.database import commit, session_scope
from app.core.settings import get_settings
from app.notifications import mail
from app.outbox import registry, service
from workers.celery_app import app, worker_name

log = structlog.get_logger(__name__)

# In the worker's main process, before the pool forks: every pool process starts with the
# handlers (and what they import) loaded, instead of paying for it on its first message.
registry.load_handlers()

# A pump works at most this long, then leaves the rest to the next one (beat sends one
# every few seconds), so one busy worker never hogs the backlog.
PUMP_BUDGET_SECONDS = 20.0


@app.task(name="outbox.pump")
def pump() -> int:
    settings = get_settings()
    me = worker_name()
    deadline = time.monotonic() + PUMP_BUDGET_SECONDS
    delivered = 0
    # One SMTP connection for the whole pump, not one per message; each row still commits on
    # its own, so at-least-once is unchanged.
    with mail.smtp_connection():
        while time.monotonic() < deadline:
            with session_scope() as session:
                ids = service.claim(session, worker=me, limit=settings.outbox_batch_size)
            if not ids:
                break
            if len(ids) == settings.outbox_batch_size:
                # A backlog: invite another worker to pump beside this one.
                pump.apply_async(expires=settings.outbox_poll_seconds * 4)
            # One session (one pooled connection) for the batch; still one transaction per
            # row: each row is committed as soon as it is delivered.
            with session_scope() as session:
                for message_id in ids:
                    service.deliver(session, message_id, worker=me)
                    commit(session)
                    delivered += 1
    return delivered
