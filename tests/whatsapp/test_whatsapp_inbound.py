"""WhatsApp in: Meta's handshake and signature, the raw delivery stored and answered at once,
the work in the worker (tests/fakes/whatsapp_fake.py signs and posts as Meta does): a first
message opens a request in triage on the clock from its timestamp, later ones join it, replays
and stale events change nothing, a reference links; media fetched, checked and sealed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.time import now
from app.inbound import service as inbound_service
from app.intake import records
from app.models import (
    Assignment,
    OutboxMessage,
    RequestMessage,
    RequestSource,
    Role,
    WhatsAppInbox,
    WhatsAppStatus,
)
from app.whatsapp.router import MAX_WEBHOOK_BODY
from tests.conftest import Clock
from tests.factories import create_user, drain_all, history, login, submit
from tests.fakes.whatsapp_fake import FakeWhatsApp, meta_json, sign
from tests.whatsapp.conftest import deliver, only_request, poster, wa_messages

NUMBER = "4915112345678"
OTHER = "905321234567"
PDF = b"%PDF-1.4\n" + b"0" * 2000 + b"\n%%EOF\n"


def test_handshake_answers_the_challenge_only_to_our_verify_token(
    client: TestClient, wa: FakeWhatsApp
) -> None:
    ok = client.get(
        "/webhooks/whatsapp",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": wa.verify_token,
            "hub.challenge": "1158201444",
        },
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": wa.verify_token + "x", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": wa.verify_token, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
    ):
        assert client.get("/webhooks/whatsapp", params=params).status_code == 403


def test_signature_is_checked_over_the_raw_bytes(
    client: TestClient, db: Session, wa: FakeWhatsApp
) -> None:
    d = wa.customer_writes(NUMBER, "Ünïcode/slash")
    assert b"\\u00dc" in d.body and b"\\/" in d.body  # as Meta writes it
    # Re-serialised JSON is the same event but not the same bytes: refused.
    again = json.dumps(d.json).encode()
    hdr = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(wa.app_secret, again)}
    assert client.post("/webhooks/whatsapp", content=d.body, headers=hdr).status_code == 401
    wrong = dict(d.headers, **{"X-Hub-Signature-256": sign("another secret", d.body)})
    assert client.post("/webhooks/whatsapp", content=d.body, headers=wrong).status_code == 401
    unsigned = {"Content-Type": "application/json"}
    assert client.post("/webhooks/whatsapp", content=d.body, headers=unsigned).status_code == 401
    assert db.scalar(select(func.count()).select_from(WhatsAppInbox)) == 0
    # Meta's own bytes pass, are stored once (a repeated delivery too) and wait for the worker.
    assert wa.deliver(poster(client)) == [200]
    wa.pending.append(d)
    assert wa.deliver(poster(client)) == [200]
    [row] = db.scalars(select(WhatsAppInbox)).all()
    assert row.body_sha256 == hashlib.sha256(d.body).hexdigest()
    assert (
        row.body_enc is not None
        and b"Unicode" not in row.body_enc
        and NUMBER.encode() not in row.body_enc
    )
    assert row.processed_at is None
    [job] = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "whatsapp.inbound")).all()
    assert job.params == {"inbox_id": row.id}


def test_not_a_whatsapp_event_is_refused_before_storing(
    client: TestClient, wa: FakeWhatsApp
) -> None:
    body = meta_json({"object": "page", "entry": []})
    hdr = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(wa.app_secret, body)}
    assert client.post("/webhooks/whatsapp", content=body, headers=hdr).status_code == 400


def test_a_body_over_the_limit_is_refused_before_it_is_read_whole(
    client: TestClient, db: Session, wa: FakeWhatsApp
) -> None:
    at_limit = b" " * (MAX_WEBHOOK_BODY - 2) + b"{}"
    over = at_limit + b" "
    for body, status in ((over, 413), (at_limit, 400)):  # at the limit: read, then not an event
        hdr = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(wa.app_secret, body)}
        answer = client.post("/webhooks/whatsapp", content=body, headers=hdr)
        assert answer.status_code == status, answer.text
    assert answer.status_code == 400
    assert db.scalar(select(func.count()).select_from(WhatsAppInbox)) == 0


def test_first_message_opens_a_request_in_triage_on_its_own_clock(
    client: TestClient, db: Session, wa: FakeWhatsApp, clock: Clock
) -> None:
    staff = create_user(db, role=Role.staff)
    written = now().replace(microsecond=0) - dt.timedelta(minutes=3)
    wa.customer_writes(NUMBER, "Hello, I need help with my case", name="Zqx Wa", at=written)
    assert deliver(client, wa, db) == [200]
    req = only_request(db)
    assert req.source == RequestSource.whatsapp and req.preferred_channel.value == "whatsapp"
    assert req.received_at == written  # the message's time, not the worker's
    assert req.first_response_due_at == written + dt.timedelta(minutes=60)
    assert req.discreet and req.country_of_origin is None
    assert db.scalar(select(func.count()).select_from(Assignment)) == 0  # triage, not routed
    pii = records.reveal_pii(req)
    assert pii is not None and pii["whatsapp"] == f"+{NUMBER}" and pii["full_name"] == "Zqx Wa"
    # On-duty staff alerted, reminders and escalation queued from the message's time.
    alerts = db.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == inbound_service.TRIAGE_ALERT_KIND)
    ).all()
    assert [a.params["user_id"] for a in alerts] == [str(staff.id)]
    reminders = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "sla.reminder")).all()
    assert sorted(r.due_at for r in reminders)[0] == written + dt.timedelta(minutes=30)
    # The acknowledgement went back as the neutral template (discreet), in English.
    [ack] = [s for s in wa.sent if s["type"] == "template"]
    assert ack["to"] == NUMBER
    assert ack["template"]["name"] == "intake_acknowledgement_neutral"
    assert ack["template"]["language"] == {"code": "en"}
    assert ack["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": req.reference}
    ]
    # The text is on the case, encrypted; the inbox row has let go of the raw body.
    [inbox] = db.scalars(select(WhatsAppInbox).execution_options(populate_existing=True)).all()
    assert inbox.processed_at is not None and inbox.body_enc is None
    # The clock has not stopped: an acknowledgement is not a response.
    assert req.first_responded_at is None
    headers = login(client, staff)
    case = client.get(f"/api/v1/cases/{req.reference}", headers=headers)
    assert case.status_code == 200, case.text
    assert "Hello, I need help with my case" in case.text


def test_later_messages_join_replays_and_stale_events_change_nothing(
    client: TestClient, db: Session, wa: FakeWhatsApp, clock: Clock
) -> None:
    first = wa.customer_writes(NUMBER, "first")
    deliver(client, wa, db)
    req = only_request(db)
    clock.advance(minutes=5)
    wa.customer_writes(NUMBER, "second")
    deliver(client, wa, db)
    assert only_request(db).id == req.id
    inbound = wa_messages(db, status=WhatsAppStatus.received)
    assert len(inbound) == 2 and {m.request_id for m in inbound} == {req.id}
    assert len(history(db, req, "requester_message")) == 1
    # A replay: the same message (wamid) in a delivery with other bytes.
    value = json.loads(first.body)["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["profile"]["name"] = "Another name"
    wa.queue(value)
    deliver(client, wa, db)
    assert len(wa_messages(db, status=WhatsAppStatus.received)) == 2
    # Stale: written more than the allowed age ago (Meta retries for up to 7 days).
    wa.customer_writes(NUMBER, "very old", at=now() - dt.timedelta(days=8))
    deliver(client, wa, db)
    assert len(wa_messages(db, status=WhatsAppStatus.received)) == 2
    outcomes = [json.loads(o or "{}") for o in db.scalars(select(WhatsAppInbox.outcome)).all()]
    assert sum(o.get("replay", 0) for o in outcomes) == 1
    assert sum(o.get("stale", 0) for o in outcomes) == 1
    assert sum(o.get("joined", 0) for o in outcomes) == 1


def test_a_reference_links_a_form_request_with_that_number_and_only_links_another_number(
    client: TestClient, db: Session, wa: FakeWhatsApp
) -> None:
    sub = submit(db, whatsapp=f"+{NUMBER}", preferred_channel="whatsapp")
    drain_all(db)
    wa.sent.clear()
    wa.customer_writes(NUMBER, f"Hi, my reference is {sub.reference[:4]}-{sub.reference[4:]}")
    deliver(client, wa, db)
    [joined] = wa_messages(db, status=WhatsAppStatus.received)
    assert joined.request_id == sub.id
    # Another number naming the same reference: a new request, linked for staff to judge.
    wa.customer_writes(OTHER, f"About {sub.reference}")
    deliver(client, wa, db)
    new = next(m for m in wa_messages(db, status=WhatsAppStatus.received) if m.request_id != sub.id)
    other = db.get(type(sub), new.request_id)
    assert other is not None and other.linked_request_id == sub.id
    # And later messages from the first number, without a reference, still join the form request.
    wa.customer_writes(NUMBER, "one more thing")
    deliver(client, wa, db)
    assert (
        sum(1 for m in wa_messages(db, status=WhatsAppStatus.received) if m.request_id == sub.id)
        == 2
    )


def test_media_fetched_checked_and_sealed_with_the_request_key(
    client: TestClient, db: Session, wa: FakeWhatsApp
) -> None:
    staff = create_user(db, role=Role.staff)
    pdf_id = wa.add_media(PDF, "application/pdf")
    wa.customer_writes(
        NUMBER, media=("document", pdf_id), filename="decision.pdf", caption="my papers"
    )
    zip_id = wa.add_media(b"PK\x03\x04zip", "application/zip")
    wa.customer_writes(NUMBER, media=("document", zip_id), filename="a.zip")
    fake_pdf = wa.add_media(b"MZ\x90\x00 not a pdf", "application/pdf")
    wa.customer_writes(NUMBER, media=("document", fake_pdf), filename="b.pdf")
    voice = wa.add_media(b"OggS" + b"\x00" * 100, "audio/ogg; codecs=opus")
    wa.customer_writes(NUMBER, media=("audio", voice))
    deliver(client, wa, db)
    req = only_request(db)
    rows = db.scalars(
        select(RequestMessage)
        .where(RequestMessage.request_id == req.id, RequestMessage.direction == "inbound")
        .order_by(RequestMessage.id)
    ).all()
    found = [inbound_service.reveal_message(req, r) for r in rows]
    atts = [a for f in found if f for a in f["attachments"]]
    by_name = {a["filename"]: a for a in atts}
    assert by_name["decision.pdf"]["refused"] is None and by_name["decision.pdf"]["size"] == len(
        PDF
    )
    assert by_name["a.zip"]["refused"] == "type"
    assert by_name["b.pdf"]["refused"] == "content"
    assert by_name["whatsapp-audio"]["refused"] is None
    # Only allowed types were downloaded at all.
    assert not any(c.path.endswith(zip_id) for c in wa.calls)
    headers = login(client, staff)
    doc_id = by_name["decision.pdf"]["document_id"]
    got = client.get(f"/api/v1/cases/{req.reference}/attachments/{doc_id}", headers=headers)
    assert got.status_code == 200 and got.content == PDF


def test_media_larger_than_allowed_is_left_out(
    client: TestClient, db: Session, wa: FakeWhatsApp, monkeypatch: object
) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("INTAKE_WHATSAPP_MEDIA_MAX_BYTES", "1024")
        from app.core.settings import get_settings

        get_settings.cache_clear()
        big = wa.add_media(b"\xff\xd8\xff" + b"0" * 2000, "image/jpeg")
        wa.customer_writes(NUMBER, media=("image", big))
        deliver(client, wa, db)
    finally:
        mp.undo()
        get_settings.cache_clear()
    req = only_request(db)
    row = db.scalars(
        select(RequestMessage).where(
            RequestMessage.request_id == req.id, RequestMessage.direction == "inbound"
        )
    ).one()
    data = inbound_service.reveal_message(req, row)
    assert data is not None and data["attachments"][0]["refused"] == "too_large"
    assert not any("media-download" in c.path for c in wa.calls)  # its size said so: no download
