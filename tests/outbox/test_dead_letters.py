"""Dead letters for staff, in-process: the list and the retry (roles, 404, 409), the alert to
staff and admins (no personal data, no loop), the admin's test e-mail, and how SMTP refusals
are told apart (5xx: dead at once; 4xx: retried) against a real SMTP server on loopback."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.models import OutboxMessage, OutboxStatus, Role
from app.notifications.service import TEST_EMAIL
from app.outbox import service
from app.outbox.service import DEAD_LETTER_ALERT
from tests.factories import create_user, drain, login
from tests.mail_reader import messages, text_of
from tests.smtp_server import Inbox, smtp_server


def _rows(db: Session, kind: str) -> list[OutboxMessage]:
    return list(
        db.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        )
    )


def _dead_row(db: Session) -> OutboxMessage:
    """A real dead letter: a test e-mail for an admin who no longer exists fails permanently."""
    row = service.enqueue(db, TEST_EMAIL, {"user_id": str(uuid.uuid4())})
    assert row is not None
    drain(db)
    db.refresh(row)
    assert row.status == OutboxStatus.dead
    return row


def _fresh(db: Session, row: OutboxMessage) -> OutboxMessage:
    db.refresh(row)
    return row


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """Every e-mail of this process goes to a real SMTP server on loopback."""
    with smtp_server() as (inbox, port):
        monkeypatch.setenv("INTAKE_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("INTAKE_SMTP_PORT", str(port))
        monkeypatch.setenv("INTAKE_SMTP_SECURITY", "none")
        monkeypatch.setenv("INTAKE_SMTP_TIMEOUT_SECONDS", "5")
        get_settings.cache_clear()
        try:
            yield inbox
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()


def test_staff_see_dead_letters_with_their_error(client: TestClient, db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    dead = _dead_row(db)
    resp = client.get("/api/v1/outbox/dead-letters", headers=login(client, staff))
    assert resp.status_code == 200, resp.text
    (item,) = [i for i in resp.json()["items"] if i["id"] == dead.id]
    assert item["kind"] == TEST_EMAIL
    assert item["attempts"] == 1
    assert item["last_error"] == "PermanentFailure: the admin who asked is gone"
    assert set(item) == {"id", "kind", "attempts", "last_error", "due_at", "updated_at"}


def test_only_staff_and_admins_see_or_retry_dead_letters(client: TestClient, db: Session) -> None:
    dead = _dead_row(db)
    assert client.get("/api/v1/outbox/dead-letters").status_code == 401
    assert client.post(f"/api/v1/outbox/{dead.id}/retry").status_code == 401
    expert = login(client, create_user(db, role=Role.expert))
    assert client.get("/api/v1/outbox/dead-letters", headers=expert).status_code == 403
    assert client.post(f"/api/v1/outbox/{dead.id}/retry", headers=expert).status_code == 403
    admin = login(client, create_user(db, role=Role.admin))
    assert client.get("/api/v1/outbox/dead-letters", headers=admin).status_code == 200
    db.refresh(dead)
    assert dead.status == OutboxStatus.dead  # the refused retries changed nothing


def test_retry_404_when_missing_and_409_when_not_dead(client: TestClient, db: Session) -> None:
    headers = login(client, create_user(db, role=Role.staff))
    resp = client.post("/api/v1/outbox/999999999/retry", headers=headers)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "outbox_message_not_found"
    pending = service.enqueue(
        db, TEST_EMAIL, {"to": "ops@example.org"}, due_at=now() + dt.timedelta(hours=1)
    )
    assert pending is not None
    resp = client.post(f"/api/v1/outbox/{pending.id}/retry", headers=headers)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "not_dead_lettered"
    drain(db)  # not due yet: still pending
    pending.due_at = now()
    db.flush()
    drain(db)
    db.refresh(pending)
    assert pending.status == OutboxStatus.sent
    assert client.post(f"/api/v1/outbox/{pending.id}/retry", headers=headers).status_code == 409


def test_dead_letter_alerts_every_active_staff_and_admin_without_personal_data(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    staff = create_user(db, role=Role.staff)
    admin = create_user(db, role=Role.admin)
    create_user(db, role=Role.expert)
    gone = create_user(db, role=Role.staff)
    gone.is_active = False
    db.flush()
    secret_address = "someone.private@example.org"
    row = service.enqueue(db, TEST_EMAIL, {"to": secret_address})
    assert row is not None
    # The last attempt fails: make the handler fail for real (an address the mail module
    # refuses to put in a header).
    row.params = {"to": "bad\r\naddress@example.org"}
    row.attempts = get_settings().outbox_max_attempts - 1
    db.flush()
    drain(db)
    db.refresh(row)
    assert row.status == OutboxStatus.dead

    alerts = _rows(db, DEAD_LETTER_ALERT)
    assert sorted(a.params["user_id"] for a in alerts) == sorted([str(staff.id), str(admin.id)])
    error_class = row.last_error.split(":", 1)[0] if row.last_error else ""
    for alert in alerts:
        assert alert.params == {
            "user_id": alert.params["user_id"],
            "outbox_id": row.id,
            "kind": TEST_EMAIL,
            "error": error_class,
        }
    drain(db)
    sent = messages(mail_dir)
    assert sorted(m["To"] for m in sent) == sorted([staff.email, admin.email])
    for msg in sent:
        body = text_of(msg)
        assert TEST_EMAIL in body and str(row.id) in body and error_class in body
        assert f"{get_settings().public_url}/api/v1/outbox/dead-letters" in body
        assert "private" not in msg.as_string() and "bad" not in body
    assert all(a.status == OutboxStatus.sent for a in _rows(db, DEAD_LETTER_ALERT))


def test_an_alert_that_dead_letters_raises_no_alert(db: Session) -> None:
    create_user(db, role=Role.staff)
    alert = service.enqueue(
        db, DEAD_LETTER_ALERT, {"user_id": "not-a-uuid", "outbox_id": 1, "kind": "x", "error": "E"}
    )
    assert alert is not None
    alert.attempts = get_settings().outbox_max_attempts - 1
    db.flush()
    drain(db)
    db.refresh(alert)
    assert alert.status == OutboxStatus.dead
    assert _rows(db, DEAD_LETTER_ALERT) == [alert]  # no alert about the alert


def test_admin_sends_a_test_email(client: TestClient, db: Session, mail_dir: Path) -> None:
    admin = create_user(db, role=Role.admin)
    headers = login(client, admin)
    resp = client.post("/api/v1/admin/mail/test", json={"to": "Ops@Example.org"}, headers=headers)
    assert resp.status_code == 202, resp.text
    row = db.get(OutboxMessage, resp.json()["outbox_id"])
    assert row is not None and row.kind == TEST_EMAIL and row.params == {"to": "ops@example.org"}
    own = client.post("/api/v1/admin/mail/test", json={}, headers=headers)
    assert own.status_code == 202
    own_row = db.get(OutboxMessage, own.json()["outbox_id"])
    assert own_row is not None and own_row.params == {"user_id": str(admin.id)}  # an id only
    assert drain(db) == 2
    sent = {m["To"]: m for m in messages(mail_dir)}
    assert set(sent) == {"ops@example.org", admin.email}
    assert sent["ops@example.org"]["Message-ID"] == f"<outbox-{row.id}@localhost>"
    assert "outgoing mail works" in text_of(sent["ops@example.org"])


def test_only_admins_send_test_emails(client: TestClient, db: Session) -> None:
    body: dict[str, Any] = {"to": "ops@example.org"}
    assert client.post("/api/v1/admin/mail/test", json=body).status_code == 401
    staff = login(client, create_user(db, role=Role.staff))
    assert client.post("/api/v1/admin/mail/test", json=body, headers=staff).status_code == 403
    admin = login(client, create_user(db, role=Role.admin))
    bad = client.post("/api/v1/admin/mail/test", json={"to": "not an address"}, headers=admin)
    assert bad.status_code == 422
    assert _rows(db, TEST_EMAIL) == []


def test_a_permanent_smtp_refusal_dead_letters_at_once_and_staff_retry_delivers(
    client: TestClient, db: Session, smtp: Inbox
) -> None:
    headers = login(client, create_user(db, role=Role.staff))
    row = service.enqueue(db, TEST_EMAIL, {"to": "nobody@example.org"})
    assert row is not None
    smtp.refuse_with = "550 no such user"
    drain(db)
    db.refresh(row)
    assert row.status == OutboxStatus.dead and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("MailRefused:")
    assert "550" in row.last_error
    # The staff alert went out on the same (refusing) server: dead too, and no alert loop.
    drain(db)
    alerts = _rows(db, DEAD_LETTER_ALERT)
    assert len(alerts) == 1 and alerts[0].status == OutboxStatus.dead
    assert len(_rows(db, DEAD_LETTER_ALERT)) == 1

    smtp.refuse_with = None
    resp = client.post(f"/api/v1/outbox/{row.id}/retry", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "pending" and resp.json()["attempts"] == 0
    drain(db)
    assert _fresh(db, row).status == OutboxStatus.sent and row.last_error is None
    assert [m["Message-ID"] for m in smtp.messages] == [f"<outbox-{row.id}@localhost>"]


def test_a_temporary_smtp_refusal_is_retried_with_backoff(db: Session, smtp: Inbox) -> None:
    row = service.enqueue(db, TEST_EMAIL, {"to": "busy@example.org"})
    assert row is not None
    smtp.refuse_with = "451 try later"
    before = now()
    drain(db)
    db.refresh(row)
    assert row.status == OutboxStatus.pending and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("MailError:")
    assert row.due_at > before  # backed off, not due at once
    assert _rows(db, DEAD_LETTER_ALERT) == []
