from __future__ import annotations

from app.core.errors import FieldProblem, Unprocessable


class InvalidRange(Unprocessable):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"Please correct: {field}: {message}",
            fields=[FieldProblem(field=field, message=message)],
        )
