"""The one mail module: build a message, and send it as an .eml file (embedded default, under
``var/mail/``) or over SMTP (STARTTLS or implicit TLS, with login) in production."""

from __future__ import annotations

import contextlib
import contextvars
import os
import secrets
import smtplib
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import charset as email_charset
from email.encoders import encode_base64
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from app.core.settings import Settings, get_settings
from app.core.time import now
from app.outbox.registry import PermanentFailure

# Every text part says charset=utf-8 (what RFC 5545 asks of a calendar, too); its body is
# 7bit when that is enough, else base64.
_UTF8_BASE64 = email_charset.Charset("utf-8")
_UTF8_BASE64.body_encoding = email_charset.BASE64
_UTF8_7BIT = email_charset.Charset("utf-8")
_UTF8_7BIT.body_encoding = None  # type: ignore[assignment]  # None: 7bit or 8bit, by content


class _Policy(Compat32):
    """compat32, except that a short ASCII header is written as it is: folding it through
    ``email.header.Header`` changes nothing and costs more than building the message."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if (
            isinstance(value, str)
            and value.isascii()
            and len(name) + len(value) + 2 <= (self.max_line_length or 998)
        ):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)  # type: ignore[misc,no-any-return]


#: How a message is written: to a file, and (CRLF line ends) over SMTP.
_FILE = _Policy()
_WIRE = _Policy(linesep="\r\n")


class MailError(Exception):
    """Sending failed; the outbox retries."""


class MailRefused(MailError, PermanentFailure):
    """The server refused the recipient or the message with a permanent (5xx) reply, e.g.
    "550 no such user": sending the same message again cannot help, so the outbox dead-letters
    it at once for staff to see. Temporary (4xx) refusals stay plain ``MailError``: retried."""


@dataclass
class Attachment:
    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "octet-stream"
    params: dict[str, str] = field(default_factory=dict)


def build_message(
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    sender: str | None = None,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: list[Attachment] | None = None,
    alternatives: list[Attachment] | None = None,
    settings: Settings | None = None,
) -> Message:
    """A complete message: text (and HTML, and e.g. a calendar) as alternatives, then any
    attachments.

    Built with the ``email.mime`` classes (compat32) rather than ``EmailMessage``: the modern
    policy parses every header on assignment and again when folding, which was a third of the
    worker's CPU per e-mail. Headers are kept 7-bit here instead: addresses through
    ``formataddr`` (a non-ASCII display name becomes an RFC 2047 word), any other non-ASCII
    value encoded as UTF-8 when the message is written.
    """
    settings = settings or get_settings()
    body: Message = _text_part(text, "plain")
    parts = [*([_text_part(html, "html")] if html is not None else [])]
    for alt in alternatives or []:
        # e.g. text/calendar; method=REQUEST, so mail clients offer to add the event
        parts.append(_text_part(alt.content.decode(), alt.subtype, alt.params))
    # Our own random boundaries: left unset, the generator compiles a regex per message to
    # pick one that the text does not contain (128 random bits cannot collide).
    if parts:
        body = MIMEMultipart("alternative", _boundary(), [body, *parts], policy=_FILE)
    if attachments:
        more = map(_attachment_part, attachments)
        body = MIMEMultipart("mixed", _boundary(), [body, *more], policy=_FILE)
    extra = headers or {}
    for name, value in {"From": sender or "", "To": to, "Subject": subject, **extra}.items():
        if "\r" in value or "\n" in value:  # compat32 would let a header be injected
            raise ValueError(f"header {name} may not contain a line break")
    top = {
        "From": _address(sender or settings.mail_from),
        "To": _address(to),
        "Subject": subject,
        "Date": format_datetime(now()),
        "Message-ID": message_id or make_msgid(domain=_domain(settings)),
        "Auto-Submitted": "auto-generated",
    }
    for name, value in [*top.items(), *extra.items()]:
        body[name] = value
    return body


def _boundary() -> str:
    return f"=_{secrets.token_hex(16)}"


def _address(value: str) -> str:
    """``Name <addr>`` with the display name RFC 2047-encoded when it is not ASCII."""
    name, addr = parseaddr(value)
    return formataddr((name, addr), charset="utf-8") if addr else value


def _text_part(content: str, subtype: str, params: dict[str, str] | None = None) -> Message:
    """7bit when ASCII in lines a server must accept (998 octets), else base64 (C-speed,
    7-bit clean whatever the server supports)."""
    seven_bit = content.isascii() and all(len(line) <= 998 for line in content.splitlines())
    charset = _UTF8_7BIT if seven_bit else _UTF8_BASE64
    part = MIMEText(content, subtype, _charset=charset, policy=_FILE)  # type: ignore[arg-type]
    for key, value in (params or {}).items():
        if key.lower() != "charset":
            part.set_param(key, value)
    return part


def _attachment_part(att: Attachment) -> Message:
    part = MIMEBase(att.maintype, att.subtype, policy=_FILE, **att.params)
    part.set_payload(att.content)
    encode_base64(part)
    # RFC 2231 for a non-ASCII file name (a document's title, in the requester's language).
    filename: str | tuple[str, str, str] = (
        att.filename if att.filename.isascii() else ("utf-8", "", att.filename)
    )
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def _domain(settings: Settings) -> str:
    addr = settings.mail_from.rsplit("<", 1)[-1].rstrip(">")
    return addr.rsplit("@", 1)[-1] if "@" in addr else "localhost"


def stable_message_id(key: str, settings: Settings | None = None) -> str:
    """A Message-ID derived from an outbox row, so a resend of the same row is recognisable."""
    return f"<{key}@{_domain(settings or get_settings())}>"


def send(msg: Message, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    if settings.mail_backend == "file":
        _write_file(msg, settings.mail_dir)
    else:
        _send_smtp(msg, settings)


def _write_file(msg: Message, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    msgid = str(msg["Message-ID"]).strip("<>").replace("@", "_").replace("/", "_")
    stamp = now().strftime("%Y%m%dT%H%M%S%f")
    target = folder / f"{stamp}-{msgid}.eml"
    # Write then rename: a reader never sees half a message.
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(msg.as_bytes())
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    return target


class _Connection:
    """An open SMTP session reused for several messages (see ``smtp_connection``)."""

    def __init__(self) -> None:
        self.client: smtplib.SMTP | None = None

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            with contextlib.suppress(OSError):
                client.close()


_reuse: contextvars.ContextVar[_Connection | None] = contextvars.ContextVar(
    "smtp_reuse", default=None
)


@contextlib.contextmanager
def smtp_connection() -> Iterator[None]:
    """Within this block, SMTP sends share one connection (opened on first use, reopened after
    a failure, closed at the end): the worker wraps a batch in it, so a batch of messages costs
    one connect, greeting and login instead of one per message. Nothing changes for callers."""
    conn = _Connection()
    token = _reuse.set(conn)
    try:
        yield
    finally:
        _reuse.reset(token)
        conn.close()


def _open_smtp(settings: Settings) -> smtplib.SMTP:
    timeout = settings.smtp_timeout_seconds
    ca = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    if settings.smtp_security == "tls":
        ctx = ssl.create_default_context(cafile=ca)
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=ctx
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    try:
        if settings.smtp_security == "starttls":
            client.starttls(context=ssl.create_default_context(cafile=ca))
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            client.login(settings.smtp_username, password)
    except BaseException:
        client.close()
        raise
    return client


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def _classify(exc: smtplib.SMTPException | OSError) -> MailError:
    """5xx refusals of the recipient or of the message are permanent; everything else
    (4xx, a refused sender or login - our set-up, fixable -, timeouts, resets) is retried."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(_is_permanent(c) for c in codes):
            return MailRefused(text)
    elif isinstance(exc, smtplib.SMTPDataError) and _is_permanent(exc.smtp_code):
        return MailRefused(text)
    return MailError(text)


