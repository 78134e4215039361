"""The one mail module: build a message, and send it as an .eml file (embedded default, under
``var/mail/``) or over SMTP (STARTTLS or implicit TLS, with login) in production."""

from __future__ import annotations

import contextlib
import contextvars
import os
import smtplib
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from app.core.settings import Settings, get_settings
from app.core.time import now
from app.outbox.registry import PermanentFailure


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
) -> EmailMessage:
    settings = settings or get_settings()
    msg = EmailMessage()
    msg["From"] = sender or settings.mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now())
    msg["Message-ID"] = message_id or make_msgid(domain=_domain(settings))
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for alt in alternatives or []:
        # e.g. text/calendar; method=REQUEST, so mail clients offer to add the event
        msg.add_alternative(alt.content.decode(), subtype=alt.subtype, params=alt.params or None)
    for att in attachments or []:
        msg.add_attachment(
            att.content, maintype=att.maintype, subtype=att.subtype, filename=att.filename
        )
    return msg


def _domain(settings: Settings) -> str:
    addr = settings.mail_from.rsplit("<", 1)[-1].rstrip(">")
    return addr.rsplit("@", 1)[-1] if "@" in addr else "localhost"


def stable_message_id(key: str, settings: Settings | None = None) -> str:
    """A Message-ID derived from an outbox row, so a resend of the same row is recognisable."""
    return f"<{key}@{_domain(settings or get_settings())}>"


def send(msg: EmailMessage, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    if settings.mail_backend == "file":
        _write_file(msg, settings.mail_dir)
    else:
        _send_smtp(msg, settings)


def _write_file(msg: EmailMessage, folder: Path) -> Path:
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


def _send_smtp(msg: EmailMessage, settings: Settings) -> None:
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


def _transmit(client: smtplib.SMTP, msg: EmailMessage) -> None:
    refused = client.send_message(msg)
    if refused:
        codes = [code for code, _ in refused.values()]
        error = MailRefused if all(_is_permanent(c) for c in codes) else MailError
        raise error(f"recipients refused: {len(refused)}")
