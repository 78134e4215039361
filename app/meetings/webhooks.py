"""Zoom webhook checks as pure functions (no HTTP, no database).

Zoom signs each event: header ``x-zm-signature`` is ``v0=`` + hex(HMAC-SHA256(secret token,
``v0:{x-zm-request-timestamp}:{raw body}``)). The raw bytes must be used, never re-serialised
JSON. ``endpoint.url_validation`` asks us to prove we hold the secret token by answering
``{"plainToken", "encryptedToken": hex(HMAC-SHA256(secret token, plainToken))}``.

Zoom retries deliveries it thinks failed, and an attacker could replay a captured request inside
the timestamp window, so every event has an ``idempotency_key``: store it with a unique constraint
and skip an event whose key is already there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.meetings.errors import InvalidZoomWebhook, MalformedZoomEvent

SIGNATURE_VERSION = "v0"
URL_VALIDATION_EVENT = "endpoint.url_validation"
TIMESTAMP_HEADER = "x-zm-request-timestamp"
SIGNATURE_HEADER = "x-zm-signature"


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: str, raw_body: bytes) -> str:
    """The ``x-zm-signature`` Zoom sends for this timestamp header and raw body."""
    message = f"{SIGNATURE_VERSION}:{timestamp}:".encode() + raw_body
    return f"{SIGNATURE_VERSION}={_hmac_hex(secret, message)}"


def _timestamp_seconds(value: str) -> float:
    text = value.strip()
    if not text.isdigit():
        raise InvalidZoomWebhook("webhook timestamp is not a number")
    seconds = float(int(text))
    # The header is in seconds; tolerate milliseconds (13 digits) in case that ever changes.
    return seconds / 1000 if seconds > 1e11 else seconds


def verify_signature(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    raw_body: bytes,
    now: dt.datetime,
    max_age_seconds: float = 300,
    *,
    future_skew_seconds: float = 30,
) -> None:
    """Raise ``InvalidZoomWebhook`` unless the request is signed with ``secret`` and fresh.

    Fresh: the timestamp is at most ``max_age_seconds`` old and at most ``future_skew_seconds``
    ahead of ``now`` (clock drift). The comparison is constant-time.
    """
    if not secret:
        raise InvalidZoomWebhook("no webhook secret token configured")
    if not timestamp_header or not signature_header:
        raise InvalidZoomWebhook("webhook signature headers are missing")
    sent_at = _timestamp_seconds(timestamp_header)
    age = now.timestamp() - sent_at
    if age > max_age_seconds:
        raise InvalidZoomWebhook("webhook timestamp is too old")
    if age < -future_skew_seconds:
        raise InvalidZoomWebhook("webhook timestamp is in the future")
    expected = sign(secret, timestamp_header.strip(), raw_body)
    if not hmac.compare_digest(expected.encode(), signature_header.strip().encode()):
        raise InvalidZoomWebhook("webhook signature does not match")


def url_validation_response(secret: str, plain_token: str) -> dict[str, str]:
    """The answer to ``endpoint.url_validation`` (send it with status 200)."""
    return {
        "plainToken": plain_token,
        "encryptedToken": _hmac_hex(secret, plain_token.encode("utf-8")),
    }


@dataclass(frozen=True)
class ZoomEvent:
    event: str
    event_ts: int | None
    meeting_id: int | None
    meeting_uuid: str | None
    idempotency_key: str
    plain_token: str | None = None

    @property
    def is_url_validation(self) -> bool:
        return self.event == URL_VALIDATION_EVENT


def _meeting_id(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedZoomEvent("payload.object.id is not a meeting id")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and value.strip().isdigit():
        result = int(value.strip())
    else:
        raise MalformedZoomEvent("payload.object.id is not a meeting id")
    if result <= 0:
        raise MalformedZoomEvent("payload.object.id is not a meeting id")
    return result


def parse_event(body: bytes | str | Mapping[str, Any]) -> ZoomEvent:
    """Read the fields the service uses. Meeting ids come as numbers or strings: both work.

    ``idempotency_key`` is ``zoom:{event}:{meeting uuid or id}:{event_ts}``; without an
    ``event_ts`` it falls back to a hash of the body, so an exact resend is still recognised.
    """
    if isinstance(body, Mapping):
        data: Any = body
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    else:
        raw = body.encode() if isinstance(body, str) else body
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise MalformedZoomEvent("webhook body is not JSON") from None
    if not isinstance(data, Mapping):
        raise MalformedZoomEvent("webhook body is not a JSON object")
    event = data.get("event")
    if not isinstance(event, str) or not event:
        raise MalformedZoomEvent("webhook body has no event name")
    payload = data.get("payload")
    payload = payload if isinstance(payload, Mapping) else {}
    obj = payload.get("object")
    obj = obj if isinstance(obj, Mapping) else {}

    event_ts_raw = data.get("event_ts")
    event_ts: int | None = None
    if isinstance(event_ts_raw, int) and not isinstance(event_ts_raw, bool):
        event_ts = event_ts_raw
    elif isinstance(event_ts_raw, str) and event_ts_raw.isdigit():
        event_ts = int(event_ts_raw)

    meeting_id = _meeting_id(obj.get("id"))
    uuid = obj.get("uuid")
    meeting_uuid = uuid if isinstance(uuid, str) and uuid else None
    plain = payload.get("plainToken")
    plain_token = plain if isinstance(plain, str) and plain else None

    if event_ts is not None:
        subject = meeting_uuid or (str(meeting_id) if meeting_id is not None else "-")
        key = f"zoom:{event}:{subject}:{event_ts}"
    else:
        key = f"zoom:{event}:sha256:{hashlib.sha256(raw).hexdigest()}"
    return ZoomEvent(
        event=event,
        event_ts=event_ts,
        meeting_id=meeting_id,
        meeting_uuid=meeting_uuid,
        idempotency_key=key[:255],
        plain_token=plain_token,
    )
