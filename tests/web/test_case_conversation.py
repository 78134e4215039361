"""The staff case page, conversation first: the timeline service, the reply preview (what is
sent is what was previewed), the double greeting, saved replies (API and admin page, inserted on
the case page), "Take it" from the case and the queue, and every code shown as words."""

from __future__ import annotations

import ast
import datetime as dt
import html
import re
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases import service as cases
from app.cases.reply_mail import MASKED_TOKEN, leading_greeting
from app.core.time import now
from app.flows import request as flows
from app.intake import records
from app.intake.records import add_history
from app.models import (
    ConsultationStatus,
    ContactChannel,
    DeliveryState,
    OutboxMessage,
    OutboxStatus,
    RequestHistory,
    RequestStatus,
    Role,
    RoutingDecision,
    RoutingRule,
    SavedReply,
)
from app.models.messages import MessageDirection, MessageKind, RequestMessage
from app.outbox import registry
from app.web import staff as staff_pages
from tests.factories import (
    booked_consultation,
    create_expert,
    create_user,
    csrf,
    drain_all,
    field_error,
    form_values,
    login,
    make_request,
    signed_in,
    submit,
)
from tests.mail_reader import messages, text_of

ROOT = Path(__file__).resolve().parents[2]


def _inbound(db: Session, req: object, body: str, at: dt.datetime) -> None:
    from app.cases.replies import seal_message

    db.add(
        RequestMessage(
            request_id=req.id,  # type: ignore[attr-defined]
            direction=MessageDirection.inbound,
            kind=MessageKind.requester,
            message_id=f"in-{uuid.uuid4().hex}@example.org",
            at=at,
            recorded_at=at,
            data_enc=seal_message(req, {"from": "a@example.org", "subject": "Hi", "body": body}),  # type: ignore[arg-type]
        )
    )
    db.flush()


# The timeline (data only) --------------------------------------------------------------------


def test_the_timeline_holds_every_kind_oldest_first_with_notes_marked_internal(
    db: Session,
) -> None:
    req = submit(db)
    staff = create_user(db, role=Role.staff, display_name="Nadia Staff")
    expert = create_expert(db, countries=["KG"], name="Dr Timeline")
    _inbound(db, req, "Can you help me?", now() - dt.timedelta(minutes=30))
    cases.reply(db, req, staff, "Yes, we can.")
    cases.log_contact(db, req, staff, ContactChannel.phone, contacted_at=now(), note="Called")
    cases.add_note(db, req, staff, "Prefers mornings.")
    flows.change_status(db, req, RequestStatus.in_progress, actor=f"user:{staff.id}")
    c = booked_consultation(db, req, expert)
    add_history(
        db,
        req,
        actor="requester",
        action="consultation_booked",
        details={"consultation_id": str(c.id)},
        at=now() + dt.timedelta(seconds=1),
    )
    db.flush()

    entries = cases.timeline(db, req)
    kinds = [e.kind for e in entries]
    # The reply's own contact is the reply: listed once.
    assert kinds.count("reply") == 1 and kinds.count("contact") == 1
    for kind in ("inbound", "reply", "contact", "note", "status", "consultation"):
        assert kind in kinds, kind
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert entries[-1].kind == "consultation" and entries[-1].starts_at == c.start_at
    by_kind = {e.kind: e for e in entries}
    assert by_kind["note"].internal and by_kind["note"].body == "Prefers mornings."
    assert by_kind["contact"].internal and by_kind["contact"].body == "Called"
    assert not by_kind["reply"].internal and by_kind["reply"].author == "Nadia Staff"
    assert not by_kind["inbound"].internal and by_kind["inbound"].body == "Can you help me?"
    assert by_kind["reply"].delivery == DeliveryState.queued.value
    assert (by_kind["status"].from_status, by_kind["status"].to_status) == ("new", "in_progress")


