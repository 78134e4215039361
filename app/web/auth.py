"""Signed-in pages (staff, admins, experts): the session cookie, role checks, CSRF, rendering.

The page session IS an account session: signing in on ``/staff/sign-in`` calls the same
``app.accounts.service.login`` as ``POST /api/v1/auth/login`` (same throttle and lockout, same
second factor) and keeps its ``ut_`` token in the ``intake_session`` cookie (HttpOnly, Secure,
SameSite=Lax, path ``/``, no expiry: gone when the browser closes; the server-side session
expires after ``INTAKE_USER_TOKEN_TTL_MINUTES`` and is revoked by signing out).

For another page (e.g. reports)::

    from app.web.auth import CsrfForm, StaffPageUser, page

    @router.get("/staff/reports")
    def reports(request: Request, user: StaffPageUser) -> HTMLResponse:
        return page(request, "staff/reports.html", {"title": "Reports"}, user=user)

    @router.post("/staff/reports/notes")
    def add(request: Request, user: StaffPageUser, form: CsrfForm) -> Response: ...

A missing, expired or revoked session redirects (303) to the sign-in page with ``?next=``; a
signed-in user whose role may not open the page gets a 403 page. Every POST form carries
``csrf_token`` (``page()`` provides it as ``csrf_token``/``csrf_field``); take the form as a
``CsrfForm`` parameter (refused: a 403 page, nothing done), after the user parameter so that a
missing session still redirects to the sign-in.

Handlers are plain ``def`` (FastAPI runs them in its thread pool): the database and argon2
block, and on the event loop they would stall every other request of the process. Only
``require_csrf`` is ``async``, because reading the body is. ``tests/web/test_web_event_loop.py``
fails when an endpoint or dependency does blocking work on the loop.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from app.accounts import service as accounts
from app.accounts.deps import SESSION_COOKIE
from app.core.deps import SessionDep
from app.core.errors import NotAuthenticated
from app.core.time import now
from app.models import Role, User, UserSession
from app.notifications.facts import zone_label
from app.onboarding import service as onboarding
from app.web import i18n
from app.web.i18n import N_
from app.web.paths import SIGN_IN_PATH
from app.web.security import (
    CSRF_FIELD,
    PAGE_HEADERS,
    csrf_ok,
    csrf_token,
    csrf_value,
    set_csrf_cookie,
)


@dataclass(frozen=True)
class Viewer:
    """Who is signed in, as plain values: an error page renders after the session closed."""

    id: uuid.UUID
    display_name: str
    role: Role
    timezone: str = "UTC"
    language: str = i18n.DEFAULT


class SignInRequired(Exception):
    """No valid page session: answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageForbidden(Exception):
    """Signed in, but this role may not open the page: a 403 page."""


class CsrfRefused(Exception):
    """A form without a valid CSRF token: a 403 page, nothing done."""


def home_of(user: User) -> str:
    return "/expert/assignments" if user.role == Role.expert else "/staff/queue"


def safe_next(value: str | None) -> str | None:
    """Only a path of these pages (no scheme, no host, no ``//``): no open redirect."""
    if not value or len(value) > 500:
        return None
    if not value.startswith(("/staff/", "/expert/", "/admin/", "/my-account")) or value.startswith(
        SIGN_IN_PATH
    ):
        return None
    if "//" in value or "\\" in value or any(ord(c) < 32 for c in value):
        return None
    return value


def set_session_cookie(response: Response, token: str) -> None:
    # Secure like every cookie of these pages (browsers treat http://localhost as secure too).
    response.set_cookie(SESSION_COOKIE, token, path="/", secure=True, httponly=True, samesite="lax")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")


def page_session(request: Request, session: SessionDep) -> UserSession:
    """The signed-in page session (cookie only: a page never reads Authorization)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired(target)
    try:
        user, user_session = accounts.authenticate(session, token)
    except NotAuthenticated:
        raise SignInRequired(target) from None
    request.state.page_user = user
    request.state.user_session = user_session
    # Plain values for whatever reads the request's state after the database session closed
    # (error pages, the audit middleware): an ORM object would be detached by then.
    request.state.viewer = request.state.user = Viewer(
        user.id, user.display_name, user.role, user.timezone, str(user.language)
    )
    if user.role == Role.admin:
        # The navigation offers the first-run checklist to admins until it is all ticked.
        request.state.getting_started = onboarding.needs_setup(session, user)
    return user_session


def page_user(request: Request, _s: Annotated[UserSession, Depends(page_session)]) -> User:
    user: User = request.state.page_user
    return user


def require_page_roles(*roles: Role) -> Callable[[User], User]:
    def check(user: Annotated[User, Depends(page_user)]) -> User:
        if user.role not in roles:
            raise PageForbidden()
        return user

    return check


PageSession = Annotated[UserSession, Depends(page_session)]
PageUser = Annotated[User, Depends(page_user)]
StaffPageUser = Annotated[User, Depends(require_page_roles(Role.staff, Role.admin))]
AdminPageUser = Annotated[User, Depends(require_page_roles(Role.admin))]
ExpertPageUser = Annotated[User, Depends(require_page_roles(Role.expert))]


# CSRF ----------------------------------------------------------------------------------------


async def require_csrf(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the browser's cookie. A dependency: the
    body is read on the event loop (no blocking work here), the handler runs in a thread."""
    form = await request.form()
    submitted = form.get(CSRF_FIELD)
    if not isinstance(submitted, str) or not csrf_ok(request, submitted):
        raise CsrfRefused()
    return form


