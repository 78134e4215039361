"""Meta's webhook for WhatsApp, as pure functions (no HTTP, no database).

- Verification handshake: Meta calls ``GET`` with ``hub.mode=subscribe``, ``hub.verify_token``
  (the token we chose in the app dashboard) and ``hub.challenge``; we answer 200 with the
  challenge as plain text, else 403.
- Every ``POST`` carries ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw
  body)>``. The raw bytes must be used: Meta escapes non-ASCII as ``\\uXXXX`` and ``/`` as
  ``\\/``, so re-serialised JSON would not match. Compared in constant time.
- Bodies: ``{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":
  "messages", "value": {"metadata", "contacts", "messages" | "statuses"}}]}]}``. Messages carry
  ``from`` (the number, digits only), ``id`` (the wamid), ``timestamp`` (Unix seconds, a string)
  and ``type`` with a part of that name (``text.body``; ``image``/``document``/``audio``/
  ``video``/``sticker`` with ``id``, ``mime_type``, ``sha256``, maybe ``caption``/``filename``).
  Statuses carry ``id``, ``status`` (sent, delivered, read, failed), ``timestamp``,
  ``recipient_id``, ``errors`` on failure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.whatsapp.errors import (
    InvalidWhatsAppSignature,
    MalformedWhatsAppEvent,
    VerificationRefused,
)

SIGNATURE_HEADER = "x-hub-signature-256"
MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")


def signature(secret: str, raw_body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, header: str | None, raw_body: bytes) -> None:
    """Raise unless ``header`` is the app secret's signature of exactly these bytes."""
    if not secret:
        raise InvalidWhatsAppSignature("No WhatsApp app secret is configured.")
    if not header:
        raise InvalidWhatsAppSignature("X-Hub-Signature-256 is missing.")
    expected = signature(secret, raw_body)
    if not hmac.compare_digest(expected.encode(), header.strip().encode()):
        raise InvalidWhatsAppSignature("X-Hub-Signature-256 does not match the body.")


def verify_subscription(
    expected_token: str, mode: str | None, token: str | None, challenge: str | None
) -> str:
    """The challenge to echo when Meta's handshake is ours; else 403."""
    same = hmac.compare_digest((token or "").encode(), (expected_token or "\x00unset").encode())
    if mode != "subscribe" or not expected_token or not same or not challenge:
        raise VerificationRefused("The webhook verification was refused.")
    return challenge


@dataclass(frozen=True)
class Media:
    kind: str
    media_id: str
    mime_type: str
    sha256: str
    filename: str | None = None
    caption: str | None = None


@dataclass(frozen=True)
class Inbound:
    wamid: str
    wa_id: str
    at: dt.datetime
    kind: str
    text: str | None
    name: str | None
    media: Media | None = None


@dataclass(frozen=True)
class Status:
    wamid: str
    status: str
    at: dt.datetime
    recipient: str
    error_code: int | None = None
    error_title: str | None = None
    callback: str | None = None  # biz_opaque_callback_data, as we sent it


@dataclass
class Batch:
    messages: list[Inbound] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    phone_number_ids: set[str] = field(default_factory=set)


def _at(value: Any) -> dt.datetime:
    if isinstance(value, str) and value.isdigit():
        return dt.datetime.fromtimestamp(int(value), dt.UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    raise MalformedWhatsAppEvent("A timestamp is not Unix seconds.")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _message(raw: Mapping[str, Any], names: dict[str, str]) -> Inbound | None:
    wamid, wa_id = _str(raw.get("id")), _str(raw.get("from"))
    if wamid is None or wa_id is None:
        raise MalformedWhatsAppEvent("A message has no id or sender.")
    kind = _str(raw.get("type")) or "unknown"
    text: str | None = None
    media: Media | None = None
    found = raw.get(kind)
    part: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    if kind == "text":
        text = _str(part.get("body"))
    elif kind in MEDIA_TYPES:
        media_id = _str(part.get("id"))
        if media_id is None:
            raise MalformedWhatsAppEvent(f"A {kind} message has no media id.")
        media = Media(
            kind=kind,
            media_id=media_id,
            mime_type=_str(part.get("mime_type")) or "application/octet-stream",
            sha256=_str(part.get("sha256")) or "",
            filename=_str(part.get("filename")),
            caption=_str(part.get("caption")),
        )
        text = media.caption
    elif kind == "button":
        text = _str(part.get("text"))
    return Inbound(
        wamid=wamid,
        wa_id=wa_id,
        at=_at(raw.get("timestamp")),
        kind=kind,
        text=text,
        name=names.get(wa_id),
        media=media,
    )


def _status(raw: Mapping[str, Any]) -> Status:
    wamid, status = _str(raw.get("id")), _str(raw.get("status"))
    if wamid is None or status is None:
        raise MalformedWhatsAppEvent("A status has no message id or status.")
    code: int | None = None
    title: str | None = None
    errors = raw.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        c = errors[0].get("code")
        code = c if isinstance(c, int) else None
        title = _str(errors[0].get("title"))
    return Status(
        wamid=wamid,
        status=status,
        at=_at(raw.get("timestamp")),
        recipient=_str(raw.get("recipient_id")) or "",
        error_code=code,
        error_title=title,
        callback=_str(raw.get("biz_opaque_callback_data")),
    )


def parse(raw_body: bytes) -> Batch:
    try:
        data = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedWhatsAppEvent("The webhook body is not JSON.") from None
    if not isinstance(data, Mapping) or data.get("object") != "whatsapp_business_account":
        raise MalformedWhatsAppEvent("The webhook body is not a WhatsApp Business event.")
    batch = Batch()
    for entry in data.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            if not isinstance(change, Mapping) or change.get("field") != "messages":
                continue
            value = change.get("value")
            if not isinstance(value, Mapping):
                continue
            pid = _str((value.get("metadata") or {}).get("phone_number_id"))
            if pid:
                batch.phone_number_ids.add(pid)
            names = {
                str(c.get("wa_id")): str((c.get("profile") or {}).get("name") or "")
                for c in value.get("contacts") or []
                if isinstance(c, Mapping)
            }
            for m in value.get("messages") or []:
                if isinstance(m, Mapping):
                    found = _message(m, names)
                    if found is not None:
                        batch.messages.append(found)
            for s in value.get("statuses") or []:
                if isinstance(s, Mapping):
                    batch.statuses.append(_status(s))
    return batch
