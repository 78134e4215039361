"""Signed one-click acknowledgement links in escalation e-mails: ``<payload>.<signature>``.

Done as the offer links are (``app/experts/links.py``): the payload is ``<master key id>.
<escalation id>.<user id>.<expiry as unix seconds>``, signed with HMAC-SHA256 under a key
derived from that master key for this purpose only. The link names the person it was sent to,
so the acknowledgement records who. GET only shows a page (mail scanners follow links); the POST
from that page acknowledges. Anything wrong answers 404.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import uuid

from app.core import crypto
from app.core.settings import get_settings
from app.core.time import now
from app.roster.errors import InvalidAckLink

PURPOSE = b"asylum-intake/escalation-ack-link/v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(key_id: str) -> bytes:
    current = crypto.master_key()
    if key_id == current.key_id:
        master = current.key
    else:
        old = crypto.old_master_keys()
        if key_id not in old:
            raise InvalidAckLink("This link is not valid.")
        master = old[key_id]
    return hmac.new(master, PURPOSE, hashlib.sha256).digest()


def sign(escalation_id: int, user_id: uuid.UUID, expires_at: dt.datetime | None = None) -> str:
    if expires_at is None:
        expires_at = now() + dt.timedelta(hours=get_settings().escalation_link_hours)
    key_id = crypto.master_key().key_id
    payload = f"{key_id}.{escalation_id}.{user_id.hex}.{int(expires_at.timestamp())}".encode()
    sig = hmac.new(_key(key_id), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(sig)}"


def verify(token: str) -> tuple[int, uuid.UUID]:
    """(escalation id, user id) of a valid, unexpired link; ``InvalidAckLink`` otherwise."""
    try:
        payload_b64, sig_b64 = token.split(".", 1)
        payload = _unb64(payload_b64)
        sig = _unb64(sig_b64)
        key_id, escalation, user, expires = payload.decode().split(".")
        escalation_id, user_id, expires_ts = int(escalation), uuid.UUID(hex=user), int(expires)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidAckLink("This link is not valid.") from None
    expected = hmac.new(_key(key_id), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, sig):
        raise InvalidAckLink("This link is not valid.")
    if now().timestamp() > expires_ts:
        raise InvalidAckLink("This link has expired.")
    return escalation_id, user_id


def ack_url(token: str) -> str:
    return f"{get_settings().public_url}/escalations/ack/{token}"
