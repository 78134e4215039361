"""Errors raised by meeting providers.

Retrying decides by type: ``PermanentFailure`` subclasses dead-letter the outbox row at once;
everything else is retried by the outbox with backoff. ``ZoomRateLimited`` carries
``retry_after_seconds`` so a handler (or the outbox) can schedule the next attempt no earlier.

Messages never echo Zoom's own text for user errors (it contains the host's e-mail address);
they hold the status, Zoom's numeric code and our own words.
"""

from __future__ import annotations

from app.core.errors import AppError
from app.outbox.registry import PermanentFailure, RetryLater


class MeetingError(Exception):
    """Base of every meeting provider error."""


class MeetingConfigError(MeetingError, PermanentFailure):
    """The provider cannot work as configured (e.g. no link for the link provider)."""


class ZoomError(MeetingError):
    """Base of Zoom errors."""


class ZoomAuthError(ZoomError, PermanentFailure):
    """Zoom refused the app's credentials (token call answered 400/401). Fix the settings."""

    def __init__(self, message: str, *, status: int | None = None, error: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class ZoomRequestError(ZoomError, PermanentFailure):
    """Zoom refused the request itself (4xx with ``{code, message}``): retrying cannot help."""

    def __init__(self, message: str, *, status: int, code: int | None) -> None:
        super().__init__(f"{message} (HTTP {status}, Zoom code {code})")
        self.status = status
        self.code = code


class ZoomUserNotFound(ZoomRequestError):
    """Code 1001: the host is not a user of the Zoom account."""


class ZoomMeetingNotFound(ZoomRequestError):
    """Code 3001: the meeting does not exist (any more)."""


class ZoomUnavailable(ZoomError):
    """5xx, timeout or connection failure: retry later (the outbox does, with backoff)."""


class ZoomRateLimited(ZoomUnavailable, RetryLater):
    """429 that was not worth waiting for inside the call. Retry after ``retry_after_seconds``.

    ``daily_limit`` is True for the per-user daily create/update cap, which resets at 00:00 UTC:
    the outbox waits for it without using up an attempt (a quota, not a fault).
    """

    def __init__(self, message: str, *, retry_after_seconds: float, daily_limit: bool) -> None:
        Exception.__init__(self, f"{message} (retry after {retry_after_seconds:.0f}s)")
        self.retry_after_seconds = retry_after_seconds
        self.counts_as_attempt = not daily_limit
        self.daily_limit = daily_limit


# Webhooks (answered to Zoom by the future POST /webhooks/zoom route) ---------------------------
class InvalidZoomWebhook(AppError):
    """Signature missing, wrong, or its timestamp too old or in the future."""

    status_code = 401
    code = "invalid_webhook_signature"


class MalformedZoomEvent(AppError):
    """The body is not a Zoom event (no JSON object, no event name, unreadable meeting id)."""

    status_code = 400
    code = "malformed_webhook_event"
