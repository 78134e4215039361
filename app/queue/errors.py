"""Typed errors of the staff queue."""

from __future__ import annotations

from app.core.errors import FieldProblem, Unprocessable


class InvalidQueueParameter(Unprocessable):
    """422 naming the query parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"Please correct: {field}: {message}",
            fields=[FieldProblem(field=field, message=message)],
        )
