"""Errors of the WhatsApp channel.

Webhook and API-facing errors are ``AppError``s (one error shape). Cloud API failures met by the
outbox handlers decide retrying by type: ``WhatsAppRateLimited`` and ``WhatsAppUnavailable`` are
retried (the first no sooner than its wait), ``WhatsAppRefused`` is final for that message.
"""

from __future__ import annotations

from app.core.errors import AppError, Conflict, FieldProblem, Forbidden, Unprocessable
from app.outbox.registry import RetryLater


class InvalidWhatsAppSignature(AppError):
    status_code = 401
    code = "invalid_signature"


class VerificationRefused(Forbidden):
    code = "verification_refused"


class MalformedWhatsAppEvent(AppError):
    status_code = 400
    code = "malformed_event"


class WhatsAppNotConfigured(Conflict):
    code = "whatsapp_not_configured"

    def __init__(self) -> None:
        super().__init__(
            "WhatsApp is not connected (INTAKE_WHATSAPP_ACCESS_TOKEN and "
            "INTAKE_WHATSAPP_PHONE_NUMBER_ID)."
        )


class InvalidWhatsAppReply(Unprocessable):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"Please correct: {field}: {message}",
            fields=[FieldProblem(field=field, message=message)],
        )


class WindowClosed(Conflict):
    """Free text outside the 24-hour customer-service window: only a template may go."""

    code = "whatsapp_window_closed"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"Free text cannot be sent: {reason} Choose an approved template instead.",
            fields=[FieldProblem(field="text", message=reason)],
        )


class NoWhatsAppNumber(Conflict):
    code = "no_whatsapp_number"

    def __init__(self) -> None:
        super().__init__("This request has no WhatsApp number to write to.")


# Cloud API outcomes (outbox side) ----------------------------------------------------------


class WhatsAppApiError(Exception):
    def __init__(self, message: str, *, status: int, code: int | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class WhatsAppRefused(WhatsAppApiError):
    """The API refused this message itself (4xx other than rate limits): retrying cannot help."""


class WhatsAppUnavailable(WhatsAppApiError):
    """5xx, a timeout, or no answer: try again later (the outbox backs off)."""


class WhatsAppRateLimited(RetryLater):
    """429 / ``130429`` (throughput), ``131056`` (pair rate), ``80007``, ``4``: come back later."""

    def __init__(self, message: str, *, retry_after_seconds: float, code: int | None) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)
        self.code = code
