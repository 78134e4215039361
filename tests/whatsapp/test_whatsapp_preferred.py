"""A requester who chose WhatsApp on the form is told there: the acknowledgement and the
consultation reminders as approved templates in their language (neutral when discreet). The
e-mail is the fallback, sent once: WhatsApp not connected, no usable number, a template refused
or reported failed, WhatsApp down for the whole retry window. Never both when WhatsApp worked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.intake.records import reveal_pii
from app.models import (
    IntakeRequest,
    OutboxMessage,
    OutboxStatus,
    RequestHistory,
    Role,
    WhatsAppStatus,
)
from app.notifications.dates import when_in_words
from app.sendouts import service as sendouts
from tests.conftest import Clock
from tests.factories import booked_consultation, create_expert, drain_all, submit
from tests.fakes.whatsapp_fake import FakeWhatsApp
from tests.mail_reader import messages, text_of
from tests.whatsapp.conftest import MAX_ATTEMPTS, deliver, wa_messages

NUMBER = "4915112345678"


def _submit(db: Session, **overrides: object) -> IntakeRequest:
    fields: dict[str, object] = {
        "preferred_channel": "whatsapp",
        "whatsapp": f"+{NUMBER}",
        "language": "ru",
    }
    req = submit(db, process=False, **(fields | overrides))
    drain_all(db)  # the submitted flow, then what it queued
    return req


def _acks(mail_dir: Path, req: IntakeRequest, db: Session) -> list[str]:
    found = messages(mail_dir, to=_email_of(db, req))
    return [str(m["Subject"]) for m in found if req.reference in text_of(m)]


def _email_of(db: Session, req: IntakeRequest) -> str:
    pii = reveal_pii(req)
    assert pii is not None
    return str(pii["email"])


def _templates(wa: FakeWhatsApp) -> list[dict[str, object]]:
    return [s["template"] for s in wa.sent if s["type"] == "template"]


def _history(db: Session, req: IntakeRequest, action: str) -> list[RequestHistory]:
    return list(
        db.scalars(
            select(RequestHistory).where(
                RequestHistory.request_id == req.id, RequestHistory.action == action
            )
        )
    )


@pytest.mark.parametrize(
    ("language", "discreet", "name"),
    [
        ("ru", False, "intake_acknowledgement"),
        ("es-MX", True, "intake_acknowledgement_neutral"),
    ],
)
def test_the_acknowledgement_goes_on_whatsapp_and_no_email(
    db: Session, wa: FakeWhatsApp, mail_dir: Path, language: str, discreet: bool, name: str
) -> None:
    req = _submit(db, language=language, discreet=discreet)
    [sent] = wa.sent
    assert sent["to"] == NUMBER
    assert sent["template"] == {
        "name": name,
        "language": {"code": language[:2]},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": req.reference}]}],
    }
    assert _acks(mail_dir, req, db) == []
    [wm] = wa_messages(db, direction="outbound")
    assert wm.status == WhatsAppStatus.sent and wm.template == name
    assert [h.details for h in _history(db, req, "ack_queued")] == [{"via": "whatsapp"}]
    assert req.first_responded_at is None  # automatic: never the first response


def test_email_preferred_gets_the_email_only(db: Session, wa: FakeWhatsApp, mail_dir: Path) -> None:
    req = _submit(db, preferred_channel="email")
    assert wa.sent == []
    assert len(_acks(mail_dir, req, db)) == 1


def test_whatsapp_not_connected_sends_the_email(db: Session, mail_dir: Path) -> None:
    req = _submit(db)
    assert len(_acks(mail_dir, req, db)) == 1
    assert wa_messages(db) == []
    assert [h.details for h in _history(db, req, "ack_queued")] in ([None], [{}])


def test_a_refused_template_falls_back_to_the_email_once(
    db: Session, wa: FakeWhatsApp, mail_dir: Path
) -> None:
    del wa.templates[("intake_acknowledgement", "ru")]  # not approved in Russian
    req = _submit(db)
    assert wa.sent == []  # 404 132001: refused, nothing accepted
    [wm] = wa_messages(db, direction="outbound")
    assert wm.status == WhatsAppStatus.failed and wm.error_code == 132001
    assert len(_acks(mail_dir, req, db)) == 1
    assert len(_history(db, req, "whatsapp_fallback")) == 1
    drain_all(db)
    assert len(_acks(mail_dir, req, db)) == 1


def test_a_template_reported_failed_falls_back_once(
    client: TestClient, db: Session, wa: FakeWhatsApp, mail_dir: Path
) -> None:
    wa.unreachable.add(NUMBER)
    req = _submit(db)
    assert len(_templates(wa)) == 1 and _acks(mail_dir, req, db) == []  # accepted, for now
    deliver(client, wa, db)  # Meta reports 131026 (undeliverable)
    [wm] = wa_messages(db, direction="outbound")
    assert wm.status == WhatsAppStatus.failed and wm.error_code == 131026
    assert len(_acks(mail_dir, req, db)) == 1
    wa.status(str(wm.wamid), "failed", errors=[{"code": 131026, "title": "Undeliverable"}])
    deliver(client, wa, db)
    assert len(_acks(mail_dir, req, db)) == 1


def test_whatsapp_down_for_the_whole_retry_window_falls_back(
    db: Session, wa: FakeWhatsApp, mail_dir: Path, clock: Clock
) -> None:
    wa.fail_next(MAX_ATTEMPTS, "503")
    req = _submit(db)  # the first attempt
    for _ in range(MAX_ATTEMPTS - 1):
        assert _acks(mail_dir, req, db) == []
        clock.advance(hours=1)
        drain_all(db)
    assert wa.sent == []
    assert len(_acks(mail_dir, req, db)) == 1
    [row] = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "whatsapp.send"))
    assert row.status == OutboxStatus.sent  # fell back: not a dead letter
    [wm] = wa_messages(db, direction="outbound")
    assert wm.status == WhatsAppStatus.failed


def _booked(db: Session, req: IntakeRequest) -> tuple[dt.datetime, str]:
    expert = create_expert(db, countries=["KG"], languages=["ru"])
    assert expert.role == Role.expert
    c = booked_consultation(db, req, expert, hours=3)
    sendouts.sync_reminders(db, c)  # the one-hour reminder only (the day's is past)
    return c.start_at, expert.email


def _reminder_mails(mail_dir: Path, to: str) -> list[str]:
    return [str(m["Subject"]) for m in messages(mail_dir, to=to) if "[" in str(m["Subject"])]


def test_the_consultation_reminder_goes_on_whatsapp(
    db: Session, wa: FakeWhatsApp, mail_dir: Path, clock: Clock
) -> None:
    req = _submit(db, language="ar", timezone="Asia/Damascus")
    start, expert_email = _booked(db, req)
    wa.sent.clear()
    clock.advance(hours=2, minutes=1)
    drain_all(db)
    [template] = _templates(wa)
    when = when_in_words(start, "Asia/Damascus", "ar")
    assert template == {
        "name": "consultation_reminder",
        "language": {"code": "ar"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": req.reference},
                    {"type": "text", "text": when},
                ],
            }
        ],
    }
    address = _email_of(db, req)
    assert [s for s in _reminder_mails(mail_dir, address) if "تذكير" in s] == []
    assert len(_reminder_mails(mail_dir, expert_email)) == 1  # the expert's stays an e-mail


def test_a_failed_reminder_template_falls_back_to_the_reminder_email(
    client: TestClient, db: Session, wa: FakeWhatsApp, mail_dir: Path, clock: Clock
) -> None:
    req = _submit(db, discreet=True)
    start, _expert = _booked(db, req)
    wa.unreachable.add(NUMBER)
    clock.advance(hours=2, minutes=1)
    drain_all(db)
    [template] = _templates(wa)[1:]
    assert template["name"] == "consultation_reminder_neutral"
    deliver(client, wa, db)  # 131026 for the acknowledgement's number too: it was sent before
    address = _email_of(db, req)
    reminders = [s for s in _reminder_mails(mail_dir, address) if s.startswith("Напоминание")]
    assert len(reminders) == 1
    assert start > now()  # in time: the fallback went at once
