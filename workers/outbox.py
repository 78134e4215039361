"""Outbox tasks: claim due rows and deliver them, each in its own transaction."""

from __future__ import annotations

import datetime as dt
import time

import structlog

from app.core.database import commit, session_scope
from app.core.settings import get_settings
from app.core.time import now
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
# Rows are locked from the start of their chunk to its commit: an erasure waiting to cancel
# one of them waits about this long, one slow send at most beyond it.
COMMIT_AT_LEAST_EVERY_SECONDS = 1.0
# The rest of a batch gets a fresh lease once a third of it has passed: a live worker keeps its
# rows through a slow send or two, a killed one's come back one short lease after it died.
RENEW_AFTER_FRACTION = 1 / 3


@app.task(name="outbox.pump")
def pump() -> int:
    settings = get_settings()
    me = worker_name()
    deadline = time.monotonic() + PUMP_BUDGET_SECONDS
    renew_every = dt.timedelta(seconds=settings.outbox_lease_seconds * RENEW_AFTER_FRACTION)
    delivered = 0
    # One SMTP connection for the whole pump, not one per message.
    with mail.smtp_connection():
        while time.monotonic() < deadline:
            # One session (one pooled connection) for the batch, committed every few rows
            # (a worker killed in between sends those again: README, "Delivery guarantee").
            with session_scope() as session:
                leased_at = now()
                rows = service.claim_rows(session, worker=me, limit=settings.outbox_batch_size)
                commit(session)
                if not rows:
                    break
                if len(rows) == settings.outbox_batch_size:
                    # A backlog: invite another worker to pump beside this one.
                    pump.apply_async(expires=settings.outbox_poll_seconds * 4)
                while rows:
                    head, rows = (
                        rows[: settings.outbox_commit_every],
                        rows[settings.outbox_commit_every :],
                    )
                    locked = service.lock_claimed(session, head, worker=me)
                    done = service.deliver_locked(
                        session, locked, budget_seconds=COMMIT_AT_LEAST_EVERY_SECONDS
                    )
                    delivered += len(done)
                    # Rows the time budget cut short go round again; rows no longer ours drop.
                    rows = [row for row in locked if row.id not in done] + rows
                    if rows and now() - leased_at >= renew_every:
                        service.renew_leases(session, rows, worker=me)
                        leased_at = now()
                    commit(session)
    return delivered
