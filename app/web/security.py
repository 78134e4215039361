"""Safety of the public pages: headers, CSRF, the form's render stamp, HSTS behind TLS.

- CSRF: a random value in a strictly necessary cookie (``csrf``: HttpOnly, Secure,
  SameSite=Strict, gone when the browser closes) and, in every form, an HMAC of it under a key
  derived from the master key. A post without the cookie or with another value is refused with
  a page that says what to do.
- The render stamp: the apply form carries ``<unix milliseconds>.<HMAC(them, csrf value)>``; a
  submission sooner than ``INTAKE_FORM_MIN_FILL_SECONDS`` after the render is not stored.
- HSTS only on requests that came over HTTPS: the ASGI scheme (uvicorn applies its own
  FORWARDED_ALLOW_IPS rule), or X-Forwarded-Proto when ``INTAKE_TRUST_PROXY_HEADERS`` is set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import crypto
from app.core.settings import get_settings

CSRF_COOKIE = "csrf"
CSRF_FIELD = "csrf_token"
STAMP_FIELD = "form_stamp"
HONEYPOT_FIELD = "website"
_PURPOSE = b"asylum-intake/public-pages/v1"

# No inline script or style, nothing from elsewhere, no framing.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
HSTS = "max-age=31536000"


def _key() -> bytes:
    return hmac.new(crypto.master_key().key, _PURPOSE, hashlib.sha256).digest()


def _mac(*parts: str) -> str:
    digest = hmac.new(_key(), "|".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_value(request: Request) -> tuple[str, bool]:
    """The browser's CSRF cookie value, or a new one (then ``True``: set it)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(current) <= 100 and current.isascii():
        return current, False
    return secrets.token_urlsafe(32), True


def csrf_token(value: str) -> str:
    return _mac("csrf", value)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    value = request.cookies.get(CSRF_COOKIE, "")
    if not value or not submitted:
        return False
    return hmac.compare_digest(csrf_token(value), submitted)


def set_csrf_cookie(response: Response, value: str) -> None:
    response.set_cookie(CSRF_COOKIE, value, path="/", secure=True, httponly=True, samesite="strict")


def form_stamp(value: str, at: float | None = None) -> str:
    millis = str(int((at if at is not None else time.time()) * 1000))
    return f"{millis}.{_mac('stamp', millis, value)}"


def stamp_age(value: str, stamp: str | None) -> float | None:
    """Seconds since the form was rendered for this browser; None: missing or forged."""
    if not stamp or "." not in stamp:
        return None
    millis, mac = stamp.split(".", 1)
    if not millis.isdigit() or not hmac.compare_digest(_mac("stamp", millis, value), mac):
        return None
    return time.time() - int(millis) / 1000


def is_https(scope: Scope, headers: dict[str, str] | None = None) -> bool:
    if scope.get("scheme") == "https":
        return True
    if not get_settings().trust_proxy_headers:
        return False
    raw = headers
    if raw is None:
        raw = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    proto = raw.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    return proto == "https"


class SecureTransportMiddleware:
    """HSTS on every response to a request that came over HTTPS; nosniff everywhere."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = is_https(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if https:
                    headers["Strict-Transport-Security"] = HSTS
                if "x-content-type-options" not in headers:
                    headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.app(scope, receive, send_with_headers)
