"""The WhatsApp Business Cloud API over HTTP: send a message, read a media file.

``POST {base}/{version}/{phone_number_id}/messages`` with ``Authorization: Bearer <token>``;
media is two calls: ``GET {base}/{version}/{media_id}`` gives a short-lived URL, size, type and
SHA-256, and the URL is fetched with the same bearer token. Errors come in Graph's shape
``{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}`` and are
sorted here by what the caller can do: wait (rate limits: HTTP 429 or codes 130429, 131056,
80007, 4), try again later (5xx, timeouts, no answer), or give up on this message (other 4xx).
Messages never carry Meta's text for a refused message beyond its code and title.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx

from app.core.http import tls_context
from app.core.settings import Settings, get_settings
from app.outbox.registry import PermanentFailure
from app.whatsapp.errors import (
    WhatsAppRateLimited,
    WhatsAppRefused,
    WhatsAppUnavailable,
)

RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131056})
#: Without a Retry-After: the pair rate allows one message every 6 s; throughput resets sooner.
DEFAULT_WAIT_SECONDS = {131056: 10.0}
FALLBACK_WAIT_SECONDS = 30.0


class WhatsAppAuthError(PermanentFailure):
    """The access token was refused (401 / code 190): fix INTAKE_WHATSAPP_ACCESS_TOKEN."""


@dataclass(frozen=True)
class MediaInfo:
    url: str
    mime_type: str
    sha256: str
    file_size: int


def _error_of(resp: httpx.Response) -> Mapping[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    err = body.get("error") if isinstance(body, Mapping) else None
    return err if isinstance(err, Mapping) else {}


def _retry_after(resp: httpx.Response, code: int | None) -> float:
    value = resp.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    return DEFAULT_WAIT_SECONDS.get(code or 0, FALLBACK_WAIT_SECONDS)


def raise_for(resp: httpx.Response, operation: str) -> NoReturn:
    err = _error_of(resp)
    raw_code = err.get("code")
    code = raw_code if isinstance(raw_code, int) else None
    what = f"WhatsApp {operation}: HTTP {resp.status_code}, code {code}"
    if resp.status_code == 429 or code in RATE_LIMIT_CODES:
        raise WhatsAppRateLimited(
            what + " (rate limit)", retry_after_seconds=_retry_after(resp, code), code=code
        )
    if resp.status_code >= 500:
        raise WhatsAppUnavailable(what, status=resp.status_code, code=code)
    if resp.status_code == 401 or code == 190:
        raise WhatsAppAuthError(what + " (access token refused)")
    raise WhatsAppRefused(what, status=resp.status_code, code=code)


class WhatsAppClient:
    def __init__(
        self, settings: Settings | None = None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        s = settings or get_settings()
        token = s.whatsapp_access_token.get_secret_value() if s.whatsapp_access_token else ""
        self.phone_number_id = s.whatsapp_phone_number_id
        self.base = f"{s.whatsapp_api_base_url}/{s.whatsapp_api_version}"
        self.max_media_bytes = s.whatsapp_media_max_bytes
        self._http = httpx.Client(
            timeout=httpx.Timeout(s.whatsapp_timeout_seconds),
            verify=tls_context(),
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WhatsAppClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, url: str, operation: str, **kw: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, url, **kw)
        except httpx.TimeoutException as exc:
            raise WhatsAppUnavailable(
                f"WhatsApp {operation}: timed out", status=0, code=None
            ) from exc
        except httpx.TransportError as exc:
            raise WhatsAppUnavailable(
                f"WhatsApp {operation}: {type(exc).__name__}", status=0, code=None
            ) from exc
        if resp.status_code >= 400:
            raise_for(resp, operation)
        return resp

    # Messages ---------------------------------------------------------------------------------
    def send(self, to: str, payload: dict[str, Any], *, callback: str | None = None) -> str:
        """Send one message; returns its ``wamid``. ``payload``: ``{"type": "text", "text":
        {...}}`` or ``{"type": "template", "template": {...}}``; ``callback`` comes back in
        its status webhooks (``biz_opaque_callback_data``)."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.lstrip("+"),
            **payload,
        }
        if callback:
            body["biz_opaque_callback_data"] = callback
        resp = self._call("POST", f"{self.base}/{self.phone_number_id}/messages", "send", json=body)
        try:
            wamid = resp.json()["messages"][0]["id"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise WhatsAppUnavailable(
                "WhatsApp send: answer without a message id", status=resp.status_code, code=None
            ) from exc
        return str(wamid)

    @staticmethod
    def text(body: str) -> dict[str, Any]:
        return {"type": "text", "text": {"preview_url": False, "body": body}}

    @staticmethod
    def template(name: str, language: str, params: list[str]) -> dict[str, Any]:
        components = (
            [{"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}]
            if params
            else []
        )
        return {
            "type": "template",
            "template": {"name": name, "language": {"code": language}, "components": components},
        }

    # Media ------------------------------------------------------------------------------------
    def media_info(self, media_id: str) -> MediaInfo:
        resp = self._call("GET", f"{self.base}/{media_id}", "media")
        data = resp.json()
        try:
            return MediaInfo(
                url=str(data["url"]),
                mime_type=str(data.get("mime_type", "")),
                sha256=str(data.get("sha256", "")),
                file_size=int(data.get("file_size", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WhatsAppRefused(
                "WhatsApp media: answer without url", status=resp.status_code, code=None
            ) from exc

    def download(self, url: str, limit: int) -> bytes:
        """The file at a media URL (bearer token as well), at most ``limit`` bytes."""
        try:
            with self._http.stream("GET", url) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise_for(resp, "media download")
                data = bytearray()
                for chunk in resp.iter_bytes():
                    data += chunk
                    if len(data) > limit:
                        raise WhatsAppRefused(
                            "WhatsApp media download: larger than allowed", status=200, code=None
                        )
                return bytes(data)
        except httpx.TimeoutException as exc:
            raise WhatsAppUnavailable(
                "WhatsApp media download: timed out", status=0, code=None
            ) from exc
        except httpx.TransportError as exc:
            raise WhatsAppUnavailable(
                f"WhatsApp media download: {type(exc).__name__}", status=0, code=None
            ) from exc
