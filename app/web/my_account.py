"""``/my-account``: every signed-in user's own account (staff, admins, experts).

Change the password (the other sessions end, this browser's stays: its user just proved the
password), turn the second factor on with a QR code drawn here (segno, inline SVG: nothing from
elsewhere, no image request) and the key for manual entry, confirmed by a first code; ten
one-time recovery codes shown once; turn it off with the password and a code; see and end one's
own sessions; choose one's time zone and language (every page and e-mail then shows times in
that zone, the pages in that language; an expert's zone is their profile's zone too). Every
action calls the API's service (app/accounts/service.py) and is audited there. Plain forms: no
JavaScript needed.
"""

from __future__ import annotations

import uuid
from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from pydantic import TypeAdapter, ValidationError

from app.accounts import service as accounts
from app.accounts.errors import InvalidCredentials, SessionNotFound
from app.accounts.schemas import Password
from app.core.deps import SessionDep
from app.core.errors import BadRequest, Unprocessable
from app.core.validation import SafeStr
from app.models import User, UserSession
from app.web import i18n
from app.web.auth import CsrfForm, PageSession, PageUser, page, redirect
from app.web.i18n import N_
from app.web.public import time_zones

router = APIRouter(include_in_schema=False)
HOME = "/my-account"
_PASSWORD = TypeAdapter(Password)


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code (no style attribute: the CSP forbids inline
    style; fill/stroke are presentation attributes)."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, border=4, dark="#000", light="#fff", title="QR code for your authenticator app"
    )
    return Markup(svg)  # noqa: S704 - segno's own markup of our own URI


