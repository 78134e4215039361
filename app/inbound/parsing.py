"""Reading an RFC 822 message (stdlib ``email``, ``policy.default``) into plain facts: who sent
it, its Message-ID and threading headers, when the mailbox received it, the body as text (HTML
reduced to text with BeautifulSoup) and its attachments, kept or refused with the reason.

Nothing here touches the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import PurePath

from app.inbound.errors import InvalidMessage

#: Content types kept as attachments: PDF, images and office documents.
ALLOWED_TYPES = {
    "application/pdf",
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/tiff",
    "image/heic",
    "image/bmp",
    "application/msword",
    "application/rtf",
    "text/rtf",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
}
#: When a client sends ``application/octet-stream``, the extension decides.
ALLOWED_EXTENSIONS = {
    ".pdf": "application/pdf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".heic": "image/heic",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".rtf": "application/rtf",
}
MAX_BODY_CHARS = 100_000
_MSGID = re.compile(r"<([^<>\s]+)>")


@dataclass
class Attachment:
    filename: str
    content_type: str
    size: int
    data: bytes = field(repr=False)
    #: None: kept; else why it was left out ("type", "too_large", "message_too_large").
    refused: str | None = None


@dataclass
class Parsed:
    msg: EmailMessage
    message_id: str  # without <>; derived from the bytes when the message has none
    in_reply_to: str | None
    references: list[str]
    sender: str | None  # lower-cased address
    sender_name: str | None
    to: str
    subject: str
    body: str
    attachments: list[Attachment]
    received_header_at: dt.datetime | None
    date_at: dt.datetime | None
    raw_size: int

    @property
    def thread_ids(self) -> list[str]:
        """In-Reply-To first, then References from the newest."""
        ids = ([self.in_reply_to] if self.in_reply_to else []) + list(reversed(self.references))
        return list(dict.fromkeys(ids))


def message_ids(value: str | None) -> list[str]:
    return _MSGID.findall(str(value or ""))


def _date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def received_time(msg: Message) -> dt.datetime | None:
    """The date of the topmost ``Received`` header: when our mailbox took the message."""
    for value in msg.get_all("Received") or []:
        text = str(value)
        if ";" in text:
            found = _date(text.rsplit(";", 1)[1])
            if found is not None:
                return found
    return None


def html_to_text(html: str) -> str:
    # Imported here: only an HTML-only e-mail needs it, and every process that imports the app
    # (api, worker, beat, the commands) would otherwise pay about 60 ms for it at start-up.
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head"]):
        tag.decompose()
    text = soup.get_text("\n")
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _text_of(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, UnicodeError, ValueError, AssertionError):
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    return str(content)


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = _text_of(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return text.strip()[:MAX_BODY_CHARS]


def _allowed_type(content_type: str, filename: str) -> str | None:
    if content_type in ALLOWED_TYPES:
        return content_type
    return ALLOWED_EXTENSIONS.get(PurePath(filename).suffix.lower())


def attachments(msg: EmailMessage, *, max_each: int, message_too_large: bool) -> list[Attachment]:
    out: list[Attachment] = []
    for n, part in enumerate(msg.iter_attachments(), start=1):
        filename = str(part.get_filename() or f"attachment-{n}")
        declared = part.get_content_type()
        if message_too_large:  # nothing is kept: estimate the size, do not decode
            encoded = part.get_payload()
            data = b""
            size = len(encoded) * 3 // 4 if isinstance(encoded, str) else 0
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            size = len(data)
        kept_type = _allowed_type(declared, filename)
        refused: str | None = None
        if message_too_large:
            refused = "message_too_large"
        elif kept_type is None:
            refused = "type"
        elif len(data) > max_each:
            refused = "too_large"
        elif kept_type == "application/pdf" and not data.startswith(b"%PDF-"):
            refused = "type"  # says PDF, is not one
        out.append(
            Attachment(
                filename=filename[:255],
                content_type=kept_type or declared,
                size=size,
                data=b"" if refused else data,
                refused=refused,
            )
        )
    return out


def parse(raw: bytes, *, max_attachment_bytes: int, max_message_bytes: int) -> Parsed:
    """Parse ``raw``; ``InvalidMessage`` when it is not an e-mail (no headers, no sender)."""
    if not raw or not raw.strip():
        raise InvalidMessage("it is empty")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything it still raises is garbage
        raise InvalidMessage("it could not be parsed") from exc
    if not isinstance(msg, EmailMessage) or not msg.keys():
        raise InvalidMessage("it has no headers")
    try:
        from_header = msg.get("From")
        pairs = getaddresses([str(from_header)]) if from_header else []
        senders = [a for _n, a in pairs if "@" in a]
        names = [n for n, a in pairs if "@" in a]
        subject = str(msg.get("Subject") or "").strip()
        to = str(msg.get("To") or "")
    except Exception as exc:  # malformed header values
        raise InvalidMessage("its headers could not be read") from exc
    if not senders:
        raise InvalidMessage("it has no From address")
    ids = message_ids(msg.get("Message-ID"))
    message_id = ids[0] if ids else f"sha256-{hashlib.sha256(raw).hexdigest()}@inbound.invalid"
    reply_to = message_ids(msg.get("In-Reply-To"))
    too_large = len(raw) > max_message_bytes
    return Parsed(
        msg=msg,
        message_id=message_id[:255],
        in_reply_to=reply_to[0][:255] if reply_to else None,
        references=[r[:255] for r in message_ids(msg.get("References"))],
        sender=senders[0].lower(),
        sender_name=(names[0] or None) if names else None,
        to=to,
        subject=subject[:500],
        body=body_text(msg),
        attachments=attachments(msg, max_each=max_attachment_bytes, message_too_large=too_large),
        received_header_at=received_time(msg),
        date_at=_date(str(msg.get("Date") or "")),
        raw_size=len(raw),
    )
