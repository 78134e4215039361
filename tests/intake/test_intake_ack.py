"""The acknowledgement and the recovered link go out through the outbox, rendered at send time
in the requester's language; discreet requests get a neutral subject and sender; a recipient
address gets only a few such e-mails a day."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.models import IntakeRequest, OutboxMessage, OutboxStatus, RequestHistory
from tests.factories import drain, submit
from tests.mail_reader import clear, messages, text_of


def _req(db: Session, reference: str) -> IntakeRequest:
    req = db.scalar(select(IntakeRequest).where(IntakeRequest.reference == reference))
    assert req is not None
    return req


INTAKE_ACTIONS = {"submitted", "linked", "ack_queued", "ack_capped", "link_queued", "link_capped"}


def _actions(db: Session, req: IntakeRequest) -> list[str]:
    """This domain's history rows (routing, a later issue, adds its own)."""
    return [
        a
        for a in db.scalars(
            select(RequestHistory.action)
            .where(RequestHistory.request_id == req.id)
            .order_by(RequestHistory.id)
        ).all()
        if a in INTAKE_ACTIONS
    ]


def test_the_acknowledgement_is_an_outbox_row_sent_by_the_worker_path(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    body = submit(client, email="ack-en@example.org")
    req = _req(db, body["reference"])
    rows = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "intake.ack")).all()
    assert len(rows) == 1 and rows[0].params == {"request_id": str(req.id)}
    assert messages(mail_dir) == []  # nothing is sent by the request itself
    assert drain(db) == 1
    (msg,) = messages(mail_dir)
    assert msg["To"] == "ack-en@example.org"
    assert msg["From"] == get_settings().mail_from
    assert body["reference"] in str(msg["Subject"])
    text = text_of(msg)
    assert "What happens next" in text
    assert "60 minutes" in text
    link = f"{get_settings().public_url}/r/{body['reference']}#token={body['access_token']}"
    assert link in text
    assert f"/r/{body['reference']}/book#token=" in text  # a consultation was asked for
    db.refresh(rows[0])
    assert rows[0].status == OutboxStatus.sent
    assert _actions(db, req) == ["submitted", "ack_queued"]
    # A second pump sends nothing more.
    assert drain(db) == 0 and len(messages(mail_dir)) == 1


def test_the_due_time_is_shown_in_the_requesters_zone(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    import datetime as dt
    import zoneinfo

    body = submit(client, timezone="Asia/Bishkek")
    drain(db)
    due = dt.datetime.fromisoformat(body["first_response_due_at"])
    local = due.astimezone(zoneinfo.ZoneInfo("Asia/Bishkek"))
    words = f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M} (Bishkek time)"
    assert f"by {words}, through" in text_of(messages(mail_dir)[0])


@pytest.mark.parametrize("language", ["ru", "ru-RU"])
def test_russian_requesters_get_it_in_russian(
    client: TestClient, db: Session, mail_dir: Path, language: str
) -> None:
    body = submit(client, language=language)
    drain(db)
    (msg,) = messages(mail_dir)
    assert "Мы получили" in str(msg["Subject"])
    text = text_of(msg)
    assert "Что будет дальше" in text and "What happens next" not in text
    assert body["access_token"] in text