def _overview(
    request: Request,
    db: SessionDep,
    user: User,
    current: UserSession,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    zones = time_zones()
    ctx = {
        "title": N_("Your account"),
        "zones": zones if user.timezone in zones else [user.timezone, *zones],
        "languages": i18n.LANGUAGES.values(),
        "values": {"timezone": user.timezone, "language": str(user.language)},
        "sessions": accounts.live_sessions(db, user),
        "current_id": current.id,
        "codes_left": accounts.recovery_codes_left(db, user) if user.totp_enabled else 0,
        **context,
    }
    return page(request, "staff/account.html", ctx, user=user, status=status)


def _field(form: Any, name: str, limit: int = 256) -> str:
    return str(form.get(name) or "")[:limit]


@router.get("/my-account")
def overview(
    request: Request, db: SessionDep, user: PageUser, current: PageSession, done: SafeStr = ""
) -> Response:
    flash = {
        "password": N_("Your password is changed. Your other sessions are signed out."),
        "off": N_("The second factor is off. Turn it on again to use a new device."),
        "ended": N_("The session is ended."),
        "others": N_("Every other session is signed out."),
        "settings": N_("Your time zone and language are saved."),
    }.get(done[:20])
    return _overview(request, db, user, current, flash=flash)


FIELD_MESSAGES = {
    "timezone": N_("Choose a time zone from the list, like Europe/Berlin or Asia/Bishkek."),
    "language": N_("Choose one of the languages in the list."),
}


@router.post("/my-account/settings")
def change_settings(
    request: Request, db: SessionDep, user: PageUser, current: PageSession, form: CsrfForm
) -> Response:
    zone, language = _field(form, "timezone", 64).strip(), _field(form, "language", 8).strip()
    try:
        accounts.update_settings(db, user, timezone=zone, language=language)
    except Unprocessable as exc:
        errors = {p.field: FIELD_MESSAGES.get(p.field, p.message) for p in exc.fields}
        values = {"timezone": zone, "language": language}
        return _overview(request, db, user, current, status=422, errors=errors, values=values)
    return redirect(f"{HOME}?done=settings")


@router.post("/my-account/password")
def change_password(
    request: Request, db: SessionDep, user: PageUser, current: PageSession, form: CsrfForm
) -> Response:
    old, new = _field(form, "current_password"), _field(form, "new_password")
    again = _field(form, "new_password_again")
    errors: dict[str, str] = {}
    if not old:
        errors["current_password"] = N_("Enter your current password.")
    try:
        _PASSWORD.validate_python(new)
    except ValidationError:
        errors["new_password"] = N_("The new password needs at least 12 characters (at most 256).")
    if not errors and new != again:
        errors["new_password_again"] = N_("The two new passwords differ.")
    if not errors:
        try:
            accounts.change_password(db, user, current=old, new=new, keep=current)
        except InvalidCredentials:
            errors["current_password"] = N_("The current password is incorrect.")
    if errors:
        return _overview(request, db, user, current, status=422, errors=errors)
    return redirect(f"{HOME}?done=password")


@router.post("/my-account/second-factor/start")
def totp_start(
    request: Request, db: SessionDep, user: PageUser, current: PageSession, _f: CsrfForm
) -> Response:
    if user.totp_enabled:
        return redirect(HOME)
    accounts.totp_setup(db, user)
    return redirect(f"{HOME}/second-factor")


@router.get("/my-account/second-factor")
def totp_page(request: Request, db: SessionDep, user: PageUser, current: PageSession) -> Response:
    return _totp_page(request, user)


def _totp_page(request: Request, user: User, status: int = 200, **context: Any) -> Response:
    pending = accounts.totp_pending(user)
    if user.totp_enabled or pending is None:
        return redirect(HOME)
    secret, uri = pending
    ctx = {
        "title": N_("Turn on the second factor"),
        "qr": qr_svg(uri),
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        **context,
    }
    return page(request, "staff/account_totp.html", ctx, user=user, status=status)


@router.post("/my-account/second-factor/confirm")
def totp_confirm(
    request: Request, db: SessionDep, user: PageUser, current: PageSession, form: CsrfForm
) -> Response:
    code = "".join(_field(form, "code", 20).split())
    if not (len(code) == 6 and code.isdigit()):
        return _totp_page(
            request, user, 422, errors={"code": N_("Enter the 6-digit code your app shows.")}
        )
    try:
        codes = accounts.totp_confirm(db, user, code)
    except BadRequest as exc:
        if user.totp_enabled:
            return redirect(HOME)
        return _totp_page(request, user, 422, errors={"code": exc.message})
    return _codes_page(request, user, codes, N_("The second factor is on."))


def _codes_page(request: Request, user: User, codes: list[str], flash: str) -> Response:
    ctx = {"title": N_("Your recovery codes"), "codes": codes, "flash": flash}
    return page(request, "staff/account_codes.html", ctx, user=user)


@router.post("/my-account/second-factor/disable")
def totp_disable(
    request: Request, db: SessionDep, user: PageUser, current: PageSession, form: CsrfForm
) -> Response:
    password, code = _field(form, "password"), _field(form, "code", 20)
    errors: dict[str, str] = {}
    if not password:
        errors["disable_password"] = N_("Enter your password.")
    if not code.strip():
        errors["disable_code"] = N_("Enter a 6-digit code or a recovery code.")
    if not errors:
        try:
            accounts.totp_disable(db, user, password=password, code=code)
        except InvalidCredentials as exc:
            key = "disable_password" if "password" in exc.message else "disable_code"
            errors[key] = exc.message
        except BadRequest:
            return redirect(HOME)
    if errors:
        return _overview(request, db, user, current, status=422, errors=errors)
    return redirect(f"{HOME}?done=off")


@router.post("/my-account/recovery-codes")
def new_codes(
    request: Request, db: SessionDep, user: PageUser, current: PageSession, form: CsrfForm
) -> Response:
    try:
        codes = accounts.regenerate_recovery_codes(db, user, password=_field(form, "password"))
    except InvalidCredentials as exc:
        return _overview(
            request, db, user, current, status=422, errors={"codes_password": exc.message}
        )
    except BadRequest:
        return redirect(HOME)
    return _codes_page(
        request, user, codes, N_("New recovery codes: the earlier ones no longer work.")
    )


@router.post("/my-account/sessions/end-others")
def end_others(
    request: Request, db: SessionDep, user: PageUser, current: PageSession, _f: CsrfForm
) -> Response:
    accounts.end_other_sessions(db, user, current)
    return redirect(f"{HOME}?done=others")


@router.post("/my-account/sessions/{session_id}/end")
def end_session(
    request: Request,
    db: SessionDep,
    session_id: uuid.UUID,
    user: PageUser,
    current: PageSession,
    _f: CsrfForm,
) -> Response:
    if session_id == current.id:
        # Ending this browser's own session is signing out: the sign-out button does that.
        return _overview(
            request,
            db,
            user,
            current,
            status=422,
            errors={"sessions": N_("This is the session you are using: sign out instead.")},
        )
    try:
        accounts.end_own_session(db, user, session_id)
    except SessionNotFound:
        return _overview(
            request,
            db,
            user,
            current,
            status=404,
            errors={"sessions": N_("That session is ended already or is not yours.")},
        )
    return redirect(f"{HOME}?done=ended")
