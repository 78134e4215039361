"""``/staff/sign-in`` and ``/staff/sign-out``: one page for staff, admins and experts.

Password first; an account with the second factor on is then asked for its 6-digit code. Both
steps call ``app.accounts.service.login`` (the API's sign-in: same throttle, lockout and 429 with
``Retry-After``). Between the two steps the e-mail and password wait in the page, sealed
(AES-GCM under the master key, bound to this browser's CSRF cookie, 5 minutes), never in clear.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.accounts import service as accounts
from app.accounts.errors import AccountThrottled, InvalidCredentials, SecondFactorRequired
from app.core import crypto
from app.core.deps import ClientDep, SessionDep
from app.core.errors import TooManyRequests
from app.core.validation import SafeStr
from app.onboarding import service as onboarding
from app.web.auth import (
    CsrfForm,
    PageSession,
    clear_session_cookie,
    home_of,
    page,
    redirect,
    safe_next,
    set_session_cookie,
)
from app.web.getting_started import PATH as GETTING_STARTED
from app.web.i18n import LANGUAGES, N_
from app.web.paths import SIGN_IN_PATH
from app.web.security import CSRF_COOKIE

router = APIRouter(include_in_schema=False)
# The sign-in form is open to anyone: its body is limited like the API's (app/main.py).
LIMITED_ROUTES = {("POST", "/staff/sign-in")}
PENDING_SECONDS = 300
TITLE = N_("Sign in")


def _aad(request: Request) -> bytes:
    return b"staff-sign-in|" + request.cookies.get(CSRF_COOKIE, "").encode()


def seal_pending(request: Request, email: str, password: str) -> str:
    payload = json.dumps({"e": email, "p": password, "x": int(time.time()) + PENDING_SECONDS})
    key_id, blob = crypto.encrypt_with_master(payload.encode(), _aad(request))
    return f"{key_id}.{blob.hex()}"


def open_pending(request: Request, value: str) -> tuple[str, str] | None:
    key_id, _, hexed = value.partition(".")
    try:
        data = json.loads(crypto.decrypt_with_master(key_id, bytes.fromhex(hexed), _aad(request)))
    except (ValueError, InvalidTag, KeyError):
        return None
    if not isinstance(data, dict) or int(data.get("x", 0)) < time.time():
        return None
    return str(data["e"]), str(data["p"])


def _form(request: Request, status: int = 200, **context: Any) -> Response:
    ctx = {
        "title": TITLE,
        "email": "",
        "next": "",
        "pending": "",
        "step": "password",
        "errors": {},
        "languages": LANGUAGES.values(),
        **context,
    }
    return page(request, "staff/sign_in.html", ctx, status=status)


@router.get("/staff/sign-in")
def sign_in_form(request: Request, next: SafeStr = "", signed_out: SafeStr = "") -> Response:
    flash = N_("You are signed out.") if signed_out else None
    return _form(request, next=safe_next(next) or "", flash=flash)


@router.post("/staff/sign-in")
def sign_in(request: Request, session: SessionDep, client: ClientDep, form: CsrfForm) -> Response:
    target = safe_next(str(form.get("next") or "")) or ""
    pending = str(form.get("pending") or "")
    code = str(form.get("totp_code") or "").strip().replace(" ", "") or None
    if pending:
        opened = open_pending(request, pending)
        if opened is None:
            return _form(
                request,
                400,
                next=target,
                errors={"email": N_("The sign-in took too long. Please start again.")},
            )
        email, password = opened
        if not code:
            return _form(
                request,
                422,
                next=target,
                email=email,
                step="code",
                pending=pending,
                errors={"totp_code": N_("Enter the 6-digit code from your authenticator app.")},
            )
    else:
        email = str(form.get("email") or "").strip()[:320]
        password = str(form.get("password") or "")[:256]
        errors = {}
        if not email:
            errors["email"] = N_("Enter your e-mail address.")
        if not password:
            errors["password"] = N_("Enter your password.")
        if errors:
            return _form(request, 422, next=target, email=email, errors=errors)
        code = None
    try:
        result = accounts.login(
            session,
            email=email,
            password=password,
            totp_code=code,
            ip=client.ip,
            user_agent=client.user_agent,
        )
    except SecondFactorRequired:
        return _form(
            request,
            next=target,
            email=email,
            step="code",
            pending=seal_pending(request, email, password),
        )
    except InvalidCredentials as exc:
        if pending:
            return _form(
                request,
                401,
                next=target,
                email=email,
                step="code",
                pending=pending,
                errors={"totp_code": exc.message},
            )
        return _form(request, 401, next=target, email=email, errors={"password": exc.message})
    except AccountThrottled as exc:
        # The password with a valid code still signs in: ask for the code, whichever step.
        return _form(
            request,
            429,
            next=target,
            email=email,
            step="code",
            pending=pending or seal_pending(request, email, password),
            errors={"totp_code": exc.message},
        )
    except TooManyRequests as exc:
        return page(
            request,
            "staff/too_many.html",
            {"title": N_("Please wait"), "message": exc.message},
            status=429,
            headers=exc.headers,
        )
    if not target and onboarding.needs_setup(session, result.user):
        # An admin's first sign-in (and later ones until it is done) opens the checklist.
        target = GETTING_STARTED
    response = redirect(target or home_of(result.user))
    set_session_cookie(response, result.token)
    return response


@router.post("/staff/sign-out")
def sign_out(
    request: Request, session: SessionDep, user_session: PageSession, _form: CsrfForm
) -> Response:
    accounts.logout(session, user_session)
    # The sign-in page that follows stays in the language the person chose.
    lang = str(getattr(request.state.page_user, "language", "en"))
    response = redirect(f"{SIGN_IN_PATH}?signed_out=1&lang={lang}")
    clear_session_cookie(response)
    return response
