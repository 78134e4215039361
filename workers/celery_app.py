"""The Celery application: broker from the settings, the beat schedule, and the task modules
(one thin module per domain). Tasks are named ``domain.verb`` and sent by name, so services
never import this package."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

from celery import Celery, signals

from app.core import database
from app.core.logging import configure_logging, request_id_var
from app.core.settings import get_settings
from workers import embedded_broker

TASK_MODULES = [
    "workers.outbox",
    "workers.experts",
    "workers.meetings",
    "workers.inbound",
    "workers.privacy",
    "workers.roster",
    "workers.calendars",
]

settings = get_settings()
app = Celery("asylum-intake", include=TASK_MODULES)
app.conf.update(
    broker_url=settings.resolved_broker_url,
    task_ignore_result=True,
    result_backend=None,
    timezone="UTC",
    enable_utc=True,
    # Tasks are idempotent (outbox rows carry their own state): ack after the work, and
    # re-deliver when a worker dies mid-task.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    beat_schedule={
        "outbox-pump": {
            "task": "outbox.pump",
            "schedule": timedelta(seconds=settings.outbox_poll_seconds),
            "options": {"expires": settings.outbox_poll_seconds * 4},
        },
        "experts-expire-offers": {
            "task": "experts.expire_offers",
            "schedule": timedelta(seconds=settings.offer_sweep_seconds),
            "options": {"expires": settings.offer_sweep_seconds * 2},
        },
        "privacy-retention": {
            "task": "privacy.run_retention",
            "schedule": timedelta(days=1),
            "options": {"expires": 6 * 3600},
        },
        "meetings-mark-no-shows": {
            "task": "meetings.mark_no_shows",
            "schedule": timedelta(minutes=5),
            "options": {"expires": 600},
        },
        # Experts' own calendars: each is read when due (every few minutes, longer when failing).
        "calendars-refresh-due": {
            "task": "calendars.refresh_due",
            "schedule": timedelta(minutes=1),
            "options": {"expires": 120},
        },
        # Gaps in the duty roster: checked hourly, e-mailed at most once a day.
        "roster-check-gaps": {
            "task": "roster.check_gaps",
            "schedule": timedelta(hours=1),
            "options": {"expires": 1800},
        },
    },
    beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
)
if settings.imap_host:
    # Inbound e-mail: poll the mailbox only when one is configured.
    app.conf.beat_schedule["inbound-poll-imap"] = {
        "task": "inbound.poll_imap",
        "schedule": timedelta(seconds=settings.imap_poll_seconds),
        "options": {"expires": settings.imap_poll_seconds * 2},
    }
if settings.resolved_broker_url.startswith("sqla+"):
    # The embedded broker: its worker stops waiting for messages when asked to stop.
    embedded_broker.install()
if settings.resolved_broker_url.startswith(("redis://", "rediss://")):
    # Longer than any task may run, or Redis re-delivers a running task.
    app.conf.broker_transport_options = {"visibility_timeout": 3600}


def without_task_modules(celery: Celery) -> None:
    """For beat: it sends its schedule's tasks by name (none has options of its own to apply
    when sent), so it need not import the task modules, and with them most of the app (about
    0.4 s of CPU at each start). Celery's beat would import them at start-up otherwise."""
    celery.conf.include = []
    celery.conf.imports = []


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(settings.resolved_log_format, settings.log_level)


@signals.worker_process_init.connect
def _fresh_engine_after_fork(**_: Any) -> None:
    # A connection pool must never be shared across a fork.
    database.set_engine(None)


@signals.task_prerun.connect
def _bind_correlation(task: Any = None, **_: Any) -> None:
    rid = getattr(task.request, "correlation_id", None) if task is not None else None
    headers = getattr(task.request, "headers", None) or {}
    request_id_var.set(headers.get("correlation_id") or rid)


@signals.task_postrun.connect
def _unbind_correlation(**_: Any) -> None:
    request_id_var.set(None)


# Heartbeats of this worker or beat process, read by the API (/readyz, /metrics, the watchdog).
import workers.heartbeat  # noqa: E402, F401
