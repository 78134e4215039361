"""Which function delivers each kind of outbox message.

Each domain registers its handlers in its own ``handlers.py``; the list below is the one place
that names them, so the worker loads every handler and a reader finds them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from sqlalchemy.orm import Session

from app.models import OutboxMessage

Handler = Callable[[Session, OutboxMessage], None]

HANDLER_MODULES = [
    "app.accounts.handlers",
    "app.calendars.handlers",
    "app.cases.handlers",
    "app.intake.handlers",
    "app.routing.handlers",
    "app.flows.handlers",
    "app.inbound.handlers",
    "app.meetings.handlers",
    "app.notifications.handlers",
    "app.outbox.handlers",
    "app.scheduling.handlers",
    "app.roster.handlers",
    "app.sendouts.handlers",
    "app.sla.handlers",
    "app.whatsapp.handlers",
]

_handlers: dict[str, Handler] = {}
_loaded = False


class PermanentFailure(Exception):
    """Retrying cannot help (e.g. the target was erased): dead-letter at once."""


class RetryLater(Exception):
    """The other side said when to come back (e.g. a rate limit with Retry-After).

    The row is due again no sooner than ``retry_after_seconds``; with ``counts_as_attempt``
    False (a quota that resets, not a fault) the wait does not use up an attempt.
    """

    def __init__(
        self, message: str, *, retry_after_seconds: float, counts_as_attempt: bool = True
    ) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.counts_as_attempt = counts_as_attempt


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if kind in _handlers and _handlers[kind] is not fn:
            raise RuntimeError(f"two handlers for outbox kind {kind!r}")
        _handlers[kind] = fn
        return fn

    return register


def load_handlers() -> None:
    """Import every handler module (once). The worker calls it at start-up, before its pool
    forks, so no pool process pays for the imports on its first message."""
    global _loaded
    if not _loaded:
        for module in HANDLER_MODULES:
            importlib.import_module(module)
        _loaded = True


def get_handler(kind: str) -> Handler:
    load_handlers()
    try:
        return _handlers[kind]
    except KeyError:
        raise PermanentFailure(f"no handler for outbox kind {kind!r}") from None
