"""Nudge the worker without importing it.

Services never import ``workers/``; they write outbox rows and, after commit, ask for a pump by
task *name*. The nudge is best-effort and runs off the request thread: with the broker down the
request still succeeds, and beat's periodic pump delivers once the broker is back.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import structlog
from celery import Celery

from app.core.logging import request_id_var
from app.core.settings import get_settings

log = structlog.get_logger(__name__)
#: After a nudge is sent, more of the same task within this time are sent once, at its end.
NUDGE_INTERVAL_SECONDS = 0.2
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="nudge")
_pending_lock = threading.Lock()
_pending: set[str] = set()
_again: set[str] = set()


@lru_cache(maxsize=1)
def producer() -> Celery:
    settings = get_settings()
    app = Celery("asylum-intake-producer", broker=settings.resolved_broker_url)
    app.conf.broker_connection_timeout = 2
    app.conf.broker_connection_retry_on_startup = False
    app.conf.task_publish_retry = False
    return app


def send_task_now(name: str, kwargs: dict[str, Any] | None = None) -> None:
    headers = {"correlation_id": request_id_var.get()}
    producer().send_task(name, kwargs=kwargs or {}, headers=headers, retry=False)


def nudge(name: str) -> None:
    """Fire-and-forget; collapses repeated nudges of the same task: while one is being sent,
    and for ``NUDGE_INTERVAL_SECONDS`` after it, further nudges become one more send at the
    end of that interval (under load: a few publishes a second, not one per request)."""
    with _pending_lock:
        if name in _pending:
            _again.add(name)
            return
        _pending.add(name)
    rid = request_id_var.get()

    def _send() -> None:
        token = request_id_var.set(rid)
        try:
            while True:
                try:
                    send_task_now(name)
                except Exception as exc:
                    log.info("nudge_failed", task=name, error=type(exc).__name__)
                time.sleep(NUDGE_INTERVAL_SECONDS)
                with _pending_lock:
                    if name not in _again:
                        _pending.discard(name)
                        return
                    _again.discard(name)
        finally:
            request_id_var.reset(token)

    _pool.submit(_send)
