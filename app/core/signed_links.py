"""Signed one-click links in e-mails: ``<payload>.<signature>``, both base64url.

The payload is ``<master key id>.<field>...<expiry as unix seconds>``; the signature is
HMAC-SHA256 under a key derived from that master key for one ``purpose`` only (so rotating the
master key keeps links already sent working while the old key is still configured, and a link
made for one purpose never passes for another). Used by the expert offer links and the
escalation acknowledgement links; each wraps ``BadLink`` in its own error.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac

from app.core import crypto
from app.core.time import now


class BadLink(ValueError):
    """Not a link of ours (``expired`` False), or one whose time is over (``expired`` True)."""

    def __init__(self, *, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(purpose: bytes, key_id: str) -> bytes:
    current = crypto.master_key()
    if key_id == current.key_id:
        master = current.key
    else:
        old = crypto.old_master_keys()
        if key_id not in old:
            raise BadLink()
        master = old[key_id]
    return hmac.new(master, purpose, hashlib.sha256).digest()


def sign(purpose: bytes, fields: list[str], expires_at: dt.datetime) -> str:
    key_id = crypto.master_key().key_id
    payload = ".".join([key_id, *fields, str(int(expires_at.timestamp()))]).encode()
    sig = hmac.new(_key(purpose, key_id), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(sig)}"


def verify(purpose: bytes, token: str, field_count: int) -> list[str]:
    """The fields of a valid, unexpired link; ``BadLink`` otherwise."""
    try:
        payload_b64, sig_b64 = token.split(".", 1)
        payload = _unb64(payload_b64)
        sig = _unb64(sig_b64)
        key_id, *fields, expires = payload.decode().split(".")
        expires_ts = int(expires)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadLink() from None
    if len(fields) != field_count:
        raise BadLink()
    expected = hmac.new(_key(purpose, key_id), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, sig):
        raise BadLink()
    if now().timestamp() > expires_ts:
        raise BadLink(expired=True)
    return fields