def test_the_case_page_shows_the_conversation_first_the_reply_box_under_it_and_facts_beside(
    web: TestClient, db: Session
) -> None:
    req = submit(db)
    staff = create_user(db, role=Role.staff, display_name="Nadia Staff")
    _inbound(db, req, "Older question", now() - dt.timedelta(minutes=50))
    _inbound(db, req, "Newest question", now() - dt.timedelta(minutes=5))
    cases.add_note(db, req, staff, "Only for us.")
    db.flush()
    signed_in(web, staff)
    page = web.get(f"/staff/cases/{req.reference}").text
    where = {
        name: page.index(marker)
        for name, marker in (
            ("conversation", 'id="conversation"'),
            ("reply", 'id="reply"'),
            ("facts", 'id="facts"'),
            ("assign", 'id="assign-form"'),
            ("status", 'id="status-form"'),
            ("history", 'id="history"'),
        )
    }
    assert where["conversation"] < where["reply"] < where["facts"]
    assert where["reply"] < where["assign"] and where["reply"] < where["status"]
    assert where["reply"] < where["history"]
    # The newest entry is the last one, right above the reply box, marked as the latest.
    latest = re.search(r'<li class="tl tl-(\w+)[^"]*" id="latest">(.*?)</li>', page, re.S)
    assert latest is not None
    assert "Newest question" not in page[latest.end() : where["reply"]]
    conversation = page[where["conversation"] : where["reply"]]
    assert conversation.index("Older question") < conversation.index("Newest question")
    note = re.search(r'<li class="tl tl-note tl-internal"[^>]*>(.*?)</li>', page, re.S)
    assert note is not None and "Only for us." in note.group(1)
    assert "Internal: never shown to the requester" in note.group(1)
    # The request's facts are in the side column (below on a phone, by the stylesheet).
    aside = page[page.index('<aside class="case-side"') :]
    assert 'id="facts"' in aside and 'id="assign-form"' in aside


# The reply preview ---------------------------------------------------------------------------


def _preview_text(page: str) -> str:
    found = re.search(
        r'<pre class="mail-text" id="preview-text" dir="auto">(.*?)</pre>', page, re.S
    )
    assert found is not None
    return html.unescape(found.group(1))


def test_the_sent_email_is_exactly_the_previewed_one(
    web: TestClient, db: Session, mail_dir: Path
) -> None:
    req = submit(db, language="en")
    staff = create_user(db, role=Role.staff, display_name="Nadia Staff")
    signed_in(web, staff)
    url = f"/staff/cases/{req.reference}"
    body = "We can help you.\n\nPlease send the decision letter."
    preview = web.post(f"{url}/reply/preview", data={**csrf(web, url), "subject": "", "body": body})
    assert preview.status_code == 200, preview.text
    shown = _preview_text(preview.text)
    # What the template wraps around the body is on screen, not hidden.
    assert shown.startswith("Hello Aigul") and body in shown and "Nadia Staff" in shown
    assert MASKED_TOKEN in shown and (records.reveal_token(req) or "") not in shown
    assert db.scalar(select(RequestMessage).where(RequestMessage.request_id == req.id)) is None

    sent = web.post(
        f"{url}/reply", data=form_values(preview.text, "send-form"), follow_redirects=False
    )
    assert sent.status_code == 303, sent.text
    drain_all(db)
    pii = records.reveal_pii(req) or {}
    replies = [
        m for m in messages(mail_dir, to=pii["email"]) if m["Message-ID"].startswith("<reply-")
    ]
    assert len(replies) == 1
    token = records.reveal_token(req) or ""
    assert text_of(replies[0]) == shown.replace(MASKED_TOKEN, token)
    subject = re.search(r'<dd id="preview-subject"><bdi>(.*?)</bdi>', preview.text)
    assert subject is not None and replies[0]["Subject"] == html.unescape(subject.group(1))