def test_an_unsupported_language_falls_back_to_english(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    submit(client, language="sw")
    drain(db)
    assert "What happens next" in text_of(messages(mail_dir)[0])


@pytest.mark.parametrize("language", ["en", "ru"])
def test_discreet_requests_get_a_neutral_subject_and_sender(
    client: TestClient, db: Session, mail_dir: Path, language: str
) -> None:
    body = submit(client, discreet=True, language=language)
    drain(db)
    (msg,) = messages(mail_dir)
    subject = str(msg["Subject"]).lower()
    assert "asylum" not in subject and "убежищ" not in subject
    assert "report" not in subject and "заключени" not in subject
    assert body["reference"] in str(msg["Subject"])
    assert msg["From"] == get_settings().mail_from_discreet
    assert msg["From"] != get_settings().mail_from


def test_not_discreet_subject_does_name_the_service(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    submit(client, discreet=False)
    drain(db)
    assert "asylum" in str(messages(mail_dir)[0]["Subject"]).lower()


def test_acknowledgements_per_address_are_capped_per_day(
    client: TestClient, db: Session, mail_dir: Path, clock: object
) -> None:
    cap = get_settings().ack_cap_per_address_per_day
    countries = ["SY", "IR", "IQ", "AF", "ER", "RU", "BY"]
    refs = [
        submit(client, email="victim@example.org", country_of_origin=countries[i])["reference"]
        for i in range(cap + 2)
    ]
    other = submit(client, email="someone-else@example.org")["reference"]
    drain(db)
    to_victim = [m for m in messages(mail_dir) if m["To"] == "victim@example.org"]
    assert len(to_victim) == cap
    for ref in refs[cap:]:
        req = _req(db, ref)
        # Recorded, not silently dropped, and stored like any other request.
        assert _actions(db, req) == ["submitted", "ack_capped"]
        assert req.status.value == "new"
    assert "ack_queued" in _actions(db, _req(db, other))
    # The next day the address gets its acknowledgements again.
    clock.advance(hours=25)  # type: ignore[attr-defined]
    submit(client, email="victim@example.org", country_of_origin="SY")
    drain(db)
    assert len([m for m in messages(mail_dir) if m["To"] == "victim@example.org"]) == cap + 1


# Recovering the link --------------------------------------------------------------------------


def _recover(client: TestClient, reference: str, email: str) -> object:
    return client.post("/api/v1/requests/recover", json={"reference": reference, "email": email})


def test_recover_answers_the_same_and_mails_only_the_stored_address(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    body = submit(client, email="stored@example.org")
    drain(db)
    clear(mail_dir)
    match = _recover(client, body["reference"].lower(), "Stored@Example.org")
    wrong_email = _recover(client, body["reference"], "attacker@example.org")
    unknown_ref = _recover(client, "ZZZZZZZZ", "stored@example.org")
    nonsense_ref = _recover(client, "not-a-reference!", "stored@example.org")
    answers = [r.status_code for r in (match, wrong_email, unknown_ref, nonsense_ref)]  # type: ignore[attr-defined]
    assert answers == [202] * 4
    bodies = {r.text for r in (match, wrong_email, unknown_ref, nonsense_ref)}  # type: ignore[attr-defined]
    assert len(bodies) == 1
    assert drain(db) == 1
    (msg,) = messages(mail_dir)
    assert msg["To"] == "stored@example.org"
    assert f"#token={body['access_token']}" in text_of(msg)
    assert "link_queued" in _actions(db, _req(db, body["reference"]))


def test_recovery_e_mails_count_towards_the_daily_cap(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    cap = get_settings().ack_cap_per_address_per_day
    body = submit(client, email="flood@example.org")
    for _ in range(cap + 3):
        assert _recover(client, body["reference"], "flood@example.org").status_code == 202  # type: ignore[attr-defined]
    drain(db)
    assert len(messages(mail_dir)) == cap
    assert "link_capped" in _actions(db, _req(db, body["reference"]))


def test_the_link_e_mail_is_in_the_requesters_language_and_discreet(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    body = submit(client, email="ru@example.org", language="ru", discreet=True)
    drain(db)
    clear(mail_dir)
    _recover(client, body["reference"], "ru@example.org")
    drain(db)
    (msg,) = messages(mail_dir)
    assert "Ваша ссылка" in str(msg["Subject"])
    assert msg["From"] == get_settings().mail_from_discreet


@pytest.mark.sqlite
def test_acknowledgement_on_sqlite(client: TestClient, db: Session, mail_dir: Path) -> None:
    body = submit(client, email="lite@example.org", language="ru")
    assert drain(db) == 1
    (msg,) = messages(mail_dir)
    assert msg["To"] == "lite@example.org" and body["access_token"] in text_of(msg)
