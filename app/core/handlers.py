"""One exception handler per kind of error, all answering the same shape (see errors.py)."""

from __future__ import annotations

import traceback
from typing import Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import AppError, ErrorBody, ErrorResponse, FieldProblem
from app.core.input_guard import reject_control_characters
from app.core.logging import request_id_var

log = structlog.get_logger(__name__)

# Pydantic's wording, rephrased for people filling in a form.
_FRIENDLY = {
    "missing": "is required",
    "extra_forbidden": "is not a field this form knows; remove it",
    "string_too_short": "is too short",
    "string_too_long": "is too long",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_parsing": "must be a whole number",
    "date_from_datetime_parsing": "must be a date like 2026-12-31",
    "date_parsing": "must be a date like 2026-12-31",
    "datetime_parsing": "must be a date and time like 2026-12-31T14:00:00Z",
    "enum": "must be one of",
    "literal_error": "must be one of",
    "uuid_parsing": "must be an id like 3f2a...; this one is malformed",
}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
    if kind in ("enum", "literal_error"):
        expected = (err.get("ctx") or {}).get("expected", "")
        return f"must be one of: {expected}" if expected else msg
    if kind in ("string_too_short", "string_too_long", "too_short", "too_long"):
        return msg[0].lower() + msg[1:]
    if kind in _FRIENDLY:
        return _FRIENDLY[kind]
    return msg[0].lower() + msg[1:] if msg else "is invalid"


def _body(
    code: str,
    message: str,
    fields: list[FieldProblem] | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return ErrorResponse(
        error=ErrorBody(code=code, message=message, fields=fields or [], details=details),
        request_id=request_id_var.get(),
    ).model_dump(mode="json")


async def app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(
        _body(exc.code, exc.message, exc.fields, exc.details),
        status_code=exc.status_code,
        headers=exc.headers or None,
    )


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(_body("malformed_json", "The body is not valid JSON."), status_code=400)
    fields = [FieldProblem(field=_field_name(tuple(e["loc"])), message=_message(e)) for e in errors]
    summary = "; ".join(f"{f.field}: {f.message}" for f in fields[:5])
    return JSONResponse(
        _body("validation_error", f"Please correct: {summary}", fields), status_code=422
    )


async def http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        401: "not_authenticated",
    }
    message = {
        404: "Not found.",
        405: "This method is not allowed here.",
    }.get(exc.status_code, str(exc.detail))
    return JSONResponse(
        _body(codes.get(exc.status_code, "http_error"), message),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def data_error(_request: Request, exc: Exception) -> JSONResponse:
    """The database refused a value (out of its range, a byte it cannot store). The bounded
    parameter types (app/core/validation.py) name the field before this can happen; this is the
    net under them, so a value they missed is the caller's 422, never a 500. The database's
    message is not echoed: it may quote the value."""
    log.warning("database_refused_a_value", where=where(exc))
    return JSONResponse(
        _body("invalid_value", "A value in this request is out of range or not allowed."),
        status_code=422,
    )


def where(exc: BaseException, frames: int = 8) -> list[str]:
    """The innermost stack frames as ``file:line in function``: enough to find the bug, without
    the exception's message or any local value, which could carry personal data."""
    summary = traceback.extract_tb(exc.__traceback__)[-frames:]
    return [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} in {f.name}" for f in summary]


async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    # Never echo the exception, nor log its message: it could carry personal data.
    log.error("unhandled_error", error=type(exc).__name__, where=where(exc))
    return JSONResponse(
        _body("internal_error", "Something went wrong on our side. Quote the request id."),
        status_code=500,
    )


class UnexpectedErrorMiddleware:
    """Answers an unhandled exception with the 500 error shape *inside* the request-context
    middleware, so the body and the ``X-Request-ID`` header carry the request id. (Starlette's
    own handler for ``Exception`` runs in the outermost middleware, after the id is gone; it
    stays installed as a fallback for errors in middleware.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if started:
                raise
            response = await unexpected_error(Request(scope), exc)
            await response(scope, receive, send)


def _documented_error_shape(app: FastAPI) -> None:
    """FastAPI documents a 422 it adds by itself as ``HTTPValidationError`` (``{"detail":
    [...]}``); the validation handler above answers the one error shape instead. Document what
    is answered: every such 422 refers to ``ErrorResponse``, and every operation that takes a
    body documents the 400 a malformed one gets."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        shape = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in shape.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas.setdefault("ErrorResponse", shape)
        error_shape = {
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
        }
        for operation in (op for ops in document.get("paths", {}).values() for op in ops.values()):
            if "requestBody" in operation:
                # A body that is not JSON (or not the form) at all: 400, before any field.
                operation.setdefault("responses", {}).setdefault(
                    "400", {"description": "Malformed request", "content": error_shape}
                )
        if "HTTPValidationError" not in schemas:
            return document
        for operation in (op for ops in document.get("paths", {}).values() for op in ops.values()):
            answer = operation.get("responses", {}).get("422")
            if answer is not None and "HTTPValidationError" in str(answer):
                answer["description"] = "Invalid input; `fields` names each problem"
                answer["content"] = error_shape
        schemas.pop("HTTPValidationError")
        schemas.pop("ValidationError", None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


#: Before every endpoint: the input guard (``app.main`` adds it to each router it includes).
INPUT_GUARDS = [Depends(reject_control_characters)]


def install(app: FastAPI) -> None:
    """Call before adding the request-context middleware (so this one sits inside it) and
    before including routers (so the input guard runs before each of their endpoints)."""
    app.router.dependencies.extend(INPUT_GUARDS)
    _documented_error_shape(app)
    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(DataError, data_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
    app.add_middleware(UnexpectedErrorMiddleware)
