"""A real SMTP server on loopback (aiosmtpd) for tests: plain, STARTTLS with login, refusing."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.core.time import now
from tests.mail_reader import parse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    refuse_with: str | None = None  # e.g. "550 mailbox unavailable"
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.refuse_with:
            return self.refuse_with
        self.messages.append(parse(envelope.original_content))
        return "250 OK"


@dataclass
class GatedInbox(Inbox):
    """A server that takes each message as soon as its DATA is in (from then on it has it, as a
    relay that queued it would) but, while the gate is ``close()``d, holds back its "250 OK":
    the sender sits in the middle of its SMTP transaction until ``open()``. A sender killed
    meanwhile never learns that the message arrived and sends it again: the worst case for
    duplicates. ``arrivals`` records each copy's Message-ID and time (``app.core.time.now``,
    so the controlled clock applies)."""

    arrivals: list[tuple[str, dt.datetime]] = field(default_factory=list)
    held: list[EmailMessage] = field(default_factory=list)
    _gate: threading.Event = field(default_factory=threading.Event)
    _waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._gate.set()

    def close(self) -> None:
        self._gate.clear()

    def open(self) -> None:
        self._gate.set()
        for loop, opened in list(self._waiters):
            with suppress(RuntimeError):  # the server stopped already
                loop.call_soon_threadsafe(opened.set)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = parse(envelope.original_content)
        self.messages.append(message)
        self.arrivals.append((str(message["Message-ID"]), now()))
        if not self._gate.is_set():
            self.held.append(message)
            opened = asyncio.Event()
            self._waiters.append((asyncio.get_running_loop(), opened))
            if not self._gate.is_set():  # not opened between the two checks
                await opened.wait()  # a closed connection cancels the wait
        return "250 OK"


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "smtp.crt", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def smtp_server(
    *, tls_dir: Path | None = None, username: str = "", password: str = ""
) -> Iterator[tuple[Inbox, int]]:
    """Yields (inbox, port). With tls_dir: STARTTLS offered and LOGIN required."""
    inbox = Inbox()
    port = free_port()
    kwargs: dict[str, Any] = {}
    if tls_dir is not None:
        cert, key = self_signed(tls_dir)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)

        def authenticator(_s: Any, _sess: Any, _env: Any, _mech: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (
                data.login.decode() == username and data.password.decode() == password
            )
            if ok:
                inbox.logins.append(username)
            # handled=False: aiosmtpd answers a refusal (535) itself; with its default (True) it
            # expects the authenticator to have answered, and the client waits for its timeout.
            return AuthResult(success=ok, handled=False)

        kwargs = {
            "tls_context": ctx,
            "require_starttls": True,
            "authenticator": authenticator,
            "auth_required": True,
        }
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
