"""The application form's draft between its steps: held by the browser, readable only here.

The answers of the steps (``/apply/...``) are kept in the person's browser, not on the server:
a cookie (``apply_draft``, split into at most ``MAX_PARTS`` cookies for a long case summary)
holding the answers as compressed JSON, encrypted with AES-GCM under a key derived from the
master key for this purpose only. The encryption is bound to the browser's ``csrf`` cookie
(associated data), so a copied draft is useless in another browser or after the browser was
closed (the ``csrf`` cookie lives as long as the browser session). The draft carries its own
expiry (``DRAFT_MINUTES`` after the last answer saved); the cookies carry the same Max-Age,
HttpOnly, Secure, SameSite=Strict and the path ``/apply``. Sending the request deletes them.

A cookie that is not ours, changed, from another browser or expired is never read: the pages
say so and start again (``DraftError``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from starlette.requests import Request
from starlette.responses import Response

from app.core import crypto
from app.core.time import now

COOKIE = "apply_draft"
COOKIE_PATH = "/apply"
PURPOSE = "apply-form draft v1"
DRAFT_MINUTES = 60
#: Each cookie below the 4096 bytes a browser keeps; three keep the request's headers under
#: the 16 KB uvicorn (h11) accepts. Plenty for 5000 characters of a summary, compressed.
PART_CHARS = 3800
MAX_PARTS = 3
_VERSION = "d1"


class DraftError(Exception):
    """A draft cookie that cannot be used: ``expired`` True when its time is over, else not
    ours, changed, or from another browser session."""

    def __init__(self, *, expired: bool = False) -> None:
        super().__init__("expired" if expired else "unreadable")
        self.expired = expired


class DraftTooLarge(Exception):
    """The answers do not fit into the browser's cookies."""


@dataclass
class Draft:
    """``values``: the answers so far, as the one-page form holds them; ``done``: the steps
    answered; ``stamp``: the form stamp of the first answer (the fill-time check at sending);
    ``key``: the Idempotency-Key of the final send."""

    values: dict[str, Any] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    stamp: str = ""
    key: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aad(csrf: str) -> bytes:
    return f"{PURPOSE}|{csrf}".encode()


def seal(draft: Draft, csrf: str, at: dt.datetime | None = None) -> str:
    """The draft as one encrypted token, valid ``DRAFT_MINUTES`` from ``at`` (default now)."""
    expires = int(((at or now()) + dt.timedelta(minutes=DRAFT_MINUTES)).timestamp())
    body = {"exp": expires, "v": draft.values, "d": draft.done, "s": draft.stamp, "k": draft.key}
    plain = zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 9)
    mk = crypto.master_key()
    blob = crypto.encrypt(crypto.derived_key(PURPOSE), plain, _aad(csrf))
    return f"{_VERSION}.{mk.key_id}.{_b64(blob)}"


def unseal(token: str, csrf: str) -> Draft:
    """The draft of a token made by ``seal`` in this browser session; ``DraftError`` else."""
    try:
        version, key_id, blob_b64 = token.split(".")
        if version != _VERSION or key_id != crypto.master_key().key_id or not csrf:
            raise DraftError()
        plain = crypto.decrypt(crypto.derived_key(PURPOSE), _unb64(blob_b64), _aad(csrf))
        body = json.loads(zlib.decompress(plain))
        expires = int(body["exp"])
        draft = Draft(
            values=dict(body["v"]), done=list(body["d"]), stamp=str(body["s"]), key=str(body["k"])
        )
    except DraftError:
        raise
    except (ValueError, KeyError, TypeError, InvalidTag, binascii.Error, zlib.error):
        raise DraftError() from None
    if now().timestamp() > expires:
        raise DraftError(expired=True)
    return draft


def _parts(request: Request) -> list[str] | None:
    first = request.cookies.get(COOKIE)
    if first is None:
        return None
    count, _, head = first.partition("~")
    if not count.isdigit() or not 1 <= int(count) <= MAX_PARTS:
        raise DraftError()
    parts = [head]
    for n in range(2, int(count) + 1):
        part = request.cookies.get(f"{COOKIE}{n}")
        if part is None:
            raise DraftError()
        parts.append(part)
    return parts


def read(request: Request, csrf: str) -> Draft | None:
    """The browser's draft; None when there is none; ``DraftError`` when it cannot be used."""
    parts = _parts(request)
    if parts is None:
        return None
    return unseal("".join(parts), csrf)


def _set(response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=DRAFT_MINUTES * 60,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )


def write(response: Response, draft: Draft, csrf: str) -> None:
    """Keep the draft in the browser (``DraftTooLarge`` when it does not fit)."""
    token = seal(draft, csrf)
    parts = [token[i : i + PART_CHARS] for i in range(0, len(token), PART_CHARS)]
    if len(parts) > MAX_PARTS:
        raise DraftTooLarge()
    _set(response, COOKIE, f"{len(parts)}~{parts[0]}")
    for n, part in enumerate(parts[1:], start=2):
        _set(response, f"{COOKIE}{n}", part)
    for n in range(len(parts) + 1, MAX_PARTS + 1):
        _forget(response, f"{COOKIE}{n}")


def _forget(response: Response, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict")


def clear(response: Response) -> None:
    """Delete the draft from the browser (sent, or unusable)."""
    _forget(response, COOKIE)
    for n in range(2, MAX_PARTS + 1):
        _forget(response, f"{COOKIE}{n}")
