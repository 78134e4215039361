from __future__ import annotations

from app.core.errors import Conflict, FieldProblem, NotFound, Unprocessable


class CaseNotFound(NotFound):
    """No such request, or the caller may not see it: the same 404 either way."""

    code = "request_not_found"

    def __init__(self) -> None:
        super().__init__("No such request.")


class InvalidContact(Unprocessable):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"Please correct: {field}: {message}",
            fields=[FieldProblem(field=field, message=message)],
        )


class RequestErased(Conflict):
    code = "request_erased"
