"""The IMAP way in, against a real IMAP server (Dovecot, tests/imap_server.py): a
message appended with IMAP APPEND is taken once even when the poller runs twice or crashed
after taking it, it is marked (or moved) only after the take committed, and the clock starts at
the mailbox's Received time."""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.flows.request import inbound_message
from app.inbound import imap
from app.models import IntakeRequest, RequestMessage, RequestSource
from tests.conftest import child_env
from tests.imap_server import ImapServer, dovecot
from workers.inbound import poll_imap


@pytest.fixture(scope="module")
def server() -> Iterator[ImapServer]:
    with dovecot() as s:
        yield s


def _configure(monkeypatch: pytest.MonkeyPatch, server: ImapServer, processed: str) -> None:
    monkeypatch.setenv("INTAKE_IMAP_HOST", server.host)
    monkeypatch.setenv("INTAKE_IMAP_PORT", str(server.port))
    monkeypatch.setenv("INTAKE_IMAP_TLS", "none")
    monkeypatch.setenv("INTAKE_IMAP_USER", server.user)
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", server.password)
    monkeypatch.setenv("INTAKE_IMAP_FOLDER", "INBOX")
    monkeypatch.setenv("INTAKE_IMAP_PROCESSED_FOLDER", processed)
    get_settings.cache_clear()


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch, server: ImapServer) -> Iterator[ImapServer]:
    _configure(monkeypatch, server, "")
    server.clear()
    yield server
    get_settings.cache_clear()


@pytest.fixture
def moving_mailbox(monkeypatch: pytest.MonkeyPatch, server: ImapServer) -> Iterator[ImapServer]:
    _configure(monkeypatch, server, "Processed")
    server.clear()
    yield server
    get_settings.cache_clear()


def message(received: dt.datetime, *, subject: str) -> bytes:
    date = email.utils.format_datetime(received - dt.timedelta(minutes=3))
    stamp = email.utils.format_datetime(received)
    msgid = email.utils.make_msgid(domain="mail.example.net")
    return (
        "Received: from mail.example.net (mail.example.net [192.0.2.10])\r\n"
        "\tby imap.example.org (Postfix) with ESMTPS id 4Yk4AB\r\n"
        f"\tfor <requests@example.org>; {stamp}\r\n"
        "From: Dilnoza R <dilnoza.r@example.net>\r\n"
        "To: requests@example.org\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: {msgid}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "I need help with an expert report for my asylum appeal.\r\n"
    ).encode()


def email_requests(db: Session) -> list[IntakeRequest]:
    return list(
        db.scalars(select(IntakeRequest).where(IntakeRequest.source == RequestSource.email)).all()
    )


def test_a_message_appended_over_imap_is_taken_once_on_the_received_clock(
    db: Session, mailbox: ImapServer
) -> None:
    received = (now() - dt.timedelta(minutes=7)).replace(microsecond=0)
    mailbox.append(message(received, subject="Expert report please"))
    first = poll_imap()
    assert first["taken"] == {"created": 1}
    second = poll_imap()  # the message is marked: not even read again
    assert second["seen"] == 0 and second["taken"] == {}
    [req] = email_requests(db)
    assert req.received_at == received  # the Received header's time, not the poll's
    assert req.first_response_due_at == received + dt.timedelta(minutes=req.sla_minutes)
    taken = mailbox.search("INBOX", "KEYWORD", imap.TAKEN_KEYWORD, "SEEN")
    assert len(taken) == 1


def test_a_message_taken_before_a_crash_is_not_taken_again(
    db: Session, mailbox: ImapServer
) -> None:
    raw = message(now() - dt.timedelta(minutes=2), subject="Taken, then the poller died")
    mailbox.append(raw)
    # The previous poll committed the take and died before marking the message.
    assert inbound_message(db, raw, via="imap").action == "created"
    report = poll_imap()
    assert report["taken"] == {"duplicate": 1}
    assert len(email_requests(db)) == 1
    assert db.scalar(select(func.count()).select_from(RequestMessage)) == 1
    assert poll_imap()["seen"] == 0  # marked now


def test_a_failed_take_leaves_the_message_for_the_next_poll(
    db: Session, mailbox: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox.append(message(now() - dt.timedelta(minutes=1), subject="Database was down"))

    def broken(raw: bytes, received_at: dt.datetime | None) -> object:
        raise RuntimeError("database unavailable")

    report = imap.poll(broken)  # type: ignore[arg-type]
    assert report.failed == 1
    assert mailbox.search("INBOX", "UNKEYWORD", imap.TAKEN_KEYWORD) != []  # not marked
    assert poll_imap()["taken"] == {"created": 1}  # the next poll takes it
    assert len(email_requests(db)) == 1


def test_with_a_processed_folder_taken_messages_are_moved_there(
    db: Session, moving_mailbox: ImapServer
) -> None:
    moving_mailbox.append(message(now() - dt.timedelta(minutes=1), subject="Move me"))
    ooo = (
        b"From: away@example.net\r\nTo: requests@example.org\r\nSubject: Out of office\r\n"
        b"Auto-Submitted: auto-replied\r\nMessage-ID: <ooo-1@example.net>\r\n\r\nAway.\r\n"
    )
    moving_mailbox.append(ooo)
    report = poll_imap()
    assert report["taken"] == {"created": 1, "set_aside": 1}
    assert moving_mailbox.search("INBOX", "ALL") == []
    assert len(moving_mailbox.search("Processed", "ALL")) == 2
    assert poll_imap()["seen"] == 0
    assert len(email_requests(db)) == 1


@pytest.mark.parametrize(("host", "scheduled"), [("imap.example.org", True), ("", False)])
def test_beat_polls_the_mailbox_only_when_one_is_configured(host: str, scheduled: bool) -> None:
    code = (
        "from workers.celery_app import app; "
        "entry = app.conf.beat_schedule.get('inbound-poll-imap'); "
        "print(entry['task'], entry['schedule'].total_seconds() if entry else None)"
        " if entry else print('none')"
    )
    env = child_env(
        INTAKE_IMAP_HOST=host,
        INTAKE_IMAP_POLL_SECONDS="45",
        INTAKE_DATA_DIR=os.environ["INTAKE_DATA_DIR"],
        INTAKE_BROKER_URL="memory://",
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ("inbound.poll_imap 45.0" if scheduled else "none")
