"""WhatsApp out: a reply from the case counts as the first response and goes once through the
outbox; free text only inside the 24-hour window, templates otherwise (the case says which and
why); rate limits and 5xx retried; a failed delivery un-counts the first response."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.models import (
    DeliveryState,
    OutboxMessage,
    OutboxStatus,
    RequestMessage,
    Role,
    User,
    WhatsAppStatus,
)
from app.whatsapp.client import WhatsAppClient
from app.whatsapp.errors import WhatsAppRateLimited, WhatsAppRefused
from tests.conftest import Clock
from tests.factories import create_user, drain, drain_all, login
from tests.fakes.whatsapp_fake import FakeWhatsApp
from tests.whatsapp.conftest import deliver, only_request, wa_messages

NUMBER = "4915112345678"


def _opened(client: TestClient, db: Session, wa: FakeWhatsApp) -> tuple[User, str]:
    staff = create_user(db, role=Role.staff)
    staff.timezone = "Europe/Berlin"
    wa.customer_writes(NUMBER, "Hello")
    deliver(client, wa, db)
    wa.sent.clear()
    return staff, only_request(db).reference


def _texts(wa: FakeWhatsApp) -> list[dict[str, object]]:
    return [s for s in wa.sent if s["type"] == "text"]


def test_reply_in_the_window_is_the_first_response_and_goes_once(
    client: TestClient, db: Session, wa: FakeWhatsApp
) -> None:
    staff, ref = _opened(client, db, wa)
    headers = login(client, staff)
    state = client.get(f"/api/v1/cases/{ref}/whatsapp", headers=headers).json()
    assert state["mode"] == "free_text" and state["explanation"].startswith("Free text until ")
    assert "(Europe/Berlin)" in state["explanation"]
    resp = client.post(
        f"/api/v1/cases/{ref}/whatsapp", json={"text": "We are here."}, headers=headers
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["counts_as_first_response"] is True
    req = only_request(db)
    assert req.first_responded_at is not None  # counted when queued, as an e-mail reply is
    assert db.scalars(
        select(OutboxMessage).where(OutboxMessage.kind.in_(["sla.reminder", "sla.escalation"]))
    ).all() and all(
        r.status == OutboxStatus.cancelled
        for r in db.scalars(
            select(OutboxMessage).where(OutboxMessage.kind.in_(["sla.reminder", "sla.escalation"]))
        )
    )
    drain_all(db)
    drain_all(db)  # nothing is sent twice
    [text] = _texts(wa)
    assert text["to"] == NUMBER and text["text"] == {"preview_url": False, "body": "We are here."}
    [out] = wa_messages(db, direction="outbound", template=None)
    assert out.status == WhatsAppStatus.sent and out.wamid == text["wamid"]
    # Statuses move it forward; one out of order is stale.
    deliver(client, wa, db)  # sent, delivered
    wa.read(str(out.wamid))
    deliver(client, wa, db)
    wa.status(str(out.wamid), "delivered")
    deliver(client, wa, db)
    [out] = wa_messages(db, direction="outbound", template=None)
    assert out.status == WhatsAppStatus.read
    rm = db.get(RequestMessage, out.request_message_id, populate_existing=True)
    assert rm is not None and rm.delivery == DeliveryState.sent


def test_outside_the_window_only_templates_in_the_requesters_language(
    client: TestClient, db: Session, wa: FakeWhatsApp, clock: Clock
) -> None:
    staff, ref = _opened(client, db, wa)
    clock.advance(hours=24, minutes=1)
    headers = login(client, staff)
    state = client.get(f"/api/v1/cases/{ref}/whatsapp", headers=headers).json()
    assert state["mode"] == "templates_only" and state["free_text_until"] is None
    assert "more than 24 hours old" in state["explanation"]
    refused = client.post(f"/api/v1/cases/{ref}/whatsapp", json={"text": "Hi"}, headers=headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "whatsapp_window_closed"
    assert refused.json()["error"]["fields"][0]["field"] == "text"
    assert only_request(db).first_responded_at is None
    req = only_request(db)
    req.language = "ru"
    req.discreet = False
    db.flush()
    ok = client.post(
        f"/api/v1/cases/{ref}/whatsapp", json={"template": "tried_to_reach"}, headers=headers
    )
    assert ok.status_code == 201, ok.text
    drain_all(db)
    [sent] = wa.sent
    assert sent["template"]["name"] == "intake_tried_to_reach"
    assert sent["template"]["language"] == {"code": "ru"}
    assert only_request(db).first_responded_at is not None


def test_free_text_past_the_window_fails_at_meta_and_is_uncounted(
    client: TestClient, db: Session, wa: FakeWhatsApp, clock: Clock
) -> None:
    """The window closed between queueing and sending: Meta accepts, then reports 131047."""
    staff, ref = _opened(client, db, wa)
    clock.advance(hours=23, minutes=59)
    headers = login(client, staff)
    resp = client.post(f"/api/v1/cases/{ref}/whatsapp", json={"text": "Late"}, headers=headers)
    assert resp.status_code == 201
    clock.advance(minutes=2)
    drain_all(db)
    deliver(client, wa, db)
    [out] = wa_messages(db, direction="outbound", template=None)
    assert out.status == WhatsAppStatus.failed and out.error_code == 131047
    req = only_request(db)
    assert req.first_responded_at is None  # un-counted, as a bounce


def test_undeliverable_reply_uncounts_and_rearms_the_reminders(
    client: TestClient, db: Session, wa: FakeWhatsApp
) -> None:
    staff, ref = _opened(client, db, wa)
    headers = login(client, staff)
    wa.unreachable.add(NUMBER)
    client.post(f"/api/v1/cases/{ref}/whatsapp", json={"text": "Hello?"}, headers=headers)
    drain_all(db)
    deliver(client, wa, db)
    [out] = wa_messages(db, direction="outbound", template=None)
    assert out.status == WhatsAppStatus.failed and out.error_code == 131026
    req = only_request(db)
    assert req.first_responded_at is None
    pending = db.scalars(
        select(OutboxMessage).where(
            OutboxMessage.kind == "sla.escalation", OutboxMessage.status == OutboxStatus.pending
        )
    ).all()
    assert len(pending) == 1


def test_rate_limit_and_5xx_are_retried_and_the_message_goes_once(
    client: TestClient, db: Session, wa: FakeWhatsApp, clock: Clock
) -> None:
    staff, ref = _opened(client, db, wa)
    headers = login(client, staff)
    client.post(f"/api/v1/cases/{ref}/whatsapp", json={"text": "Retry me"}, headers=headers)
    wa.fail_next(1, "429")
    wa.fail_next(1, "503")
    drain(db)
    [row] = db.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.kind == "whatsapp.send", OutboxMessage.status != OutboxStatus.sent)
        .execution_options(populate_existing=True)
    ).all()
    assert row.status == OutboxStatus.pending and row.due_at > now() + dt.timedelta(seconds=20)
    assert not _texts(wa)
    clock.advance(minutes=1)
    drain(db)  # 503: retried with backoff
    assert not _texts(wa)
    clock.advance(minutes=10)
    drain_all(db)
    assert len(_texts(wa)) == 1
    clock.advance(minutes=10)
    drain_all(db)
    assert len(_texts(wa)) == 1


def test_client_sorts_cloud_api_errors(wa: FakeWhatsApp) -> None:
    with WhatsAppClient() as c:
        with pytest.raises(WhatsAppRefused) as unknown:
            c.send(NUMBER, WhatsAppClient.template("no_such_template", "en", []))
        assert unknown.value.code == 132001 and unknown.value.status == 404
        with pytest.raises(WhatsAppRefused) as params:
            c.send(NUMBER, WhatsAppClient.template("consultation_reminder", "en", ["x"]))
        assert params.value.code == 132000
        wa.fail_next(1, "pair")
        with pytest.raises(WhatsAppRateLimited) as pair:
            c.send(NUMBER, WhatsAppClient.text("hi"))
        assert pair.value.code == 131056 and pair.value.retry_after_seconds == 10
        wa.fail_next(1, "429")
        with pytest.raises(WhatsAppRateLimited) as rate:
            c.send(NUMBER, WhatsAppClient.text("hi"))
        assert rate.value.code == 130429
    wa.access_token = "rotated"
    from app.whatsapp.client import WhatsAppAuthError

    with WhatsAppClient() as c, pytest.raises(WhatsAppAuthError):
        c.send(NUMBER, WhatsAppClient.text("hi"))
