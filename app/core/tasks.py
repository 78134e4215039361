"""Nudge the worker without importing it.

Services never import ``workers/``; they write outbox rows and, after commit, ask for a pump by
task *name*. The nudge is best-effort and runs off the request thread: with the broker down the
request still succeeds, and beat's periodic pump delivers once the broker is back.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import structlog
from celery import Celery

from app.core.logging import request_id_var
from app.core.settings import get_settings

log = structlog.get_logger(__name__)
_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nudge")
_pending_lock = threading.Lock()
_pending: set[str] = set()


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
    """Fire-and-forget; collapses repeated nudges of the same task while one is pending."""
    with _pending_lock:
        if name in _pending:
            return
        _pending.add(name)
    rid = request_id_var.get()

    def _send() -> None:
        token = request_id_var.set(rid)
        try:
            send_task_now(name)
        except Exception as exc:
            log.info("nudge_failed", task=name, error=type(exc).__name__)
        finally:
            request_id_var.reset(token)
            with _pending_lock:
                _pending.discard(name)

    _pool.submit(_send)
