"""Requests and replies that arrive by e-mail: a new message opens a request in
triage on the mailbox's clock, replies thread onto their request, acknowledgements are capped,
a 25 MB message still opens a request, and staff completing the fields routes it."""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.flows.request import inbound_message
from app.inbound import service
from app.intake import keys
from app.intake import records as intake
from app.models import (
    Document,
    IntakeRequest,
    MessageDirection,
    MessageKind,
    RequestMessage,
    RequestSource,
    RequestStatus,
    Role,
    RoutingDecision,
)
from tests.conftest import Clock
from tests.factories import (
    SENDER,
    create_user,
    drain,
    fixture,
    history,
    login,
    outbox_rows,
    plain,
    request_of,
)
from tests.mail_reader import messages, text_of


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("INTAKE_INBOUND_ACK_DAILY_CAP", "2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_new_message_opens_a_request_in_triage_on_the_mailbox_clock(
    db: Session, mail_dir: Path, clock: Clock
) -> None:
    # Taken in five minutes after the mailbox received it (a mailbox time ahead of now is not
    # believed, so the suite's own instant must not come before it).
    clock.at(dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC))
    staff = create_user(db, role=Role.staff)
    outcome = inbound_message(db, fixture("new_request_gmail.eml"), via="webhook")
    assert outcome.action == "created"
    req = request_of(db, outcome.reference)
    assert req.source == RequestSource.email
    assert req.status == RequestStatus.new
    assert req.country_of_origin is None and req.country_of_residence is None
    assert req.assigned_expert_id is None
    # The clock starts at the Received header's time, not at the Date (09:55 +0100) nor now.
    assert req.received_at == dt.datetime(2026, 11, 23, 8, 55, 12, tzinfo=dt.UTC)
    assert req.first_response_due_at == req.received_at + dt.timedelta(minutes=60)
    assert req.email_lookup == keys.email_lookup(db, SENDER)

    pii = intake.reveal_pii(req)
    assert pii is not None and pii["email"] == SENDER
    row = db.scalars(select(RequestMessage).where(RequestMessage.request_id == req.id)).one()
    assert (row.direction, row.kind) == (MessageDirection.inbound, MessageKind.requester)
    assert row.message_id == "CAJx9q2tQ4n0u1Z2pE0+Yw8sXc5mVbN3r7hA@mail.gmail.example"
    assert SENDER.encode() not in (row.data_enc or b"")
    data = service.reveal_message(req, row)
    assert data is not None
    assert "expert report" in data["body"] and "<b>" not in data["body"]
    assert "alert(1)" not in data["body"]  # scripts dropped when HTML is reduced to text
    kept = {a["filename"]: a for a in data["attachments"]}
    assert kept["setup.exe"]["refused"] == "type" and kept["setup.exe"]["document_id"] is None
    pdf = kept["refusal-letter.pdf"]
    assert pdf["refused"] is None
    doc = db.get(Document, __import__("uuid").UUID(pdf["document_id"]))
    assert doc is not None and doc.filename == "attachment"  # the real name is encrypted
    assert doc.data is not None and not doc.data.startswith(b"%PDF")  # stored encrypted
    opened = service.reveal_attachment(req, doc.data)
    assert opened is not None and opened.startswith(b"%PDF-")

    # On-duty staff are alerted; the sender is acknowledged, told what was left out.
    assert [r.params["user_id"] for r in outbox_rows(db, service.TRIAGE_ALERT_KIND)] == [
        str(staff.id)
    ]
    assert history(db, req, "ack_queued")
    drain(db)
    sent = messages(mail_dir)
    ack = next(m for m in sent if m["To"] == SENDER)
    assert req.reference in str(ack["Subject"])
    assert ack["In-Reply-To"] == f"<{row.message_id}>"
    assert "setup.exe" in text_of(ack) and "refusal-letter.pdf" not in text_of(ack)
    alert = next(m for m in sent if m["To"] == staff.email)
    assert req.reference in str(alert["Subject"])
    assert SENDER not in alert.as_string() and "Amina" not in alert.as_string()
    # The acknowledgement's Message-ID is recorded, so a reply to it threads.
    recorded = db.scalars(
        select(RequestMessage).where(
            RequestMessage.request_id == req.id,
            RequestMessage.direction == MessageDirection.outbound,
        )
    ).one()
    assert f"<{recorded.message_id}>" == ack["Message-ID"]
    assert recorded.kind == MessageKind.automatic


