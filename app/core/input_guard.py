"""The guard before every endpoint (installed by ``app.core.handlers.install``): a control
character in any path or query value, or NUL in a string of the route's JSON or form body, is a
422 naming the parameter. The bounded types themselves are in ``app.core.validation``."""

from __future__ import annotations

from fastapi import Request, params

from app.core.validation import CONTROL, NO_CONTROL_MESSAGE, NUL_MESSAGE, field_error

# NUL inside a JSON string is always escaped so (JSON allows no raw control character).
_JSON_NUL = b"\\u0000"


def _nul_at(value: object, at: str) -> str | None:
    """The dotted path of the first string with a NUL in parsed JSON (keys count too)."""
    if isinstance(value, str):
        return at if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{at}.{key}" if at else str(key)
            if "\x00" in str(key):
                return here.encode("unicode_escape").decode()
            found = _nul_at(item, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_at(item, f"{at}.{i}" if at else str(i))
            if found is not None:
                return found
    return None


async def _reject_nul_in_body(request: Request) -> None:
    """Only a body the route itself declares, which FastAPI has read and parsed before any
    dependency runs: nothing more is read, however large the body sent to another route."""
    route = request.scope.get("route")
    body_field = getattr(route, "body_field", None)
    if body_field is None:
        return
    if isinstance(body_field.field_info, params.Form):
        form = await request.form()  # parsed already: this is Starlette's cached copy
        for name, value in form.multi_items():
            if isinstance(value, str) and "\x00" in value:
                raise field_error(name, NUL_MESSAGE)
        return
    body = await request.body()  # cached
    if _JSON_NUL not in body:
        return
    try:
        parsed = await request.json()  # cached
    except ValueError:
        return
    at = _nul_at(parsed, "")
    if at is not None:
        raise field_error(at or "body", NUL_MESSAGE)


async def reject_control_characters(request: Request) -> None:
    """Before every endpoint (on the event loop: string checks only, no I/O): a control
    character in any path or query value, or NUL in a string of the route's JSON or form body
    (PostgreSQL cannot store it), is a 422 naming the parameter, whether the route declares it
    or reads the query itself."""
    values: list[tuple[str, object]] = [*request.path_params.items()]
    values += request.query_params.multi_items()
    for name, value in values:
        if isinstance(value, str) and CONTROL.search(value):
            raise field_error(name, NO_CONTROL_MESSAGE)
        if CONTROL.search(name):
            raise field_error(name.encode("unicode_escape").decode(), NO_CONTROL_MESSAGE)
    await _reject_nul_in_body(request)
