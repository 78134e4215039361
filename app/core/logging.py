"""Structured logs with a request id on every line, shared by the API and the worker.

The API binds the id per request; Celery carries it in a message header (see
``workers/celery_app.py``) so worker lines about work a request caused carry the same id.
Never log personal data: log ids and references only.
"""

from __future__ import annotations

import logging
import sys
import uuid
from contextvars import ContextVar

import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def _add_request_id(
    _logger: object, _name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    rid = request_id_var.get()
    if rid and "request_id" not in event_dict:
        event_dict["request_id"] = rid
    return event_dict


def configure_logging(fmt: str = "console", level: str = "INFO") -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # JSON needs the traceback as text (the console renderer formats its own).
                *([structlog.processors.format_exc_info] if fmt == "json" else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Python warnings (e.g. Celery's) become log lines in the same format.
    logging.captureWarnings(True)
    # Access logs would print URLs, which may carry references; our middleware logs instead.
    logging.getLogger("uvicorn.access").disabled = True
    # Celery logs every received/succeeded task at INFO; the outbox logs what matters.
    for noisy in (
        "sqlalchemy.engine",
        "httpx",
        "aiosmtpd",
        "celery.worker.strategy",
        "celery.app.trace",
        "celery.beat",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
