"""Actions on a case: status, notes, assignment, replies by e-mail (threaded, in the
requester's language, the first response), resending the sample report, corrections with
re-routing, merging duplicates, and presence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.flows import request as flows
from app.intake import keys
from app.intake import records as intake
from app.models import (
    Assignment,
    AssignmentStatus,
    ContactVia,
    IntakeRequest,
    OutboxMessage,
    RequestContact,
    RequestHistory,
    RequestNote,
    Role,
    User,
)
from app.models.messages import (
    MESSAGE_SEAL_KIND,
    DeliveryState,
    MessageDirection,
    MessageKind,
    RequestMessage,
)
from app.sendouts import service as sendouts
from app.sla.scheduling import key_prefix
from tests.factories import MARKER, create_expert, create_user, drain, login, submit, tiny_pdf
from tests.mail_reader import messages, text_of
from tests.smtp_server import smtp_server


def _url(req: IntakeRequest, tail: str = "") -> str:
    return f"/api/v1/cases/{req.reference}{tail}"


def _accept(db: Session, req: IntakeRequest, expert: User) -> None:
    a = db.scalar(
        select(Assignment).where(
            Assignment.request_id == req.id, Assignment.status == AssignmentStatus.offered
        )
    )
    assert a is not None and a.expert_id == expert.id
    flows.answer_offer(db, a.id, expert, accept=True)


def _history(db: Session, req: IntakeRequest) -> list[RequestHistory]:
    return list(
        db.scalars(
            select(RequestHistory)
            .where(RequestHistory.request_id == req.id)
            .order_by(RequestHistory.id)
        )
    )


def _fields(resp: Any) -> list[str]:
    return [f["field"] for f in resp.json()["error"]["fields"]]


# Status -------------------------------------------------------------------------------------


def test_staff_change_the_status_and_an_illegal_move_names_the_allowed_ones(
    db: Session, client: object
) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    req = submit(db, country_of_origin="AM")
    h = login(c, staff)
    resp = c.post(_url(req, "/status"), json={"status": "in_progress"}, headers=h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "in_progress"
    assert "consultation_scheduled" in resp.json()["allowed_next"]
    moved = [x for x in _history(db, req) if x.action == "status_changed"]
    assert [(x.from_status, x.to_status, x.actor) for x in moved] == [
        ("new", "in_progress", f"user:{staff.id}")
    ]
    back = c.post(_url(req, "/status"), json={"status": "new"}, headers=h)
    assert back.status_code == 409
    error = back.json()["error"]
    assert error["code"] == "illegal_status_change"
    assert "new" not in error["details"]["allowed"] and "closed" in error["details"]["allowed"]
    assert "closed" in error["message"]
    bad = c.post(_url(req, "/status"), json={"status": "finished"}, headers=h)
    assert bad.status_code == 422 and _fields(bad) == ["status"]


def test_the_accepted_expert_may_not_change_the_status_and_others_do_not_see_the_case(
    db: Session, client: object
) -> None:
    c: Any = client
    expert = create_expert(db, countries=["KG"], languages=["ru"])
    stranger = create_expert(db, countries=["AM"], languages=["ru"])
    req = submit(db, country_of_origin="KG")
    _accept(db, req, expert)
    body = {"status": "in_progress"}
    assert c.post(_url(req, "/status"), json=body, headers=login(c, expert)).status_code == 403
    assert c.post(_url(req, "/status"), json=body, headers=login(c, stranger)).status_code == 404
    # Access is decided before the body: a stranger learns nothing from a bad body either.
    junk = {"status": "nonsense"}
    assert c.post(_url(req, "/status"), json=junk, headers=login(c, stranger)).status_code == 404
    for tail in ("/contacts", "/notes", "/replies", "/merge", "/presence"):
        resp = c.post(_url(req, tail), json={"nonsense": 1}, headers=login(c, stranger))
        assert resp.status_code == 404, (tail, resp.text)
    assert c.post(_url(req, "/status"), json=body).status_code == 401
    assert intake.get_by_reference(db, req.reference).status.value == "new"  # type: ignore[union-attr]


# Notes --------------------------------------------------------------------------------------


def test_notes_are_encrypted_listed_on_the_case_and_kept_out_of_the_history(
    db: Session, client: object
) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff, display_name="Nadia Staff")
    expert = create_expert(db, countries=["KG"], languages=["ru"])
    req = submit(db, country_of_origin="KG")
    _accept(db, req, expert)
    text = f"Called the lawyer {MARKER}"
    resp = c.post(_url(req, "/notes"), json={"body": text}, headers=login(c, staff))
    assert resp.status_code == 201, resp.text
    assert resp.json()["author_name"] == "Nadia Staff"
    by_expert = c.post(_url(req, "/notes"), json={"body": "Expert view"}, headers=login(c, expert))
    assert by_expert.status_code == 201
    row = db.scalar(select(RequestNote).where(RequestNote.id == resp.json()["id"]))
    assert row is not None and row.body_enc is not None and MARKER.encode() not in row.body_enc
    case = c.get(_url(req), headers=login(c, staff)).json()
    assert [n["body"] for n in case["notes"]] == [text, "Expert view"]
    added = [h for h in _history(db, req) if h.action == "note_added"]
    assert len(added) == 2 and all(MARKER not in str(h.details) for h in added)
    empty = c.post(_url(req, "/notes"), json={"body": "   "}, headers=login(c, staff))
    assert empty.status_code == 422 and _fields(empty) == ["body"]


# Assignment ---------------------------------------------------------------------------------


def test_staff_assign_from_the_case_to_a_named_expert(db: Session, client: object) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    first = create_expert(db, countries=["KG"], languages=["ru"])
    second = create_expert(db, countries=["KG"], languages=["en"])
    req = submit(db, country_of_origin="KG")
    assert req.assigned_expert_id == first.id
    body = {"expert_id": str(second.id), "reason": "workload"}
    resp = c.post(_url(req, "/assign"), json=body, headers=login(c, staff))
    assert resp.status_code == 200, resp.text
    statuses = {(a["expert_id"], a["status"]) for a in resp.json()["assignments"]}
    assert (str(first.id), "reassigned") in statuses and (str(second.id), "offered") in statuses
    bad = c.post(_url(req, "/assign"), json={"expert_id": "x"}, headers=login(c, staff))
    assert bad.status_code == 422 and _fields(bad) == ["expert_id"]


# Replies ------------------------------------------------------------------------------------


def _inbound(db: Session, req: IntakeRequest, message_id: str, parent: str | None) -> None:
    current = now()
    dk = keys.data_key(req)
    assert dk is not None
    db.add(
        RequestMessage(
            request_id=req.id,
            direction=MessageDirection.inbound,
            kind=MessageKind.requester,
            message_id=message_id,
            in_reply_to=parent,
            at=current,
            recorded_at=current,
            data_enc=keys.seal_json(dk, MESSAGE_SEAL_KIND, req.id, {"body": "Any news?"}),
        )
    )
    db.flush()


def test_a_reply_is_threaded_sent_in_the_requesters_language_and_stops_the_clock(
    db: Session, client: object, mail_dir: Path
) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    req = submit(db, country_of_origin="AM", language="ru")
    assert req.first_responded_at is None
    _inbound(db, req, "first@requester.example", None)
    _inbound(db, req, "second@requester.example", "first@requester.example")
    body = f"Здравствуйте! We can help. {MARKER}"
    resp = c.post(_url(req, "/replies"), json={"body": body}, headers=login(c, staff))
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["sla"]["state"] == "met" and out["direction"] == "outbound"
    assert out["in_reply_to"] == "second@requester.example"
    msg = db.get(RequestMessage, out["id"])
    assert msg is not None and msg.kind == MessageKind.reply and msg.author_id == staff.id
    assert msg.message_id and "<" not in msg.message_id
    assert msg.data_enc is not None and MARKER.encode() not in msg.data_enc
    contact = db.get(RequestContact, msg.contact_id)
    assert contact is not None and contact.via == ContactVia.reply
    assert contact.outbox_id == msg.outbox_id
    db.refresh(req)
    assert req.first_responded_at is not None

    drain(db)
    sent = [m for m in messages(mail_dir) if str(m["Message-ID"]) == f"<{msg.message_id}>"]
    assert len(sent) == 1, [str(m["Message-ID"]) for m in messages(mail_dir)]
    mail = sent[0]
    assert str(mail["In-Reply-To"]) == "<second@requester.example>"
    assert str(mail["References"]) == "<first@requester.example> <second@requester.example>"
    assert "Здравствуйте" in text_of(mail) and MARKER in text_of(mail)
    assert "Номер запроса" in text_of(mail)  # the Russian template
    assert req.reference in str(mail["Subject"]) and "убежищ" in str(mail["Subject"])
    assert str(mail["Auto-Submitted"]) == "no"
    db.refresh(msg)
    assert msg.delivery == DeliveryState.sent
    case = c.get(_url(req), headers=login(c, staff)).json()
    listed = {m["message_id"]: m for m in case["messages"]}
    assert listed[msg.message_id]["data"]["body"] == body
    assert listed["first@requester.example"]["data"] == {"body": "Any news?"}
    people = [m["direction"] for m in case["messages"] if m["kind"] in ("requester", "reply")]
    assert people == ["inbound", "inbound", "outbound"]


def test_a_discreet_requester_gets_a_neutral_subject_and_an_empty_reply_is_refused(
    db: Session, client: object, mail_dir: Path
) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    req = submit(db, country_of_origin="AM", language="en", discreet=True)
    h = login(c, staff)
    empty = c.post(_url(req, "/replies"), json={"body": ""}, headers=h)
    assert empty.status_code == 422 and _fields(empty) == ["body"]
    two_lines = c.post(_url(req, "/replies"), json={"body": "x", "subject": "a\nb"}, headers=h)
    assert two_lines.status_code == 422 and _fields(two_lines) == ["subject"]
    resp = c.post(_url(req, "/replies"), json={"body": "Hello"}, headers=h)
    assert resp.status_code == 201
    drain(db)
    msg = db.get(RequestMessage, resp.json()["id"])
    assert msg is not None
    mail = next(m for m in messages(mail_dir) if str(m["Message-ID"]) == f"<{msg.message_id}>")
    subject = str(mail["Subject"]).lower()
    assert req.reference.lower() in subject
    assert "asylum" not in subject and "report" not in subject
    assert "In-Reply-To" not in mail  # nothing to thread on


def test_the_accepted_expert_replies_and_an_offered_one_cannot(db: Session, client: object) -> None:
    c: Any = client
    expert = create_expert(db, countries=["KG"], languages=["ru"])
    req = submit(db, country_of_origin="KG")
    body = {"body": "Hello from your expert"}
    assert c.post(_url(req, "/replies"), json=body, headers=login(c, expert)).status_code == 404
    _accept(db, req, expert)
    resp = c.post(_url(req, "/replies"), json=body, headers=login(c, expert))
    assert resp.status_code == 201, resp.text
    assert resp.json()["author_id"] == str(expert.id)


# Resend the sample report -------------------------------------------------------------------


def test_resending_the_sample_report_sends_again_after_the_first_delivery(
    db: Session, client: object, mail_dir: Path
) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    admin = create_user(db, role=Role.admin)
    req = submit(db, country_of_origin="AM", language="es", wants=["sample_report"])
    h = login(c, staff)
    none = c.post(_url(req, "/sample-report/resend"), headers=h)
    assert none.status_code == 409 and none.json()["error"]["code"] == "nothing_to_send"
    sendouts.upload_sample_report(
        db,
        data=tiny_pdf(),
        filename="s.pdf",
        uploaded_by=admin.id,
        country_code="AM",
        region_code=None,
    )
    # The first (automatic) delivery happened: later automatic rows are no-ops.
    intake.add_history(db, req, actor="system", action=sendouts.SENT_ACTION)
    db.flush()
    ids = []
    for _ in range(2):
        resp = c.post(_url(req, "/sample-report/resend"), headers=h)
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["outbox_id"])
    drain(db)
    for outbox_id in ids:
        row = db.get(OutboxMessage, outbox_id)
        assert row is not None and row.status.value == "sent", row.last_error if row else None
    sent = [
        m for m in messages(mail_dir) if any(f"outbox-{i}@" in str(m["Message-ID"]) for i in ids)
    ]
    assert len(sent) == 2
    for mail in sent:
        names = [p.get_filename() for p in mail.iter_attachments()]
        assert names == [f"sample-report-{req.reference}.pdf"]
        assert "Hola" in text_of(mail)
        bare = str(mail["Message-ID"]).strip("<>")
        record = db.scalar(select(RequestMessage).where(RequestMessage.message_id == bare))
        assert record is not None and record.kind == MessageKind.automatic
    actions = [x.action for x in _history(db, req)]
    assert actions.count("sample_report_resent") == 2
    expert = create_expert(db, countries=["KG"])
    assert c.post(_url(req, "/sample-report/resend"), headers=login(c, expert)).status_code == 404


# Corrections --------------------------------------------------------------------------------


def test_correcting_contact_and_country_reroutes_and_keeps_values_out_of_the_history(
    db: Session, client: object
) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    kg = create_expert(db, countries=["KG"], languages=["ru"])
    am = create_expert(db, countries=["AM"], languages=["ru"])
    req = submit(db, country_of_origin="KG")
    assert req.assigned_expert_id == kg.id
    new_email = f"moved-{MARKER.lower()}@example.org"
    body = {"country_of_origin": "am", "email": new_email, "preferred_channel": "email"}
    resp = c.patch(_url(req), json=body, headers=login(c, staff))
    assert resp.status_code == 200, resp.text
    case = resp.json()
    assert case["request"]["country_of_origin"] == "AM"
    assert case["request"]["personal"]["email"] == new_email
    assert case["request"]["assigned_expert_id"] == str(am.id)  # routed again
    db.refresh(req)
    assert req.email_lookup == keys.email_lookup(db, new_email)
    row = next(h for h in _history(db, req) if h.action == "fields_corrected")
    assert row.details == {"fields": ["country_of_origin", "email"]}
    assert MARKER.lower() not in str(row.details) and row.data_enc is not None
    shown = next(h for h in case["history"] if h["action"] == "fields_corrected")
    assert shown["data"]["after"]["email"] == new_email
    bad = c.patch(_url(req), json={"country_of_origin": "QQ"}, headers=login(c, staff))
    assert bad.status_code == 422 and _fields(bad) == ["country_of_origin"]
    bad_phone = c.patch(
        _url(req), json={"preferred_channel": "whatsapp", "whatsapp": ""}, headers=login(c, staff)
    )
    assert bad_phone.status_code == 422 and _fields(bad_phone) == ["whatsapp"]
    unknown = c.patch(_url(req), json={"full_name": "X"}, headers=login(c, staff))
    assert unknown.status_code == 422 and _fields(unknown) == ["full_name"]


# Merging ------------------------------------------------------------------------------------


def _reminders(db: Session, req: IntakeRequest) -> set[str]:
    rows = db.scalars(
        select(OutboxMessage.status)
        .where(OutboxMessage.dedup_key.startswith(key_prefix(req.id)))
        .execution_options(populate_existing=True)
    ).all()
    assert rows, "the request has reminders queued"
    return {r.value for r in rows}


def _queue_refs(c: Any, h: dict[str, str]) -> set[str]:
    resp = c.get("/api/v1/queue", params={"limit": 100}, headers=h)
    assert resp.status_code == 200, resp.text
    return {item["reference"] for item in resp.json()["items"]}


def test_a_merged_duplicate_leaves_the_queue_and_unlinking_brings_it_back(
    db: Session, client: object
) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    h = login(c, staff)
    keep = submit(db, country_of_origin="AM")
    dup = submit(db, country_of_origin="AM")
    assert {keep.reference, dup.reference} <= _queue_refs(c, h)
    resp = c.post(_url(dup, "/merge"), json={"into": keep.reference.lower()}, headers=h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["merged_into_reference"] == keep.reference
    refs = _queue_refs(c, h)
    assert keep.reference in refs and dup.reference not in refs
    assert c.get(_url(keep), headers=h).json()["request"]["merged_from_references"] == [
        dup.reference
    ]
    assert [x.details for x in _history(db, keep) if x.action == "merged_from"] == [
        {"from": dup.reference}
    ]
    assert any(x.action == "merged_into" for x in _history(db, dup))
    assert _reminders(db, dup) == {"cancelled"}  # the request it joined carries the promise
    # Chains and nonsense are refused.
    chain = c.post(_url(keep, "/merge"), json={"into": dup.reference}, headers=h)
    assert chain.status_code == 409
    itself = c.post(_url(keep, "/merge"), json={"into": keep.reference}, headers=h)
    assert itself.status_code == 422 and _fields(itself) == ["into"]
    missing = c.post(_url(keep, "/merge"), json={"into": "ZZZZZZZZ"}, headers=h)
    assert missing.status_code == 422 and _fields(missing) == ["into"]
    undo = c.delete(_url(dup, "/merge"), headers=h)
    assert undo.status_code == 200 and undo.json()["merged_into_reference"] is None
    assert dup.reference in _queue_refs(c, h)
    assert _reminders(db, dup) == {"pending"}  # nobody answered it: its reminders are back
    assert c.delete(_url(dup, "/merge"), headers=h).status_code == 409
    assert sum(x.action == "merge_undone" for x in _history(db, keep)) == 1


# Presence -----------------------------------------------------------------------------------


def test_two_staff_on_one_case_see_each_other_until_one_leaves(
    db: Session, client: object, clock: Any
) -> None:
    c: Any = client
    one = create_user(db, role=Role.staff, display_name="Staff One")
    two = create_user(db, role=Role.staff, display_name="Staff Two")
    req = submit(db, country_of_origin="AM")
    h1, h2 = login(c, one), login(c, two)
    first = c.post(_url(req, "/presence"), json={"activity": "viewing"}, headers=h1)
    assert first.status_code == 200 and first.json()["others"] == []
    second = c.post(_url(req, "/presence"), json={"activity": "replying"}, headers=h2)
    assert [(p["name"], p["activity"]) for p in second.json()["others"]] == [
        ("Staff One", "viewing")
    ]
    seen = c.get(_url(req, "/presence"), headers=h1).json()
    assert [(p["name"], p["activity"], p["role"]) for p in seen["others"]] == [
        ("Staff Two", "replying", "staff")
    ]
    assert set(seen["others"][0]) == {"user_id", "name", "role", "activity", "seen_at"}
    case = c.get(_url(req), headers=h1).json()
    assert [p["name"] for p in case["others_present"]] == ["Staff Two"]
    bad = c.post(_url(req, "/presence"), json={"activity": "typing"}, headers=h1)
    assert bad.status_code == 422 and _fields(bad) == ["activity"]
    clock.advance(seconds=seen["window_seconds"] + 5)
    assert c.get(_url(req, "/presence"), headers=h1).json()["others"] == []


# Erased requests and the embedded database ----------------------------------------------------


def test_nothing_personal_is_kept_on_an_erased_request(db: Session, client: object) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    req = submit(db, country_of_origin="AM")
    req.data_key_enc = None  # what erasure leaves: the data key is gone
    db.flush()
    h = login(c, staff)
    for tail, body in (("/notes", {"body": "x"}), ("/replies", {"body": "x"})):
        resp = c.post(_url(req, tail), json=body, headers=h)
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "request_erased"
    assert c.patch(_url(req), json={"language": "en"}, headers=h).status_code == 409
    assert c.get(_url(req), headers=h).json()["request"]["erased"] is True


@pytest.mark.sqlite
def test_reply_presence_and_merge_on_sqlite(db: Session, client: object) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    other = create_user(db, role=Role.staff, display_name="Other Staff")
    req = submit(db, country_of_origin="AM")
    dup = submit(db, country_of_origin="AM")
    h = login(c, staff)
    resp = c.post(_url(req, "/replies"), json={"body": "Hello"}, headers=h)
    assert resp.status_code == 201, resp.text
    assert resp.json()["sla"]["state"] == "met"
    c.post(_url(req, "/presence"), json={"activity": "replying"}, headers=login(c, other))
    seen = c.post(_url(req, "/presence"), json={"activity": "viewing"}, headers=h).json()
    assert [(p["name"], p["activity"]) for p in seen["others"]] == [("Other Staff", "replying")]
    merged = c.post(_url(dup, "/merge"), json={"into": req.reference}, headers=h)
    assert merged.status_code == 200, merged.text
    assert dup.reference not in _queue_refs(c, h)


def test_a_reply_the_mail_server_refuses_stops_counting_and_the_clock_runs_again(
    db: Session, client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    req = submit(db, country_of_origin="AM")
    with smtp_server() as (inbox, port):
        monkeypatch.setenv("INTAKE_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("INTAKE_SMTP_PORT", str(port))
        monkeypatch.setenv("INTAKE_SMTP_SECURITY", "none")
        get_settings.cache_clear()
        try:
            resp = c.post(_url(req, "/replies"), json={"body": "Hi"}, headers=login(c, staff))
            assert resp.status_code == 201 and resp.json()["sla"]["state"] == "met"
            inbox.refuse_with = "550 no such user"
            drain(db)
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()
    msg = db.get(RequestMessage, resp.json()["id"], populate_existing=True)
    assert msg is not None and msg.delivery == DeliveryState.bounced
    db.refresh(req)
    assert req.first_responded_at is None
    contact = db.get(RequestContact, msg.contact_id)
    assert contact is not None and contact.bounced_at is not None
    assert _reminders(db, req) >= {"pending"}  # the reminders are back
    assert any(h.action == "reply_refused" for h in _history(db, req))
    case = c.get(_url(req), headers=login(c, staff)).json()
    assert case["sla"]["state"] != "met"
