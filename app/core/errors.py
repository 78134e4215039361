"""Typed errors and the one error shape every error response has.

Services raise ``AppError`` subclasses (defined next to the service); one handler turns them,
and FastAPI's validation errors, into::

    {"error": {"code": "...", "message": "...", "fields": [{"field": "...", "message": "..."}]},
     "request_id": "..."}
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field


class FieldProblem(BaseModel):
    field: str = Field(description="dotted path of the input field, e.g. 'email' or 'topics.2'")
    message: str = Field(description="what is wrong, in plain words")


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. 'validation_error'")
    message: str = Field(description="human-readable summary")
    fields: list[FieldProblem] = Field(default_factory=list, description="per-field problems")
    details: dict[str, Any] | None = Field(None, description="extra data for this code")


class ErrorResponse(BaseModel):
    error: ErrorBody
    request_id: str | None = Field(None, description="quote this when reporting a problem")


class AppError(Exception):
    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    # True for failures that must still record something (e.g. a failed sign-in counts
    # towards the lock): the edge commits what was flushed, then answers with the error.
    persist_changes: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        fields: list[FieldProblem] | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []
        self.details = details
        self.headers = headers or {}


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Unprocessable(AppError):
    status_code = 422
    code = "validation_error"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after_seconds: int, **kw: Any) -> None:
        retry = max(1, int(retry_after_seconds))
        super().__init__(
            message, details={"retry_after_seconds": retry}, headers={"Retry-After": str(retry)}
        )


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the error shape for the given statuses."""
    text = {
        400: "Malformed request",
        401: "Not signed in, or the token expired or was revoked",
        403: "Signed in, but the role does not allow this",
        404: "Not found (or not visible to you)",
        409: "Conflicts with the current state",
        413: "Body too large",
        422: "Invalid input; `fields` names each problem",
        429: "Too many attempts; see the Retry-After header",
        503: "A dependency is unavailable",
    }
    return {s: {"model": ErrorResponse, "description": text.get(s, "Error")} for s in statuses}