def test_without_the_previews_digest_nothing_is_sent_and_a_changed_email_is_shown_again(
    web: TestClient, db: Session
) -> None:
    req = submit(db)
    signed_in(web, create_user(db, role=Role.staff))
    url = f"/staff/cases/{req.reference}"
    unseen = web.post(f"{url}/reply", data={**csrf(web, url), "body": "Straight out"})
    assert unseen.status_code == 200 and 'id="send-form"' in unseen.text
    fields = form_values(unseen.text, "send-form")
    changed = web.post(f"{url}/reply", data={**fields, "body": "Straight out!"})
    assert changed.status_code == 409
    assert "The e-mail changed since you saw it." in changed.text
    assert db.scalar(select(RequestMessage).where(RequestMessage.request_id == req.id)) is None


def test_a_body_that_greets_gets_no_send_button_and_is_refused(
    web: TestClient, db: Session
) -> None:
    req = submit(db)
    signed_in(web, create_user(db, role=Role.staff))
    url = f"/staff/cases/{req.reference}"
    body = "Hello Aigul,\nWe can help."
    preview = web.post(f"{url}/reply/preview", data={**csrf(web, url), "body": body})
    assert preview.status_code == 200
    assert 'id="send-form"' not in preview.text
    assert field_error(preview.text, "reply_body").startswith(
        "Your text starts with a greeting (Hello)"
    )
    # A digest taken from the greeting-free text does not carry the greeting through.
    clean = web.post(f"{url}/reply/preview", data={**csrf(web, url), "body": "We can help."})
    fields = form_values(clean.text, "send-form")
    refused = web.post(f"{url}/reply", data={**fields, "body": body})
    assert refused.status_code == 422
    assert db.scalar(select(RequestMessage).where(RequestMessage.request_id == req.id)) is None


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ("Hello Aigul,", "Hello"),
        ("hi, thanks", "hi"),
        ("  Dear Ms Test", "Dear"),
        ("Good morning!", "Good morning"),
        ("Здравствуйте, Айгуль!", "Здравствуйте"),
        ("Добрый день.", "Добрый день"),
        ("Уважаемая Айгуль", "Уважаемая"),
        ("¡Hola Ana!", "Hola"),
        ("Estimado Sr. Pérez:", "Estimado"),
        ("مرحبا أيغول", "مرحبا"),
        ("السلام عليكم", "السلام عليكم"),
        ("\n\nHello again", "Hello"),
        ("History of your case", None),
        ("Hiring a lawyer helps", None),
        ("We can help. Hello to your family.", None),
        ("Holanda no es", None),
        ("", None),
    ],
)
def test_a_leading_greeting_is_found_as_a_whole_word_in_every_language(
    body: str, found: str | None
) -> None:
    assert leading_greeting(body) == found


def test_the_api_preview_is_the_same_email_and_names_a_greeting(
    client: TestClient, db: Session
) -> None:
    req = submit(db)
    staff = create_user(db, role=Role.staff)
    h = login(client, staff)
    url = f"/api/v1/cases/{req.reference}/replies/preview"
    resp = client.post(url, json={"body": "Hi there\nWe can help."}, headers=h)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["greeting"] == "Hi" and "We can help." in out["text"]
    assert out["language"] == "ru" and MASKED_TOKEN in out["text"]
    expected = cases.preview_reply(db, req, staff, "Hi there\nWe can help.")
    assert out["text"] == expected.text and out["digest"] == cases.preview_digest(expected)
    assert client.post(url, json={"body": ""}, headers=h).status_code == 422


# Saved replies ---------------------------------------------------------------------------------


