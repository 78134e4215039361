"""Reading the e-mails the service sent: the embedded default's ``.eml`` files (``mail_dir``, a
service's ``var/mail``) and messages an SMTP test server captured. One parser (the standard
library's, with the modern policy, so headers and bodies come back decoded) for every test."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from icalendar import Calendar

Mail = tuple[str, str, str]  # (To, Subject, decoded text and HTML bodies)


def parse(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def messages(folder: Path, *, to: str | None = None) -> list[EmailMessage]:
    """Every e-mail written to ``folder`` so far, in the order the files sort (``to``: only those
    addressed to it)."""
    out = [parse(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]
    return out if to is None else [m for m in out if m["To"] == to]


def clear(folder: Path) -> None:
    """Forget the e-mails written so far (the next ``messages`` sees only newer ones)."""
    for path in folder.glob("*.eml"):
        path.unlink()


def text_of(msg: EmailMessage) -> str:
    """The plain-text body, decoded."""
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None, "no text/plain body"
    return str(part.get_content())  # type: ignore[attr-defined]


def html_of(msg: EmailMessage) -> str:
    """The HTML body, decoded."""
    part = msg.get_body(preferencelist=("html",))
    assert part is not None, "no text/html body"
    return str(part.get_content())  # type: ignore[attr-defined]


def bodies_of(msg: EmailMessage) -> str:
    """Every text/plain and text/html part, decoded and joined."""
    return "\n".join(
        str(part.get_content())  # type: ignore[attr-defined]
        for part in msg.walk()
        if part.get_content_type() in ("text/plain", "text/html")
    )


def raw_text(msg: EmailMessage) -> str:
    """Every decoded part of a message (headers and bodies), to look for what must not be
    there."""
    parts = [str(msg)]
    for part in msg.walk():
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            parts.append(data.decode("utf-8", "replace"))
    return "\n".join(parts)


def mails(folder: Path) -> list[Mail]:
    """(to, subject, decoded text and HTML bodies) of every e-mail written so far."""
    return [(str(m["To"]), str(m["Subject"]), bodies_of(m)) for m in messages(folder)]


def take(folder: Path, prefix: str | tuple[str, ...] = "") -> list[Mail]:
    """``mails`` written since the last call whose subject starts with ``prefix``; the folder is
    emptied."""
    found = [m for m in mails(folder) if m[1].startswith(prefix)]
    clear(folder)
    return found


def recipients(found: list[Mail]) -> set[str]:
    return {to for to, _, _ in found}


ACK_LINK = re.compile(r"https?://[^\s\"<>]+/escalations/ack/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


def ack_token(body: str) -> str:
    """The token of the escalation e-mail's acknowledgement link."""
    match = ACK_LINK.search(body)
    assert match, "no acknowledgement link in the e-mail"
    return match.group(1)


def invites(folder: Path) -> list[tuple[EmailMessage, Calendar, Calendar]]:
    """Every e-mail with a calendar: (message, the text/calendar alternative parsed, the
    invite.ics attachment parsed)."""
    out = []
    for msg in messages(folder):
        alternative = attachment = None
        for part in msg.walk():
            if part.get_content_type() != "text/calendar":
                continue
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            if part.get_filename() == "invite.ics":
                attachment = Calendar.from_ical(data)
            else:
                alternative = part
                assert part.get_param("method") in ("REQUEST", "CANCEL")
                alt_cal = Calendar.from_ical(data)
        if alternative is None:
            continue
        assert attachment is not None, "invite.ics attachment missing"
        out.append((msg, alt_cal, attachment))
    return out


def event_of(cal: Calendar) -> Any:
    events = [c for c in cal.walk() if c.name == "VEVENT"]
    assert len(events) == 1
    return events[0]
