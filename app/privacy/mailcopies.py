"""Copies of sent e-mail under ``var/mail/`` (the embedded default's file backend).

``app.notifications.mail`` names each file after its timestamp and Message-ID, so the files
of one request are found by content: a file whose headers or decoded text parts hold one of the
request's needles (its reference, its link token) is removed. Every e-mail about a request
carries its reference (subjects and texts), so this also finds staff and expert notices.
"""

from __future__ import annotations

import contextlib
import email
import re
from collections.abc import Iterable
from email import policy
from email.message import EmailMessage
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


def _texts(msg: EmailMessage) -> Iterable[str]:
    for name, value in msg.items():
        yield f"{name}: {value}"
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            continue
        try:
            content = part.get_content()
        except (LookupError, ValueError, AttributeError):
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
        if isinstance(content, bytes):
            yield content.decode("utf-8", "replace")
        elif isinstance(content, str):
            yield content
        if part.get_filename():
            yield part.get_filename() or ""


def purge(folder: Path, needles: Iterable[str]) -> int:
    """Remove every ``.eml`` in ``folder`` that mentions one of ``needles``; the count."""
    words = sorted({n for n in needles if n and len(n) >= 6})
    if not words or not folder.is_dir():
        return 0
    pattern = re.compile("|".join(rf"(?<![0-9A-Za-z]){re.escape(w)}(?![0-9A-Za-z])" for w in words))
    removed = 0
    for path in folder.glob("*.eml"):
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        hit = pattern.search(raw.decode("latin-1")) is not None
        if not hit:
            msg = email.message_from_bytes(raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            hit = any(pattern.search(t) for t in _texts(msg))
        if hit:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    if removed:
        log.info("mail_copies_removed", count=removed)
    return removed