def test_saved_replies_api_admins_edit_staff_list(client: TestClient, db: Session) -> None:
    admin = login(client, create_user(db, role=Role.admin))
    staff = login(client, create_user(db, role=Role.staff))
    base = "/api/v1/admin/saved-replies"
    made = client.post(
        base,
        json={"title": "Documents", "language": "ru", "body": "Пришлите решение."},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    again = client.post(
        base, json={"title": "documents", "language": "ru", "body": "x"}, headers=admin
    )
    assert again.status_code == 422
    assert again.json()["error"]["fields"][0]["field"] == "title"
    assert (
        client.post(
            base, json={"title": "A", "language": "ru", "body": "x"}, headers=staff
        ).status_code
        == 403
    )
    listed = client.get("/api/v1/saved-replies", params={"language": "ru"}, headers=staff)
    assert [r["title"] for r in listed.json()] == ["Documents"]
    assert (
        client.get("/api/v1/saved-replies", params={"language": "es"}, headers=staff).json() == []
    )
    patched = client.patch(f"{base}/{rid}", json={"body": "Новый текст"}, headers=admin)
    assert patched.status_code == 200 and patched.json()["body"] == "Новый текст"
    assert client.delete(f"{base}/{rid}", headers=admin).status_code == 204
    assert client.delete(f"{base}/{rid}", headers=admin).status_code == 404


def test_admin_page_adds_edits_and_deletes_saved_replies_with_errors_beside_fields(
    web: TestClient, db: Session
) -> None:
    signed_in(web, create_user(db, role=Role.admin))
    url = "/admin/saved-replies"
    empty = web.post(
        f"{url}/add", data={**csrf(web, url), "title": " ", "language": "en", "body": "x"}
    )
    assert empty.status_code == 422
    assert field_error(empty.text, "sr_title") == "Give the saved reply a title."
    added = web.post(
        f"{url}/add",
        data={
            **csrf(web, url),
            "title": "Ask for the letter",
            "language": "es",
            "body": "Envíe la carta.",
        },
        follow_redirects=False,
    )
    assert added.status_code == 303
    row = db.scalar(select(SavedReply).where(SavedReply.title == "Ask for the letter"))
    assert row is not None and row.language == "es"
    listing = web.get(added.headers["location"]).text
    assert "The saved reply is added." in listing and "Envíe la carta." in listing
    edit = f"{url}/{row.id}"
    bad = web.post(edit, data={**csrf(web, edit), "title": "T", "language": "xx", "body": "b"})
    assert bad.status_code == 422
    assert field_error(bad.text, "sr_language") == "Choose a language from the list."
    ok = web.post(
        edit,
        data={
            **csrf(web, edit),
            "title": "Letter",
            "language": "es",
            "body": "Envíe la carta, por favor.",
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303
    db.refresh(row)
    assert row.title == "Letter" and row.body == "Envíe la carta, por favor."
    gone = web.post(f"{edit}/delete", data=csrf(web, edit), follow_redirects=False)
    assert gone.status_code == 303
    assert db.scalar(select(SavedReply.id).where(SavedReply.id == row.id)) is None


def test_the_case_page_offers_saved_replies_in_the_requesters_language_first_and_fills_the_box(
    web: TestClient, db: Session
) -> None:
    req = submit(db, language="ru")
    db.add_all(
        [
            SavedReply(title="Documents RU", language="ru", body="Пришлите, пожалуйста, решение."),
            SavedReply(title="Documents EN", language="en", body="Please send the decision."),
        ]
    )
    db.flush()
    ru = db.scalar(select(SavedReply).where(SavedReply.title == "Documents RU"))
    assert ru is not None
    signed_in(web, create_user(db, role=Role.staff))
    page = web.get(f"/staff/cases/{req.reference}").text
    select_html = re.search(r'<select id="saved".*?</select>', page, re.S)
    assert select_html is not None
    options = re.findall(r"<option value=\"\d+\"[^>]*>([^<(]+)", select_html.group(0))
    assert [o.strip() for o in options] == ["Documents RU", "Documents EN"]
    assert '<optgroup label="Russian">' in select_html.group(0)
    filled = web.get(f"/staff/cases/{req.reference}", params={"saved": ru.id}).text
    box = re.search(r'<textarea id="reply_body"[^>]*>(.*?)</textarea>', filled, re.S)
    assert box is not None and box.group(1) == "Пришлите, пожалуйста, решение."


# Take it ---------------------------------------------------------------------------------------


def test_take_it_from_the_case_and_the_queue_shows_the_owner_and_fills_mine(
    web: TestClient, db: Session
) -> None:
    req = make_request(db)
    other = make_request(db)
    nadia = create_user(db, role=Role.staff, display_name="Nadia Staff")
    omar = create_user(db, role=Role.staff, display_name="Omar Staff")
    signed_in(web, nadia)
    url = f"/staff/cases/{req.reference}"
    taken = web.post(f"{url}/take", data=csrf(web, url), follow_redirects=False)
    assert taken.status_code == 303 and taken.headers["location"] == f"{url}?done=taken"
    page = web.get(taken.headers["location"]).text
    assert '<span id="owner-name">you</span>' in page and 'id="take-form"' not in page
    mine = web.get("/staff/queue", params={"view": "mine"}).text
    assert req.reference in mine and other.reference not in mine
    assert (
        db.scalar(
            select(RequestHistory).where(
                RequestHistory.request_id == req.id, RequestHistory.action == "owner_taken"
            )
        )
        is not None
    )

    # Omar takes it from the queue, back to the same filters; it leaves Nadia's "Mine".
    signed_in(web, omar)
    queue = "/staff/queue?view=all_open&sort=due"
    card = web.get(queue).text
    assert "Nadia Staff" in card
    back = web.post(f"{url}/take", data={**csrf(web, queue), "back": queue}, follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == queue
    away = web.post(
        f"{url}/take",
        data={**csrf(web, queue), "back": "https://evil.example/staff/queue"},
        follow_redirects=False,
    )
    assert away.headers["location"] == f"{url}?done=taken"
    owner = cases.owner_of(db, req)
    assert owner is not None and owner.name == "Omar Staff"
    rows = db.scalars(
        select(RequestHistory).where(
            RequestHistory.request_id == req.id, RequestHistory.action == "owner_taken"
        )
    ).all()
    assert len(rows) == 2 and rows[-1].details["previous_owner_id"] == str(nadia.id)
    signed_in(web, nadia)
    assert web.get(url).text.count('id="take-form"') == 1  # Nadia may take it back


def test_take_it_through_the_api_staff_only(client: TestClient, db: Session) -> None:
    req = make_request(db)
    staff = create_user(db, role=Role.staff, display_name="Nadia Staff")
    resp = client.post(f"/api/v1/cases/{req.reference}/take", headers=login(client, staff))
    assert resp.status_code == 200, resp.text
    assert resp.json()["owner"]["name"] == "Nadia Staff"
    case = client.get(f"/api/v1/cases/{req.reference}", headers=login(client, staff)).json()
    assert case["owner"]["user_id"] == str(staff.id)
    queue = client.get("/api/v1/queue", params={"view": "mine"}, headers=login(client, staff))
    items = {i["reference"]: i for i in queue.json()["items"]}
    assert items[req.reference]["owner"]["name"] == "Nadia Staff"


# Codes as words ---------------------------------------------------------------------------------

#: History actions written through a variable (app/intake/service.py's ``{action}_queued`` and
#: ``_capped``, app/inbound/set_aside.py, app/sendouts): their values.
DYNAMIC_ACTIONS = {
    "HISTORY_ACTION": {"mail_set_aside"},
    "SENT_ACTION": {"documents_sent"},
    "MISSING_ACTION": {"documents_missing"},
    "f'{action}_capped'": {"ack_capped", "link_capped"},
    "f'{action}_queued'": {"ack_queued", "link_queued"},
}


def history_actions() -> set[str]:
    """Every action a history row is written with, read from the code (add_history,
    insert_history, insert_history_from); one written through a variable must be listed above."""
    found: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in ("add_history", "insert_history", "insert_history_from"):
                continue
            values = [kw.value for kw in node.keywords if kw.arg == "action"]
            if name == "insert_history" and len(node.args) >= 3:
                values.append(node.args[2])
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.add(value.value)
                else:
                    key = ast.unparse(value)
                    assert key in DYNAMIC_ACTIONS, f"{path}: history action {key}: list its values"
                    found |= DYNAMIC_ACTIONS[key]
    return found


class _Visible(HTMLParser):
    """The text a person reads (no tags, attributes, scripts or styles)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("script", "style", "template"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _Visible()
    parser.feed(page)
    return " ".join(parser.parts)


CODE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


def test_every_code_the_case_page_and_queue_can_show_has_a_label() -> None:
    registry.load_handlers()
    assert history_actions() <= set(staff_pages.HISTORY_LABELS)
    assert set(registry._handlers) <= set(staff_pages.OUTBOX_KIND_LABELS)
    assert {s.value for s in OutboxStatus} == set(staff_pages.OUTBOX_STATE_LABELS)
    assert {s.value for s in DeliveryState} == set(staff_pages.DELIVERY_LABELS)
    assert {s.value for s in ConsultationStatus} == set(staff_pages.CONSULTATION_STATE_LABELS)
    assert {r.value for r in RoutingRule} == set(staff_pages.ROUTING_RULE_LABELS)
    triggers = set(
        re.findall(r'trigger="(\w+)"', "".join(p.read_text() for p in (ROOT / "app").rglob("*.py")))
    )
    assert triggers and triggers <= set(staff_pages.ROUTING_TRIGGER_LABELS)


@pytest.mark.parametrize("lang", ["en", "ru", "ar"])
def test_no_raw_code_is_visible_on_the_case_page_or_the_queue(
    web: TestClient, db: Session, lang: str
) -> None:
    registry.load_handlers()
    req = make_request(db, country="KG", region="eastern_europe_post_soviet")
    staff = create_user(db, role=Role.staff, display_name="Nadia Staff")
    staff.language = lang  # type: ignore[assignment]
    expert = create_expert(db, countries=["KG"], name="Dr Words")
    at = now() - dt.timedelta(hours=1)
    for action in sorted(history_actions()):
        db.add(RequestHistory(request_id=req.id, at=at, actor="system", action=action, details={}))
    for a, b in zip(list(RequestStatus)[:-1], list(RequestStatus)[1:], strict=True):
        db.add(
            RequestHistory(
                request_id=req.id,
                at=at,
                actor="requester",
                action="status_changed",
                from_status=a.value,
                to_status=b.value,
                details={},
            )
        )
    for kind in sorted(registry._handlers):
        for state in OutboxStatus:
            db.add(
                OutboxMessage(
                    kind=kind,
                    params={"request_id": str(req.id)},
                    status=state,
                    due_at=at,
                    dedup_key=f"words:{kind}:{state.value}:{uuid.uuid4().hex}",
                )
            )
    # One booked consultation per request at a time: the others first, then the booked one.
    for c_state in sorted(ConsultationStatus, key=lambda s: s == ConsultationStatus.booked):
        c = booked_consultation(db, req, expert)
        c.status = c_state
        db.flush()
    triggers = staff_pages.ROUTING_TRIGGER_LABELS
    for trigger, rule in zip(sorted(triggers), list(RoutingRule) * 2, strict=False):
        db.add(
            RoutingDecision(
                request_id=req.id,
                at=at,
                trigger=trigger,
                rule=rule,
                chosen_expert_id=None,
                candidates=[],
                actor="system",
            )
        )
    db.flush()
    signed_in(web, staff)
    page = web.get(f"/staff/cases/{req.reference}")
    assert page.status_code == 200, page.text
    text = visible_text(page.text)
    assert CODE.findall(text) == []
    for kind in registry._handlers:
        assert kind not in text, kind
    queue = visible_text(web.get("/staff/queue", params={"q": req.reference}).text)
    assert req.reference in queue
    assert CODE.findall(queue) == []
