"""The staff case page's WhatsApp side: the reply box offers WhatsApp when the request has a
number, says the 24-hour window in the viewer's language and zone, sends through the API's
service; the conversation marks WhatsApp messages with how far WhatsApp took them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.cases.timeline import timeline
from app.models import Role, User
from app.notifications.dates import when_in_words
from app.whatsapp import service, templates
from tests.conftest import Clock
from tests.factories import (
    create_user,
    csrf,
    drain_all,
    field_error,
    login,
    signed_in,
    submit,
)
from tests.fakes.whatsapp_fake import FakeWhatsApp
from tests.whatsapp.conftest import deliver, only_request

NUMBER = "963944123456"


def _staff(db: Session, language: str = "en") -> User:
    staff = create_user(db, role=Role.staff, display_name="Nadia Staff")
    staff.timezone = "Europe/Berlin"
    staff.language = language
    db.flush()
    return staff


def _opened(client: TestClient, db: Session, wa: FakeWhatsApp) -> str:
    wa.customer_writes(NUMBER, "Hello, I need help")
    deliver(client, wa, db)
    return only_request(db).reference


def test_in_the_window_the_page_sends_free_text_on_whatsapp_and_the_timeline_marks_it(
    client: TestClient, web: TestClient, db: Session, wa: FakeWhatsApp
) -> None:
    ref = _opened(client, db, wa)
    staff = _staff(db)
    signed_in(web, staff)
    url = f"/staff/cases/{ref}"
    page = web.get(url).text
    until = service.window(db, only_request(db)).until
    assert until is not None
    assert f"Free text until {when_in_words(until, 'Europe/Berlin', 'en')}." in page
    assert 'id="wa-form"' in page and 'id="reply-form"' not in page  # no e-mail address
    assert 'id="reply-channels"' not in page  # one channel: no choice to make
    wa.sent.clear()
    resp = web.post(
        f"{url}/whatsapp",
        data={**csrf(web, url), "wa_text": "We are here."},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    drain_all(db)
    assert [s["text"]["body"] for s in wa.sent if s["type"] == "text"] == ["We are here."]
    assert only_request(db).first_responded_at is not None
    deliver(client, wa, db)  # sent, delivered
    page = web.get(url).text
    assert "Reply sent on WhatsApp" in page and "WhatsApp: delivered" in page
    assert "From the requester, on WhatsApp" in page and "WhatsApp: received" in page
    entries = [e for e in timeline(db, only_request(db)) if e.channel == "whatsapp"]
    assert [(e.kind, e.wa_status) for e in entries] == [
        ("inbound", "received"),
        ("automatic", "delivered"),  # the acknowledgement template
        ("reply", "delivered"),
    ]


def test_outside_the_window_only_templates_and_free_text_is_refused_in_words(
    client: TestClient, web: TestClient, db: Session, wa: FakeWhatsApp, clock: Clock
) -> None:
    ref = _opened(client, db, wa)
    clock.advance(hours=24, minutes=1)
    signed_in(web, _staff(db))
    url = f"/staff/cases/{ref}"
    page = web.get(url).text
    assert "Only approved templates: the requester last wrote more than 24 hours ago." in page
    assert 'name="wa_text"' not in page and 'value="tried_to_reach"' in page
    refused = web.post(f"{url}/whatsapp", data={**csrf(web, url), "wa_text": "Hi"})
    assert refused.status_code == 409
    assert "Choose an approved template" in field_error(refused.text, "reply_wa")
    assert only_request(db).first_responded_at is None
    wa.sent.clear()
    sent = web.post(
        f"{url}/whatsapp",
        data={**csrf(web, url), "wa_template": "tried_to_reach"},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    drain_all(db)
    [template] = [s["template"] for s in wa.sent]
    discreet = only_request(db).discreet
    assert template["name"] == templates.choose("tried_to_reach", discreet=discreet).name


def test_the_reply_box_offers_e_mail_and_whatsapp_when_the_request_has_both(
    web: TestClient, db: Session, wa: FakeWhatsApp
) -> None:
    req = submit(db, preferred_channel="whatsapp", whatsapp=f"+{NUMBER}", language="ar")
    signed_in(web, _staff(db))
    url = f"/staff/cases/{req.reference}"
    page = web.get(url).text
    assert 'id="reply-channels"' in page
    assert 'id="wa-form"' in page  # the requester's preferred channel first
    assert "Only approved templates: the requester has not written on WhatsApp yet." in page
    assert "تلقّينا طلبك" in page  # the template's text in the requester's language
    page = web.get(f"{url}?channel=email").text
    assert 'id="reply-form"' in page and 'id="wa-form"' not in page


def test_without_whatsapp_connected_the_box_is_the_e_mail_only(
    web: TestClient, db: Session
) -> None:
    req = submit(db, preferred_channel="whatsapp", whatsapp=f"+{NUMBER}")
    signed_in(web, _staff(db))
    page = web.get(f"/staff/cases/{req.reference}?channel=whatsapp").text
    assert 'id="reply-form"' in page and 'id="wa-form"' not in page
    assert 'id="reply-channels"' not in page


def test_the_api_gives_the_window_as_a_code_too(
    client: TestClient, db: Session, wa: FakeWhatsApp, clock: Clock
) -> None:
    ref = _opened(client, db, wa)
    staff = _staff(db)
    state = client.get(f"/api/v1/cases/{ref}/whatsapp", headers=login(client, staff)).json()
    assert state["reason"] == "window_open" and state["explanation"].startswith("Free text")
    clock.advance(hours=24, seconds=1)
    state = client.get(f"/api/v1/cases/{ref}/whatsapp", headers=login(client, staff)).json()
    assert state["reason"] == "window_closed" and state["mode"] == "templates_only"
