"""Errors of case handling (each with its status; one error shape, app/core/handlers.py)."""

from __future__ import annotations

from app.core.errors import Conflict, FieldProblem, Forbidden, Unprocessable


class StaffOnly(Forbidden):
    """The expert may see this case but not do this (status, assignment, merge, corrections)."""

    code = "staff_only"

    def __init__(self) -> None:
        super().__init__("Only staff can do this on a case.")


class InvalidCaseInput(Unprocessable):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"Please correct: {field}: {message}",
            fields=[FieldProblem(field=field, message=message)],
        )


class CaseErased(Conflict):
    code = "request_erased"

    def __init__(self) -> None:
        super().__init__("This request's personal data was erased: nothing personal can be kept.")


class NothingToSend(Conflict):
    code = "nothing_to_send"


class MergeRefused(Conflict):
    code = "merge_refused"
