"""Mail that is not what it seems.

- A person's Outlook message with ``X-Auto-Response-Suppress: All`` opens a request whose clock
  runs, without the acknowledgement it asks us not to send.
- Every message set aside leaves a trace (why, when, size; sender and subject encrypted),
  purged by the daily retention run after ``INTAKE_INBOUND_SET_ASIDE_DAYS`` and by erasure.
- An auto-reply or read receipt on a requester's thread is noted on the request and never
  becomes their message, never touches the clock.
- Staff list the traces (API and page) and can open one as a request.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import crypto
from app.core.settings import get_settings
from app.flows.request import inbound_message
from app.inbound import hygiene, service, set_aside
from app.intake import keys
from app.main import create_app
from app.models import (
    AuditEvent,
    InboundAckCount,
    InboundSetAside,
    IntakeRequest,
    MessageDirection,
    MessageKind,
    OutboxMessage,
    OutboxStatus,
    RequestMessage,
    Role,
    SetAsideReason,
    User,
)
from app.ops import rotation
from app.privacy.service import erase_request, run_retention
from app.sla.scheduling import key_prefix
from tests.conftest import Clock
from tests.factories import (
    DEFAULT_PASSWORD,
    SENDER,
    create_user,
    drain,
    fixture,
    hidden_fields,
    history,
    login,
    outbox_rows,
    plain,
    real_database,
    request_of,
)
from tests.mail_reader import messages

FARID = "farid.rahimi@outlook.example"
T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
LIST_URL = "/api/v1/inbound/set-aside"


def traces(db: Session) -> list[InboundSetAside]:
    return list(db.scalars(select(InboundSetAside).order_by(InboundSetAside.recorded_at)).all())


def sla_rows(db: Session, req: IntakeRequest) -> list[OutboxMessage]:
    return list(
        db.scalars(
            select(OutboxMessage).where(OutboxMessage.dedup_key.startswith(key_prefix(req.id)))
        ).all()
    )


def acknowledged_request(db: Session, mail_dir: Path) -> tuple[IntakeRequest, str]:
    """A request from SENDER whose acknowledgement went out; (request, its Message-ID)."""
    req = request_of(db, inbound_message(db, plain(subject="Please help me")).reference)
    drain(db)
    ack = db.scalars(
        select(RequestMessage).where(
            RequestMessage.request_id == req.id,
            RequestMessage.direction == MessageDirection.outbound,
        )
    ).one()
    assert ack.message_id is not None
    assert any(m["To"] == SENDER for m in messages(mail_dir))
    return req, ack.message_id


# A person asking for no automatic answer ------------------------------------------------------


def test_an_outlook_message_asking_for_no_auto_reply_opens_a_request_without_acknowledgement(
    db: Session, mail_dir: Path, clock: Clock
) -> None:
    clock.at(T0)  # after the fixture's Received date, whatever the suite's instant
    staff = create_user(db, role=Role.staff)
    outcome = inbound_message(db, fixture("outlook_person_suppress.eml"))
    assert outcome.action == "created"
    req = request_of(db, outcome.reference)
    # The clock runs from the mailbox's receive time, as for any e-mailed request.
    assert req.received_at == dt.datetime(2026, 11, 23, 9, 12, 40, tzinfo=dt.UTC)
    assert req.first_response_due_at == req.received_at + dt.timedelta(minutes=60)
    assert req.first_responded_at is None
    assert {r.kind for r in sla_rows(db, req)} == {"sla.reminder", "sla.escalation"}
    # Staff are alerted; the sender gets nothing automatic, and the history says why.
    alerts = outbox_rows(db, service.TRIAGE_ALERT_KIND)
    assert [r.params["user_id"] for r in alerts] == [str(staff.id)]
    assert outbox_rows(db, service.ACK_KIND) == []
    assert not history(db, req, "ack_queued")
    [why] = history(db, req, "ack_suppressed")
    assert why.details == {"reason": "X-Auto-Response-Suppress: All"}
    assert db.scalar(select(func.count()).select_from(InboundAckCount)) == 0
    drain(db)
    assert not [m for m in messages(mail_dir) if m["To"] == FARID]
    assert traces(db) == []  # a person's mail is not set aside


@pytest.mark.parametrize(
    ("value", "acknowledged"),
    [
        ("All", False),
        ("all", False),
        ("AutoReply", False),
        ("OOF, AutoReply", False),
        ("DR, NDR, RN, NRN", True),
        ("OOF", True),
        ("None", True),
    ],
)
def test_only_all_or_autoreply_withholds_the_acknowledgement(
    db: Session, value: str, acknowledged: bool
) -> None:
    outcome = inbound_message(db, plain(X_Auto_Response_Suppress=value))
    assert outcome.action == "created"
    req = request_of(db, outcome.reference)
    assert bool(history(db, req, "ack_queued")) is acknowledged
    assert bool(history(db, req, "ack_suppressed")) is not acknowledged


def test_mail_an_exchange_inbox_rule_forwarded_opens_a_request_without_acknowledgement(
    db: Session,
) -> None:
    outcome = inbound_message(
        db, plain(subject="FW: my case", X_MS_Exchange_Inbox_Rules_Loop="office@firm.example")
    )
    assert outcome.action == "created"
    req = request_of(db, outcome.reference)
    [why] = history(db, req, "ack_suppressed")
    assert why.details == {"reason": hygiene.RULES_LOOP}
    assert outbox_rows(db, service.ACK_KIND) == []


# Auto-replies and read receipts on a requester's thread --------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("exchange_inbox_rule_reply.eml", "auto_reply"),
        ("read_receipt_outlook.eml", "read_receipt"),
    ],
    ids=["exchange-inbox-rule-auto-reply", "read-receipt"],
)
def test_an_auto_reply_on_a_requesters_thread_is_noted_and_never_counts(
    db: Session, mail_dir: Path, name: str, reason: str
) -> None:
    req, ack_id = acknowledged_request(db, mail_dir)
    clock_before = (req.first_response_due_at, req.first_responded_at, req.status)
    pending_before = {r.id for r in sla_rows(db, req) if r.status == OutboxStatus.pending}
    messages_before = db.scalar(select(func.count()).where(RequestMessage.request_id == req.id))
    outbox_before = db.scalar(select(func.count()).select_from(OutboxMessage))
    raw = fixture(name, REFERENCE=req.reference, **{"ACK-MESSAGE-ID": ack_id})

    outcome = inbound_message(db, raw)

    assert (outcome.action, outcome.reference, outcome.reason) == (
        "set_aside",
        req.reference,
        reason,
    )
    db.refresh(req)
    assert (req.first_response_due_at, req.first_responded_at, req.status) == clock_before
    assert {r.id for r in sla_rows(db, req) if r.status == OutboxStatus.pending} == (pending_before)
    # Not the requester's message, no answer, no new request: a note in the history instead.
    assert (
        db.scalar(select(func.count()).where(RequestMessage.request_id == req.id))
        == messages_before
    )
    assert not history(db, req, "requester_message")
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == outbox_before
    assert db.scalar(select(func.count()).select_from(IntakeRequest)) == 1
    [trace] = traces(db)
    assert trace.request_id == req.id and trace.reason.value == reason
    [note] = history(db, req, set_aside.HISTORY_ACTION)
    assert note.details["set_aside_id"] == str(trace.id)
    assert note.details["reason"] == reason


# The trace ----------------------------------------------------------------------------------


def test_a_set_aside_message_keeps_sender_subject_and_copy_encrypted(
    db: Session, clock: Clock
) -> None:
    clock.at(T0)
    raw = fixture("newsletter_list_unsubscribe.eml")
    outcome = inbound_message(db, raw, via="imap")
    assert (outcome.action, outcome.reason) == ("set_aside", "mailing_list")
    [trace] = traces(db)
    assert trace.detail == "List-Unsubscribe"
    assert trace.via == "imap" and trace.size == len(raw)
    assert trace.received_at == dt.datetime(2026, 11, 23, 7, 0, 14, tzinfo=dt.UTC)
    stored = b"".join(
        v for v in (trace.data_enc, trace.raw_enc, trace.data_key_enc) if v is not None
    )
    for plain_text in (b"news@mail.countrywatch.example", b"countrywatch", b"detention"):
        assert plain_text not in stored
    assert "countrywatch" not in trace.message_key and len(trace.message_key) == 64
    assert trace.data_key_id == crypto.master_key().key_id
    data = set_aside.reveal(trace)
    assert data is not None
    assert data["from"] == "news@mail.countrywatch.example"
    assert data["subject"] == "This week: detention conditions, new country guidance"
    assert set_aside.reveal_raw(trace) == raw
    assert trace.sender_lookup == keys.email_lookup(db, "news@mail.countrywatch.example")


def test_the_same_set_aside_message_read_twice_leaves_one_trace(db: Session) -> None:
    raw = fixture("newsletter_list_unsubscribe.eml")
    assert inbound_message(db, raw).action == "set_aside"
    again = inbound_message(db, raw, via="imap")
    assert (again.action, again.reason) == ("duplicate", "set_aside_before")
    assert len(traces(db)) == 1


def test_what_the_poller_cannot_read_as_an_e_mail_leaves_a_trace(db: Session) -> None:
    outcome = inbound_message(db, b"\x00\x01 not a message \xff", via="imap")
    assert (outcome.action, outcome.reason) == ("set_aside", "unreadable")
    [trace] = traces(db)
    assert trace.reason == SetAsideReason.unreadable
    assert trace.detail == "it has no headers" and trace.raw_enc is None
    assert inbound_message(db, b"\x00\x01 not a message \xff", via="imap").action == "duplicate"


def test_a_message_too_large_to_keep_leaves_a_trace_that_cannot_be_opened(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTAKE_INBOUND_MAX_MESSAGE_BYTES", "2048")
    get_settings.cache_clear()
    try:
        raw = plain(body="x" * 4000, List_Id="<big.lists.example>")
        assert inbound_message(db, raw).action == "set_aside"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    [trace] = traces(db)
    assert trace.size == len(raw) and trace.raw_enc is None
    assert not set_aside.can_open(trace)


# Retention and erasure ----------------------------------------------------------------------


@pytest.fixture
def seven_days(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("INTAKE_INBOUND_SET_ASIDE_DAYS", "7")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_daily_retention_run_deletes_traces_past_their_period(
    db: Session, clock: Clock, seven_days: None
) -> None:
    clock.at(T0)
    inbound_message(db, fixture("newsletter_list_unsubscribe.eml"))
    clock.at(T0 + dt.timedelta(days=3))
    inbound_message(db, plain(List_Id="<later.lists.example>"))
    assert len(traces(db)) == 2

    clock.at(T0 + dt.timedelta(days=7) - dt.timedelta(minutes=1))
    run_retention(db)
    assert len(traces(db)) == 2  # a minute short of seven days: kept

    clock.at(T0 + dt.timedelta(days=7, minutes=1))
    run_retention(db)
    [kept] = traces(db)
    data = set_aside.reveal(kept)
    assert data is not None and data["from"] == SENDER  # the later one stays
    run = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "retention.run").order_by(AuditEvent.seq)
    ).all()[-1]
    assert run.details is not None
    assert (run.details["set_aside_purged"], run.details["set_aside_days"]) == (1, 7)


def test_erasing_a_request_deletes_what_its_thread_and_address_left_set_aside(
    db: Session,
) -> None:
    req = request_of(db, inbound_message(db, plain(subject="Please help")).reference)
    first = db.scalars(select(RequestMessage).where(RequestMessage.request_id == req.id)).one()
    # An auto-reply on its thread, a list message from the same address, and a stranger's.
    inbound_message(db, plain(Auto_Submitted="auto-replied", In_Reply_To=f"<{first.message_id}>"))
    inbound_message(db, plain(subject="digest", List_Id="<digest.lists.example>"))
    inbound_message(db, plain(sender="someone@else.example", Precedence="bulk"))
    assert len(traces(db)) == 3
    assert sum(1 for t in traces(db) if t.request_id == req.id) == 1

    counts = erase_request(db, req, by="system", reason="requester_asked")

    assert counts["set_aside_mail"] == 2
    [left] = traces(db)
    data = set_aside.reveal(left)
    assert data is not None and data["from"] == "someone@else.example"


def test_rotating_the_master_key_rewraps_the_keys_of_mail_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's rotation (app/ops/rotation.py, batches with real commits) on a database of
    its own."""
    old_text = crypto.generate_master_key_text("before7")
    new_text = crypto.generate_master_key_text("rotated7")
    with real_database("sqlite", tmp_path) as rdb:
        try:
            monkeypatch.setenv("INTAKE_MASTER_KEY", old_text)
            get_settings.cache_clear()
            crypto.master_key.cache_clear()
            keys.forget_cached_keys()
            with rdb.session() as session:
                inbound_message(session, fixture("newsletter_list_unsubscribe.eml"))
                session.commit()
                assert [t.data_key_id for t in traces(session)] == ["before7"]
            monkeypatch.setenv("INTAKE_MASTER_KEY", new_text)
            monkeypatch.setenv("INTAKE_OLD_MASTER_KEYS", old_text)
            get_settings.cache_clear()
            crypto.master_key.cache_clear()
            keys.forget_cached_keys()
            report = rotation.rotate(rdb.engine)
            assert report.rewrapped["inbound_set_aside.data_key_enc"] == 1
            # The old key may now go: the trace stays readable under the new one alone.
            monkeypatch.delenv("INTAKE_OLD_MASTER_KEYS")
            get_settings.cache_clear()
            with rdb.session() as session:
                [trace] = traces(session)
                assert trace.data_key_id == "rotated7"
                data = set_aside.reveal(trace)
                assert data is not None and data["from"] == "news@mail.countrywatch.example"
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()
            crypto.master_key.cache_clear()
            keys.forget_cached_keys()


