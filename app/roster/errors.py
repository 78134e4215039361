from __future__ import annotations

from app.core.errors import AppError, Conflict, FieldProblem, NotFound, Unprocessable


class ShiftNotFound(NotFound):
    code = "shift_not_found"


class OverrideNotFound(NotFound):
    code = "override_not_found"


class NoEscalation(NotFound):
    """The case has no escalation (or the caller may not see the case)."""

    code = "escalation_not_found"


class AlreadyAcknowledged(Conflict):
    code = "escalation_already_acknowledged"


class InvalidAckLink(AppError):
    """A wrong, tampered or expired acknowledgement link: 404, as if it did not exist."""

    status_code = 404
    code = "ack_link_not_found"


class InvalidRosterEntry(Unprocessable):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"Please correct: {field}: {message}",
            fields=[FieldProblem(field=field, message=message)],
        )