def test_a_reply_threads_by_in_reply_to_and_leaves_the_clock_alone(
    db: Session, mail_dir: Path
) -> None:
    created = inbound_message(db, fixture("new_request_gmail.eml"))
    req = request_of(db, created.reference)
    drain(db)
    ack = next(m for m in messages(mail_dir) if m["To"] == SENDER)
    due, responded = req.first_response_due_at, req.first_responded_at
    raw = plain(subject="Re: your message", body="More details", In_Reply_To=ack["Message-ID"])
    outcome = inbound_message(db, raw)
    assert (outcome.action, outcome.reference) == ("reply", req.reference)
    db.refresh(req)
    assert (req.first_response_due_at, req.first_responded_at) == (due, responded)
    assert req.status == RequestStatus.new
    [event] = history(db, req, "requester_message")
    assert event.actor == "requester" and event.details["threaded_by"] == "headers"
    assert db.scalar(select(func.count()).select_from(IntakeRequest)) == 1


def test_a_webmail_reply_without_threading_headers_lands_by_the_subject_reference(
    db: Session,
) -> None:
    req = request_of(db, inbound_message(db, fixture("new_request_gmail.eml")).reference)
    raw = fixture("webmail_reply_no_threading.eml", REFERENCE=req.reference)
    outcome = inbound_message(db, raw)
    assert (outcome.action, outcome.reference) == ("reply", req.reference)
    [event] = history(db, req, "requester_message")
    assert event.details["threaded_by"] == "subject"
    row = db.scalars(
        select(RequestMessage).where(
            RequestMessage.request_id == req.id, RequestMessage.message_id.like("CAJx9q2v7m%")
        )
    ).one()
    data = service.reveal_message(req, row)
    assert data is not None and "4 December" in data["body"]


def test_the_same_reference_from_another_sender_opens_a_possible_follow_up(db: Session) -> None:
    first = request_of(db, inbound_message(db, fixture("new_request_gmail.eml")).reference)
    raw = fixture(
        "webmail_reply_no_threading.eml",
        REFERENCE=first.reference,
        **{"amina.k@example.net": "lawyer@firm.example"},
    )
    outcome = inbound_message(db, raw)
    assert outcome.action == "follow_up" and outcome.reference != first.reference
    second = request_of(db, outcome.reference)
    assert second.linked_request_id == first.id
    [flag] = history(db, second, "possible_follow_up")
    assert flag.details["reference"] == first.reference
    assert not history(db, first, "requester_message")


def test_acknowledgements_to_one_sender_are_capped_per_day(db: Session, cap: None) -> None:
    refs = [inbound_message(db, plain(subject=f"Request {n}")).reference for n in range(3)]
    reqs = [request_of(db, r) for r in refs]
    assert [bool(history(db, r, "ack_queued")) for r in reqs] == [True, True, False]
    assert history(db, reqs[2], "ack_capped")[0].details == {"cap": 2}
    assert len(outbox_rows(db, service.ACK_KIND)) == 2
    # Another sender is not affected.
    other = request_of(db, inbound_message(db, plain(sender="someone@else.example")).reference)
    assert history(db, other, "ack_queued")


def test_a_25_mb_message_opens_a_request_with_its_attachments_left_out_and_listed(
    db: Session, mail_dir: Path
) -> None:
    msg = EmailMessage()
    msg["From"] = f"Amina K <{SENDER}>"
    msg["To"] = "requests@example.org"
    msg["Subject"] = "Scans of my documents"
    msg["Date"] = email.utils.format_datetime(now())
    msg["Message-ID"] = "<big-25mb@mail.example.net>"
    msg.set_content("All my documents are attached.")
    msg.add_attachment(
        b"%PDF-1.4\n" + b"\0" * (19 * 1024 * 1024),
        maintype="application",
        subtype="pdf",
        filename="court-file.pdf",
    )
    msg.add_attachment(
        b"\xff\xd8\xff" + b"1" * 1024, maintype="image", subtype="jpeg", filename="passport.jpg"
    )
    raw = msg.as_bytes()
    assert len(raw) >= 25 * 1024 * 1024
    outcome = inbound_message(db, raw)
    assert outcome.action == "created"  # the promise holds
    req = request_of(db, outcome.reference)
    row = db.scalars(select(RequestMessage).where(RequestMessage.request_id == req.id)).one()
    data = service.reveal_message(req, row)
    assert data is not None and "attached" in data["body"]
    assert {a["filename"]: a["refused"] for a in data["attachments"]} == {
        "court-file.pdf": "message_too_large",
        "passport.jpg": "message_too_large",
    }
    assert db.scalar(select(func.count()).select_from(Document)) == 0
    drain(db)
    ack = next(m for m in messages(mail_dir) if m["To"] == SENDER)
    assert "court-file.pdf" in text_of(ack) and "passport.jpg" in text_of(ack)


