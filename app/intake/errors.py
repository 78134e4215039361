from __future__ import annotations

from app.core.errors import Conflict, FieldProblem, NotFound, Unprocessable


class RequestNotFound(NotFound):
    """Also the answer to a wrong or expired link token: never 403, so a token holder learns
    nothing about other requests."""

    code = "request_not_found"

    def __init__(self) -> None:
        super().__init__(
            "No request with this reference and link. Ask for your link again with your "
            "reference and e-mail address."
        )


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        message = "was used before with a different form; use a new key for a new request"
        super().__init__(
            f"Idempotency-Key {message}.",
            fields=[FieldProblem(field="Idempotency-Key", message=message)],
        )


class IdempotencyKeyInvalid(Unprocessable):
    code = "validation_error"

    def __init__(self) -> None:
        message = "must be 1 to 200 visible ASCII characters"
        super().__init__(
            f"Idempotency-Key {message}.",
            fields=[FieldProblem(field="Idempotency-Key", message=message)],
        )


class RequestErased(Conflict):
    code = "request_erased"
