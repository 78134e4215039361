"""The page an invite or password-reset e-mail links to: choose a password (works without JS).

The one-time token in the form is itself the proof: a forged cross-site post cannot know it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from app.accounts import service
from app.accounts.errors import InvalidLink
from app.accounts.schemas import SetPasswordIn
from app.core.deps import SessionDep
from app.core.validation import SafeStr
from app.web.pages import SECURITY_HEADERS, templates

router = APIRouter(include_in_schema=False)
TITLE = "Choose your password"


def _page(request: Request, status: int = 200, **context: object) -> HTMLResponse:
    ctx = {"title": TITLE, "token": "", "error": None, "done": False, **context}
    return templates.TemplateResponse(
        request, "set_password.html", ctx, status_code=status, headers=SECURITY_HEADERS
    )


@router.get("/account/set-password", response_class=HTMLResponse)
def set_password_form(request: Request, token: SafeStr = "") -> HTMLResponse:
    return _page(request, token=token)


@router.post("/account/set-password", response_class=HTMLResponse)
def set_password_submit(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> HTMLResponse:
    if password != confirm:
        return _page(request, 422, token=token, error="The two passwords differ.")
    try:
        body = SetPasswordIn(token=token, password=password)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = "Password" if problem["loc"][-1] == "password" else "Link"
        return _page(request, 422, token=token, error=f"{field}: {problem['msg']}.")
    try:
        service.set_password_with_token(session, body.token, body.password)
    except InvalidLink as exc:
        return _page(request, 400, token=token, error=exc.message)
    return _page(request, done=True)
