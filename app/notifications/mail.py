"""The one mail module: build a message, and send it as an .eml file (embedded default, under
``var/mail/``) or over SMTP (STARTTLS or implicit TLS, with login) in production."""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from app.core.settings import Settings, get_settings
from app.core.time import now


class MailError(Exception):
    """Sending failed; the outbox retries."""


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


def _send_smtp(msg: EmailMessage, settings: Settings) -> None:
    timeout = settings.smtp_timeout_seconds
    ca = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    try:
        if settings.smtp_security == "tls":
            ctx = ssl.create_default_context(cafile=ca)
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=timeout, context=ctx
            )
        else:
            client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context(cafile=ca))
            if settings.smtp_username:
                password = (
                    settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                )
                client.login(settings.smtp_username, password)
            refused = client.send_message(msg)
            if refused:
                raise MailError(f"recipients refused: {len(refused)}")
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}") from exc
