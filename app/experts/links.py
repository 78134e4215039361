"""Signed one-click links in offer e-mails: ``<payload>.<signature>``, both base64url.

The payload is ``<master key id>.<assignment id>.<expiry as unix seconds>``; the signature is
HMAC-SHA256 under a key derived from that master key (so rotating the master key keeps links
already sent working while the old key is still configured). The link only opens a page; the
expert acts with one POST from it, because mail scanners follow links.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac

from app.core import crypto
from app.core.settings import get_settings
from app.core.time import now
from app.experts.errors import InvalidOfferLink

PURPOSE = b"asylum-intake/expert-offer-link/v1"


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
            raise InvalidOfferLink("This link is not valid.")
        master = old[key_id]
    return hmac.new(master, PURPOSE, hashlib.sha256).digest()


def sign(assignment_id: int, expires_at: dt.datetime) -> str:
    key_id = crypto.master_key().key_id
    payload = f"{key_id}.{assignment_id}.{int(expires_at.timestamp())}".encode()
    sig = hmac.new(_key(key_id), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(sig)}"


def verify(token: str) -> int:
    """The assignment id of a valid, unexpired link; ``InvalidOfferLink`` otherwise."""
    try:
        payload_b64, sig_b64 = token.split(".", 1)
        payload = _unb64(payload_b64)
        sig = _unb64(sig_b64)
        key_id, assignment, expires = payload.decode().split(".")
        assignment_id, expires_ts = int(assignment), int(expires)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidOfferLink("This link is not valid.") from None
    expected = hmac.new(_key(key_id), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, sig):
        raise InvalidOfferLink("This link is not valid.")
    if now().timestamp() > expires_ts:
        raise InvalidOfferLink("This link has expired: the offer was passed on.")
    return assignment_id


def offer_url(token: str) -> str:
    return f"{get_settings().public_url}/experts/offers/{token}"
