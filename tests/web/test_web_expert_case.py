"""The expert works their own case from its page: reads the conversation (newest first) and
their consultation, replies by e-mail (previewed, then sent only as seen, a greeting refused, as
on the staff page) and logs a contact through the services the API uses;
anyone but the accepted expert gets 404 and nothing is sent."""

from __future__ import annotations

import datetime as dt
import html
import re
import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.replies import REPLY_KIND, seal_message
from app.cases.reply_mail import MASKED_TOKEN
from app.core.time import now
from app.flows import request as flows
from app.intake import records
from app.models import (
    Assignment,
    Consultation,
    ConsultationStatus,
    IntakeRequest,
    RequestContact,
    User,
)
from app.models.messages import MessageDirection, MessageKind, RequestMessage
from tests.factories import (
    create_expert,
    csrf,
    drain_all,
    field_error,
    form_values,
    outbox_rows,
    signed_in,
    submit,
)
from tests.mail_reader import messages, text_of


def accepted_case(db: Session, name: str = "Dr Own") -> tuple[IntakeRequest, User]:
    expert = create_expert(db, countries=["KG"], name=name)
    req = submit(db)
    a = db.scalar(
        select(Assignment).where(Assignment.request_id == req.id, Assignment.expert_id == expert.id)
    )
    assert a is not None, "routing offered the request to the expert"
    flows.answer_offer(db, a.id, expert, accept=True, reason=None, via="page")
    db.flush()
    return req, expert


def inbound(db: Session, req: IntakeRequest, body: str, minutes_ago: int) -> RequestMessage:
    at = now() - dt.timedelta(minutes=minutes_ago)
    msg = RequestMessage(
        request_id=req.id,
        direction=MessageDirection.inbound,
        kind=MessageKind.requester,
        message_id=f"in-{secrets.token_hex(6)}@mail.example.org",
        at=at,
        recorded_at=at,
        data_enc=seal_message(req, {"from": "a@example.org", "subject": "Hello", "body": body}),
    )
    db.add(msg)
    db.flush()
    return msg


def replies(db: Session, req: IntakeRequest) -> list[RequestMessage]:
    return list(
        db.scalars(
            select(RequestMessage).where(
                RequestMessage.request_id == req.id,
                RequestMessage.direction == MessageDirection.outbound,
                RequestMessage.kind == MessageKind.reply,
            )
        )
    )


def test_the_expert_reads_the_conversation_newest_first_and_their_consultation(
    web: TestClient, db: Session
) -> None:
    req, expert = accepted_case(db)
    inbound(db, req, "My first question", minutes_ago=30)
    inbound(db, req, "A later question", minutes_ago=5)
    start = now() + dt.timedelta(hours=3)
    url = "https://meet.example.org/host-room-9"
    c = Consultation(
        request_id=req.id,
        expert_id=expert.id,
        start_at=start,
        end_at=start + dt.timedelta(minutes=60),
        blocked_from=start,
        blocked_until=start + dt.timedelta(minutes=60),
        status=ConsultationStatus.booked,
        ical_uid=f"{secrets.token_hex(8)}@test",
        created_by="requester",
        meeting_provider="link",
        meeting_external_id=url,
        meeting_join_url=url,
    )
    db.add(c)
    db.flush()
    signed_in(web, expert)
    page = web.get(f"/expert/cases/{req.reference}")
    assert page.status_code == 200
    text = page.text
    assert text.index("A later question") < text.index("My first question")
    assert "From the requester" in text
    assert f'href="/expert/consultations/{c.id}/host"' in text
    assert 'id="reply-form"' in text and 'id="reply"' in text


def _preview_text(page: str) -> str:
    found = re.search(
        r'<pre class="mail-text" id="preview-text" dir="auto">(.*?)</pre>', page, re.S
    )
    assert found is not None
    return html.unescape(found.group(1))