# The API ------------------------------------------------------------------------------------


def _three_set_aside(db: Session, clock: Clock) -> dict[str, bytes]:
    raws = {
        "mailing_list": fixture("newsletter_list_unsubscribe.eml"),
        "auto_reply": fixture("out_of_office_exchange.eml"),
        "read_receipt": fixture("read_receipt_outlook.eml", REFERENCE="ABCD2345"),
    }
    clock.at(T0)
    for n, raw in enumerate(raws.values()):
        clock.at(T0 + dt.timedelta(minutes=n))
        assert inbound_message(db, raw).action == "set_aside"
    return raws


def test_staff_list_mail_set_aside_with_why_and_a_masked_sender(
    client: Any, db: Session, clock: Clock
) -> None:
    raws = _three_set_aside(db, clock)
    headers = login(client, create_user(db, role=Role.staff))
    resp = client.get(LIST_URL, headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [i["reason"] for i in body["items"]] == ["read_receipt", "auto_reply", "mailing_list"]
    assert body["retention_days"] == 30 and body["next_cursor"] is None
    ooo = body["items"][1]
    assert ooo["sender"] == "f***@outlook.example"
    assert ooo["sender_domain"] == "outlook.example"
    assert ooo["subject"] == "Automatic reply: Expert report request"
    assert ooo["detail"] == "Auto-Submitted: auto-replied"
    assert ooo["size"] == len(raws["auto_reply"])
    assert ooo["received_at"] == "2026-11-23T09:14:07Z"
    assert (ooo["can_open"], ooo["reference"], ooo["opened_at"]) == (True, None, None)
    assert FARID not in resp.text and SENDER not in resp.text  # never a full address

    only = client.get(LIST_URL, params={"reason": "mailing_list"}, headers=headers).json()
    assert [i["detail"] for i in only["items"]] == ["List-Unsubscribe"]

    seen, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client.get(LIST_URL, params=params, headers=headers).json()
        seen += [i["reason"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["read_receipt", "auto_reply", "mailing_list"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": f"2026-11-23T12:00:00_{uuid.uuid4()}"}, "cursor"),  # no zone: not ours
        ({"cursor": f"0001-01-01T00:00:00+14:00_{uuid.uuid4()}"}, "cursor"),  # before year 1
        ({"reason": "spam"}, "reason"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
    ],
)
def test_a_bad_list_parameter_is_422_naming_it(
    client: Any, db: Session, params: dict[str, Any], field: str
) -> None:
    headers = login(client, create_user(db, role=Role.staff))
    resp = client.get(LIST_URL, params=params, headers=headers)
    assert resp.status_code == 422, resp.text
    assert field in [f["field"] for f in resp.json()["error"]["fields"]]


def test_experts_may_not_see_mail_set_aside(client: Any, db: Session) -> None:
    headers = login(client, create_user(db, role=Role.expert))
    assert client.get(LIST_URL, headers=headers).status_code == 403


def _open(client: Any, headers: dict[str, str], trace_id: object) -> Any:
    return client.post(f"{LIST_URL}/{trace_id}/open", headers=headers)


def test_staff_open_a_set_aside_message_as_a_request_without_acknowledgement(
    client: Any, db: Session
) -> None:
    """A person who wrote through a Google Group: set aside as list mail, opened by staff."""
    staff = create_user(db, role=Role.staff, display_name="Nadia Staff")
    headers = login(client, staff)
    raw = plain(subject="Expert report for my case", body="My hearing is soon.", List_Id="<g>")
    assert inbound_message(db, raw).reason == "mailing_list"
    [trace] = traces(db)

    resp = _open(client, headers, trace.id)

    assert resp.status_code == 200, resp.text
    assert resp.json()["action"] == "created"
    req = request_of(db, resp.json()["reference"])
    assert req.received_at == trace.received_at  # the wait was real: the clock runs from then
    assert req.first_response_due_at == trace.received_at + dt.timedelta(minutes=60)
    assert outbox_rows(db, service.ACK_KIND) == []
    [why] = history(db, req, "ack_suppressed")
    assert why.details == {"reason": service.OPENED_BY_STAFF}
    [opened] = history(db, req, "opened_from_set_aside")
    assert opened.actor == f"user:{staff.id}"
    row = db.scalars(select(RequestMessage).where(RequestMessage.request_id == req.id)).one()
    assert row.kind == MessageKind.requester
    data = service.reveal_message(req, row)
    assert data is not None and data["body"] == "My hearing is soon."
    db.refresh(trace)
    assert trace.opened_by == staff.id and trace.opened_at is not None
    assert trace.request_id == req.id and trace.raw_enc is None  # the copy lives on the request
    audit = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "inbound.set_aside.open")
    ).one()
    assert audit.target == str(trace.id) and audit.actor == str(staff.id)

    listed = client.get(LIST_URL, headers=headers).json()["items"][0]
    assert (listed["can_open"], listed["reference"], listed["opened_by"]) == (
        False,
        req.reference,
        "Nadia Staff",
    )
    again = _open(client, headers, trace.id)
    assert again.status_code == 409
    assert db.scalar(select(func.count()).select_from(IntakeRequest)) == 1


def test_opening_an_auto_reply_on_a_thread_adds_it_to_its_request(
    client: Any, db: Session, mail_dir: Path
) -> None:
    req, ack_id = acknowledged_request(db, mail_dir)
    raw = fixture(
        "exchange_inbox_rule_reply.eml", REFERENCE=req.reference, **{"ACK-MESSAGE-ID": ack_id}
    )
    inbound_message(db, raw)
    [trace] = traces(db)
    resp = _open(client, login(client, create_user(db, role=Role.staff)), trace.id)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"action": "reply", "reference": req.reference}
    assert history(db, req, "requester_message")
    assert db.scalar(select(func.count()).select_from(IntakeRequest)) == 1


