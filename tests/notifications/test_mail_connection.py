"""``mail.smtp_connection()``: the worker sends a batch over one SMTP connection, reconnects when
the server has dropped it, and a refusal of one message does not lose the connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from app.core.settings import Settings, load_settings
from app.notifications import mail
from tests.smtp_server import Inbox, free_port


class Sessions(Inbox):
    """Counts SMTP sessions (one EHLO each)."""

    def __init__(self) -> None:
        super().__init__()
        self.ehlos = 0

    async def handle_EHLO(
        self, _server: Any, session: Any, _envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.ehlos += 1
        session.host_name = hostname
        return responses


def _settings(tmp_path: Path, port: int) -> Settings:
    return load_settings(
        data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"
    )


def _send(n: int, settings: Settings) -> None:
    msg = mail.build_message(
        to=f"r{n}@example.org",
        subject="s",
        text="t",
        message_id=mail.stable_message_id(f"outbox-{n}", settings),
        settings=settings,
    )
    mail.send(msg, settings)


def test_one_connection_for_a_batch_and_one_per_message_without(tmp_path: Path) -> None:
    inbox = Sessions()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings = _settings(tmp_path, controller.port)
        with mail.smtp_connection():
            for n in range(5):
                _send(n, settings)
        assert len(inbox.messages) == 5 and inbox.ehlos == 1
        _send(5, settings)
        _send(6, settings)
        assert len(inbox.messages) == 7 and inbox.ehlos == 3
    finally:
        controller.stop()


def test_a_refusal_keeps_the_connection_and_a_dropped_one_is_reopened(tmp_path: Path) -> None:
    port = free_port()
    inbox = Sessions()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings = _settings(tmp_path, port)
    try:
        with mail.smtp_connection():
            _send(1, settings)
            inbox.refuse_with = "550 no such user"
            try:
                _send(2, settings)
            except mail.MailRefused:
                pass
            else:
                raise AssertionError("550 must raise MailRefused")
            inbox.refuse_with = None
            _send(3, settings)
            assert inbox.ehlos == 1
            # The server goes away and comes back (e.g. it closed an idle connection).
            controller.stop()
            controller = Controller(inbox, hostname="127.0.0.1", port=port)
            controller.start()
            _send(4, settings)
        ids = [str(m["Message-ID"]) for m in inbox.messages]
        assert ids == [f"<outbox-{n}@localhost>" for n in (1, 3, 4)]
        assert inbox.ehlos == 2
    finally:
        controller.stop()