def test_staff_complete_the_fields_and_the_request_is_routed(client: object, db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    req = request_of(db, inbound_message(db, fixture("new_request_gmail.eml")).reference)
    assert db.scalar(select(func.count()).where(RoutingDecision.request_id == req.id)) == 0
    headers = login(client, staff)
    url = f"/api/v1/cases/{req.reference}/triage"
    bad = client.patch(  # type: ignore[attr-defined]
        url,
        json={"country_of_origin": "QQ", "country_of_residence": "GB", "language": "en"},
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "country_of_origin"
    resp = client.patch(  # type: ignore[attr-defined]
        url,
        json={"country_of_origin": "kg", "country_of_residence": "GB", "language": "ru"},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["country_of_origin"] == "KG"
    db.refresh(req)
    assert (req.country_of_origin, req.country_of_residence, req.language) == ("KG", "GB", "ru")
    assert history(db, req, "triage_completed")[0].actor == f"user:{staff.id}"
    # Routing ran only now, with the completed country (staff trigger).
    decisions = db.scalars(
        select(RoutingDecision).where(RoutingDecision.request_id == req.id)
    ).all()
    assert [d.trigger for d in decisions] == ["staff_route"]
    expert = create_user(db, role=Role.expert)
    refused = client.patch(  # type: ignore[attr-defined]
        url,
        json={"country_of_origin": "KG", "country_of_residence": "GB", "language": "ru"},
        headers=login(client, expert),
    )
    assert refused.status_code == 403


def test_staff_download_an_e_mailed_attachment_decrypted_and_others_get_404(
    client: object, db: Session
) -> None:
    staff = create_user(db, role=Role.staff)
    expert = create_user(db, role=Role.expert)
    req = request_of(db, inbound_message(db, fixture("new_request_gmail.eml")).reference)
    row = db.scalars(select(RequestMessage).where(RequestMessage.request_id == req.id)).one()
    data = service.reveal_message(req, row)
    assert data is not None
    doc_id = next(a["document_id"] for a in data["attachments"] if a["document_id"])
    url = f"/api/v1/cases/{req.reference}/attachments/{doc_id}"
    resp = client.get(url, headers=login(client, staff))  # type: ignore[attr-defined]
    assert resp.status_code == 200
    assert resp.content.startswith(b"%PDF-1.4")
    assert resp.headers["content-type"] == "application/pdf"
    assert 'filename="refusal-letter.pdf"' in resp.headers["content-disposition"]
    other = f"/api/v1/cases/{req.reference}/attachments/{__import__('uuid').uuid4()}"
    missing = client.get(other, headers=login(client, staff))  # type: ignore[attr-defined]
    assert missing.status_code == 404
    not_theirs = client.get(url, headers=login(client, expert))  # type: ignore[attr-defined]
    assert not_theirs.status_code == 404
    # The generic documents endpoint never serves it (it would be the sealed bytes).
    generic = client.get(f"/api/v1/documents/{doc_id}", headers=login(client, staff))  # type: ignore[attr-defined]
    assert generic.status_code == 404


@pytest.mark.sqlite
def test_on_the_embedded_default_an_e_mail_opens_a_request_and_the_cap_counts(
    db: Session, cap: None
) -> None:
    refs = [inbound_message(db, plain(subject=f"SQLite {n}")).reference for n in range(3)]
    reqs = [request_of(db, r) for r in refs]
    assert all(r.source == RequestSource.email and r.country_of_origin is None for r in reqs)
    assert [bool(history(db, r, "ack_queued")) for r in reqs] == [True, True, False]