def test_the_expert_previews_then_sends_exactly_that_email_as_through_the_api(
    web: TestClient, db: Session, mail_dir: Path
) -> None:
    req, expert = accepted_case(db)
    parent = inbound(db, req, "Can you help?", minutes_ago=10)
    signed_in(web, expert)
    url = f"/expert/cases/{req.reference}"
    page = web.get(url).text
    assert f'action="{url}/reply/preview"' in page  # the reply box previews first
    before = len(outbox_rows(db, REPLY_KIND))
    body = "Yes, I can help you.\n\nPlease send the decision."
    preview = web.post(
        f"{url}/reply/preview", data={**csrf(web, url), "subject": "Your request", "body": body}
    )
    assert preview.status_code == 200, preview.text
    shown = _preview_text(preview.text)
    # The greeting, the body as typed and the expert's public name as signature, on screen.
    assert shown.startswith("Здравствуйте, Aigul")  # the requester's language (ru)
    assert body in shown and "Dr Own" in shown
    assert MASKED_TOKEN in shown and (records.reveal_token(req) or "") not in shown
    # Its forms post back to the expert's case, never to the staff pages.
    assert f'action="{url}/reply"' in preview.text
    assert f'action="{url}/reply/preview"' in preview.text and "/staff/cases" not in preview.text
    assert replies(db, req) == []

    resp = web.post(
        f"{url}/reply", data=form_values(preview.text, "send-form"), follow_redirects=False
    )
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == f"{url}?done=reply#messages"
    [msg] = replies(db, req)
    assert msg.author_id == expert.id
    assert msg.in_reply_to == parent.message_id  # threaded like the API's reply
    assert len(outbox_rows(db, REPLY_KIND)) == before + 1
    db.refresh(req)
    assert req.first_responded_at is not None  # the reply is the first response
    page = web.get(resp.headers["location"]).text
    assert "The reply is queued" in page
    assert "Yes, I can help you." in page and "Reply sent from the case" in page
    drain_all(db)
    pii = records.reveal_pii(req) or {}
    sent = [m for m in messages(mail_dir, to=pii["email"]) if m["Message-ID"].startswith("<reply-")]
    assert len(sent) == 1
    assert text_of(sent[0]) == shown.replace(MASKED_TOKEN, records.reveal_token(req) or "")


def test_without_the_previews_digest_the_expert_sees_the_preview_and_nothing_is_sent(
    web: TestClient, db: Session
) -> None:
    req, expert = accepted_case(db)
    signed_in(web, expert)
    url = f"/expert/cases/{req.reference}"
    unseen = web.post(f"{url}/reply", data={**csrf(web, url), "body": "Straight out"})
    assert unseen.status_code == 200 and 'id="send-form"' in unseen.text
    assert replies(db, req) == []
    fields = form_values(unseen.text, "send-form")
    changed = web.post(f"{url}/reply", data={**fields, "body": "Straight out!"})
    assert changed.status_code == 409
    assert "The e-mail changed since you saw it." in changed.text
    assert replies(db, req) == []
    sent = web.post(f"{url}/reply", data=fields, follow_redirects=False)
    assert sent.status_code == 303
    assert len(replies(db, req)) == 1


@pytest.mark.parametrize(
    ("body", "greeting"),
    [("Hello Aigul,\nI can help.", "Hello"), ("Здравствуйте!\nЯ помогу.", "Здравствуйте")],
)
def test_a_body_that_greets_gets_no_send_button_on_the_experts_page_and_is_refused(
    web: TestClient, db: Session, body: str, greeting: str
) -> None:
    req, expert = accepted_case(db)
    signed_in(web, expert)
    url = f"/expert/cases/{req.reference}"
    preview = web.post(f"{url}/reply/preview", data={**csrf(web, url), "body": body})
    assert preview.status_code == 200
    assert 'id="send-form"' not in preview.text
    assert field_error(preview.text, "reply_body").startswith(
        f"Your text starts with a greeting ({greeting})"
    )
    # A digest taken from a greeting-free text does not carry the greeting through.
    clean = web.post(f"{url}/reply/preview", data={**csrf(web, url), "body": "I can help."})
    refused = web.post(f"{url}/reply", data={**form_values(clean.text, "send-form"), "body": body})
    assert refused.status_code == 422
    assert replies(db, req) == []