def _send_smtp(msg: Message, settings: Settings) -> None:
    shared = _reuse.get()
    if shared is None:
        try:
            with _open_smtp(settings) as client:
                _transmit(client, msg)
        except (smtplib.SMTPException, OSError) as exc:
            raise _classify(exc) from exc
        return
    reused = shared.client is not None
    try:
        if shared.client is None:
            shared.client = _open_smtp(settings)
        _transmit(shared.client, msg)
    except smtplib.SMTPServerDisconnected as exc:
        # A reused connection the server has since closed (idle timeout): the message was not
        # taken, so open a fresh connection and send it once more.
        shared.close()
        if not reused:
            raise _classify(exc) from exc
        try:
            shared.client = _open_smtp(settings)
            _transmit(shared.client, msg)
        except (smtplib.SMTPException, OSError) as again:
            shared.close()
            raise _classify(again) from again
    except (smtplib.SMTPException, OSError) as exc:
        if not isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused):
            shared.close()  # the connection's state is unknown: start the next send afresh
        else:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                shared.client.rset()  # type: ignore[union-attr]
        raise _classify(exc) from exc


def _transmit(client: smtplib.SMTP, msg: Message) -> None:
    # Written once, 7-bit, CRLF: smtplib's send_message would flatten it again.
    sender = parseaddr(str(msg["From"]))[1]
    recipients = [addr for _, addr in getaddresses([str(v) for v in msg.get_all("To", [])])]
    refused = client.sendmail(sender, recipients, msg.as_bytes(policy=_WIRE))
    if refused:
        codes = [code for code, _ in refused.values()]
        error = MailRefused if all(_is_permanent(c) for c in codes) else MailError
        raise error(f"recipients refused: {len(refused)}")
