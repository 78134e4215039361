"""Errors of saved replies (one error shape, app/core/handlers.py)."""

from __future__ import annotations

from app.core.errors import FieldProblem, NotFound, Unprocessable


class SavedReplyNotFound(NotFound):
    code = "saved_reply_not_found"

    def __init__(self) -> None:
        super().__init__("There is no saved reply with this id.")


class InvalidSavedReply(Unprocessable):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"Please correct: {field}: {message}",
            fields=[FieldProblem(field=field, message=message)],
        )