def test_an_empty_reply_is_refused_in_a_full_sentence_beside_the_message(
    web: TestClient, db: Session
) -> None:
    req, expert = accepted_case(db)
    signed_in(web, expert)
    url = f"/expert/cases/{req.reference}"
    resp = web.post(f"{url}/reply", data={**csrf(web, url), "subject": "Hi", "body": "   "})
    assert resp.status_code == 422
    assert field_error(resp.text, "reply_body") == (
        "The reply is empty. Write the message to send."
    )
    assert 'id="error-summary"' in resp.text and 'href="#reply_body"' in resp.text
    assert 'value="Hi"' in resp.text  # what was typed stays
    assert replies(db, req) == []


def test_a_two_line_subject_is_refused_beside_the_subject(web: TestClient, db: Session) -> None:
    req, expert = accepted_case(db)
    signed_in(web, expert)
    url = f"/expert/cases/{req.reference}"
    resp = web.post(f"{url}/reply", data={**csrf(web, url), "subject": "One\nTwo", "body": "Hello"})
    assert resp.status_code == 422
    assert field_error(resp.text, "reply_subject") == "The subject must be one line."
    assert replies(db, req) == []


def test_a_reply_without_the_csrf_token_changes_nothing(web: TestClient, db: Session) -> None:
    req, expert = accepted_case(db)
    signed_in(web, expert)
    url = f"/expert/cases/{req.reference}"
    web.get(url)
    resp = web.post(f"{url}/reply", data={"body": "Forged"}, follow_redirects=False)
    assert resp.status_code == 403
    contact = web.post(f"{url}/contact", data={"channel": "phone"}, follow_redirects=False)
    assert contact.status_code == 403
    assert replies(db, req) == []
    assert db.scalars(select(RequestContact).where(RequestContact.request_id == req.id)).all() == []


def test_an_expert_not_assigned_gets_404_and_nothing_is_sent(web: TestClient, db: Session) -> None:
    req, _owner = accepted_case(db, name="Dr Owner")
    other = create_expert(db, countries=["SY"], name="Dr Other")
    signed_in(web, other)
    url = f"/expert/cases/{req.reference}"
    assert web.get(url).status_code == 404
    token = csrf(web, "/expert/assignments")
    before = len(outbox_rows(db, REPLY_KIND))
    resp = web.post(f"{url}/reply", data={**token, "body": "Not mine to send"})
    assert resp.status_code == 404
    assert "Not mine to send" not in resp.text
    preview = web.post(f"{url}/reply/preview", data={**token, "body": "Not mine to see"})
    assert preview.status_code == 404
    assert "Not mine to see" not in preview.text and "Aigul" not in preview.text
    assert replies(db, req) == []
    assert len(outbox_rows(db, REPLY_KIND)) == before


def test_logging_a_contact_from_the_page_stops_the_clock_like_the_api(
    web: TestClient, db: Session
) -> None:
    req, expert = accepted_case(db)
    signed_in(web, expert)
    url = f"/expert/cases/{req.reference}"
    assert req.first_responded_at is None
    resp = web.post(
        f"{url}/contact",
        data={**csrf(web, url), "channel": "whatsapp", "note": "Called back"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    db.refresh(req)
    assert req.first_responded_at is not None
    [contact] = db.scalars(select(RequestContact).where(RequestContact.request_id == req.id))
    assert contact.recorded_by == expert.id and contact.channel.value == "whatsapp"
    bad = web.post(f"{url}/contact", data={**csrf(web, url), "channel": "pigeon"})
    assert bad.status_code == 422
    assert field_error(bad.text, "contact_channel") == "Choose e-mail, phone or WhatsApp."
    assert 'id="error-summary"' in bad.text