@pytest.mark.parametrize(
    ("set_aside_id", "status", "code"),
    [
        (str(uuid.uuid4()), 404, "set_aside_not_found"),
        ("not-a-uuid", 422, "validation_error"),
    ],
    ids=["unknown", "not-a-uuid"],
)
def test_opening_what_does_not_exist_is_refused(
    client: Any, db: Session, set_aside_id: str, status: int, code: str
) -> None:
    headers = login(client, create_user(db, role=Role.staff))
    resp = _open(client, headers, set_aside_id)
    assert (resp.status_code, resp.json()["error"]["code"]) == (status, code)


def test_our_own_mail_set_aside_cannot_be_opened(client: Any, db: Session) -> None:
    inbound_message(db, plain(sender="no-reply@localhost"))
    [trace] = traces(db)
    resp = _open(client, login(client, create_user(db, role=Role.staff)), trace.id)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "set_aside_not_openable"
    assert db.scalar(select(func.count()).select_from(IntakeRequest)) == 0


# The page -----------------------------------------------------------------------------------

PAGE = "/staff/inbound/set-aside"


def signed_in(web: TestClient, user: User) -> TestClient:
    hidden = hidden_fields(web.get("/staff/sign-in").text)
    resp = web.post(
        "/staff/sign-in",
        data={**hidden, "email": user.email, "password": DEFAULT_PASSWORD},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    return web


def test_the_page_lists_mail_set_aside_and_staff_open_one_as_a_request(
    web: TestClient, db: Session
) -> None:
    signed_in(web, create_user(db, role=Role.staff))
    inbound_message(db, fixture("newsletter_list_unsubscribe.eml"))
    inbound_message(db, plain(subject="Report for my appeal", List_Id="<intake.groups.example>"))
    queue = web.get("/staff/queue")
    assert f'href="{PAGE}"' in queue.text  # in the staff navigation

    page = web.get(PAGE)
    assert page.status_code == 200
    assert "Mailing list or newsletter" in page.text
    assert "n***@mail.countrywatch.example" in page.text
    assert "This week: detention conditions, new country guidance" in page.text
    assert "news@mail.countrywatch.example" not in page.text and SENDER not in page.text
    assert f'<a href="{PAGE}" aria-current="page">' in page.text
    assert "deleted 30 days after it arrived" in page.text

    person = next(
        t
        for t in traces(db)
        if (set_aside.reveal(t) or {}).get("subject") == "Report for my appeal"
    )
    form = hidden_fields(page.text)
    resp = web.post(f"{PAGE}/{person.id}/open", data=form, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"].startswith(f"{PAGE}?done=opened&opened=")
    req = db.scalars(select(IntakeRequest)).one()
    assert req.reference in resp.headers["location"]
    done = web.get(resp.headers["location"])
    assert "Opened as request" in done.text
    assert f'href="/staff/cases/{req.reference}"' in done.text

    refused = web.post(f"{PAGE}/{person.id}/open", data=form)
    assert refused.status_code == 409
    assert "opened already" in refused.text


def test_the_page_filters_by_reason(web: TestClient, db: Session) -> None:
    signed_in(web, create_user(db, role=Role.staff))
    inbound_message(db, fixture("newsletter_list_unsubscribe.eml"))
    inbound_message(db, fixture("out_of_office_exchange.eml"))
    page = web.get(PAGE, params={"reason": "auto_reply"})
    assert "Automatic reply: Expert report request" in page.text
    assert "detention conditions" not in page.text


def test_opening_from_the_page_needs_the_form_token_and_a_staff_role(
    web: TestClient, db: Session
) -> None:
    inbound_message(db, plain(List_Id="<intake.groups.example>"))
    [trace] = traces(db)
    signed_in(web, create_user(db, role=Role.staff))
    web.get(PAGE)
    assert web.post(f"{PAGE}/{trace.id}/open", data={}).status_code == 403
    db.refresh(trace)
    assert trace.opened_at is None

    expert_web = TestClient(create_app(), base_url="https://testserver")
    with expert_web:
        signed_in(expert_web, create_user(db, role=Role.expert))
        assert expert_web.get(PAGE).status_code == 403


@pytest.mark.sqlite
def test_on_the_embedded_default_traces_page_by_cursor_and_are_purged(
    db: Session, clock: Clock
) -> None:
    clock.at(T0)
    for n in range(3):
        clock.at(T0 + dt.timedelta(days=n))
        inbound_message(db, plain(subject=f"digest {n}", List_Id="<digest.lists.example>"))
    seen, cursor = [], None
    while True:
        page = set_aside.listing(db, limit=2, cursor=cursor)
        seen += [item.subject for item in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["digest 2", "digest 1", "digest 0"]
    clock.at(T0 + dt.timedelta(days=31, minutes=1))
    run_retention(db)
    assert [(set_aside.reveal(t) or {}).get("subject") for t in traces(db)] == ["digest 2"]
