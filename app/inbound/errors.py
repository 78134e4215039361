from __future__ import annotations

from app.core.errors import Conflict, FieldProblem, NotAuthenticated, NotFound, Unprocessable


class InvalidMessage(Unprocessable):
    """The body is not an RFC 822 message this service can take (422 naming ``body``)."""

    code = "invalid_message"

    def __init__(self, message: str) -> None:
        super().__init__(
            f"The body is not an e-mail message: {message}",
            fields=[FieldProblem(field="body", message=message)],
        )


class WebhookUnauthorized(NotAuthenticated):
    def __init__(self) -> None:
        super().__init__("A valid X-Inbound-Secret header is required.")


class InvalidTriage(Unprocessable):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"Please correct: {field}: {message}",
            fields=[FieldProblem(field=field, message=message)],
        )


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"


class InvalidSetAsideParameter(Unprocessable):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"Please correct: {field}: {message}",
            fields=[FieldProblem(field=field, message=message)],
        )


class SetAsideNotFound(NotFound):
    code = "set_aside_not_found"

    def __init__(self) -> None:
        super().__init__("No such message set aside (it may have passed its retention period).")


class SetAsideNotOpenable(Conflict):
    """Opened already, our own mail, unreadable, or too large to have been kept."""

    code = "set_aside_not_openable"