CsrfForm = Annotated[FormData, Depends(require_csrf)]


# Rendering -----------------------------------------------------------------------------------


def page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    user: User | Viewer | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a staff/expert page in the viewer's language (``page_language``) with times in
    their zone (the ``local`` filter, app/web/i18n.py). The context's ``title``, ``flash`` and
    field errors are translated here: mark them with ``N_()`` where they are written."""
    value, new = csrf_value(request)
    lang = page_language(request, user)
    zone = viewer_zone(user)
    context = _translated(lang, context)
    base: dict[str, Any] = {
        "lang": i18n.LANGUAGES[lang],
        "viewer_zone": zone,
        "viewer_zone_label": zone_label(zone, now()),
        "user": user,
        "path": request.url.path,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(value),
        "flash": None,
        "errors": {},
        "getting_started": getattr(request.state, "getting_started", False),
    }
    body = i18n.environment(lang).get_template(template).render({**base, **context})
    response = HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
    if new:
        set_csrf_cookie(response, value)
    return response


def viewer_zone(user: User | Viewer | None) -> str:
    """The IANA zone a signed-in person sees times in: their own setting (UTC by default and
    before signing in). An expert's is their profile's zone too."""
    zone = getattr(user, "timezone", None)
    return zone if isinstance(zone, str) and zone else "UTC"


def page_language(request: Request, user: User | Viewer | None) -> str:
    """The signed-in person's own language; before signing in, ``?lang=`` or the browser's
    Accept-Language, as on the public pages."""
    if user is not None:
        chosen = str(getattr(user, "language", "") or "")
        return chosen if chosen in i18n.LANGUAGES else i18n.DEFAULT
    return i18n.negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))


def _translated(lang: str, context: Mapping[str, Any]) -> Mapping[str, Any]:
    """Texts a page module wrote (title, flash, field errors) in ``lang``; one without a
    translation, or with values filled in, stays as written."""
    gettext = i18n.translations(lang).gettext

    def tr(value: Any) -> Any:
        # A text with values (i18n.Text) is translated, then filled in, in English too.
        if isinstance(value, i18n.Text):
            return value.translated(gettext)
        return gettext(value) if type(value) is str and value and lang != i18n.DEFAULT else value

    out = dict(context)
    for key in ("title", "flash"):
        if key in out:
            out[key] = tr(out[key])
    errors = out.get("errors")
    if isinstance(errors, Mapping):
        out["errors"] = {k: tr(v) for k, v in errors.items()}
    return out


def not_found(request: Request, user: User | Viewer | None = None) -> HTMLResponse:
    """The same 404 page for what does not exist and what is not this user's to see."""
    return page(request, "staff/not_found.html", {"title": N_("Not found")}, user=user, status=404)


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=PAGE_HEADERS)


# Exception handlers (installed by app.main) ----------------------------------------------------


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    target = safe_next(exc.next_path)
    if request.method != "GET":
        target = None
    location = SIGN_IN_PATH + (f"?next={quote(target, safe='/')}" if target else "")
    if request.headers.get("x-requested-with") == "fetch":
        # The queue's background refresh: no redirect to follow, the script reloads instead.
        return Response(status_code=401, headers=PAGE_HEADERS)
    response = redirect(location)
    clear_session_cookie(response)
    return response


async def _forbidden(request: Request, _exc: Exception) -> Response:
    user = getattr(request.state, "user", None)
    return page(
        request, "staff/forbidden.html", {"title": N_("Not for your role")}, user=user, status=403
    )


async def _csrf_refused(request: Request, _exc: Exception) -> Response:
    user = getattr(request.state, "viewer", None)
    return page(
        request, "staff/refused.html", {"title": N_("Please try again")}, user=user, status=403
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(PageForbidden, _forbidden)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
