"""Hygiene and delivery reports: auto-replies (Exchange inbox rules too), list mail and
newsletters, read receipts, bounces, loops and our own mail never open a request and never get an
answer, and each leaves a trace; a delivery-status report lands on the request of
the message it reports on, a permanent failure flags the address, and a bounced reply stops
counting as the first response (the responder is told and the clock goes on)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cases import replies
from app.core.time import now
from app.flows.request import inbound_message
from app.inbound import service
from app.intake import keys
from app.models import (
    DeliveryState,
    FlaggedAddress,
    InboundSetAside,
    IntakeRequest,
    MessageDirection,
    MessageKind,
    OutboxMessage,
    OutboxStatus,
    RequestContact,
    RequestHistory,
    RequestMessage,
    Role,
)
from app.sla.scheduling import key_prefix
from tests.factories import SENDER, create_user, drain, fixture, plain, request_of
from tests.mail_reader import messages, parse, text_of


def with_headers(raw: bytes, *headers: tuple[str, str]) -> bytes:
    """``raw`` with headers added (a name may repeat, e.g. Received)."""
    msg = parse(raw)
    for name, value in headers:
        msg[name] = value
    return msg.as_bytes()


def hops(n: int) -> list[tuple[str, str]]:
    return [
        ("Received", f"from relay{i}.example.net by relay{i + 1}.example.net; {RFC_DATE}")
        for i in range(n)
    ]


RFC_DATE = "Mon, 23 Nov 2026 09:00:00 +0000"


def counts(db: Session) -> tuple[int, int, int]:
    return (
        int(db.scalar(select(func.count()).select_from(IntakeRequest)) or 0),
        int(db.scalar(select(func.count()).select_from(RequestMessage)) or 0),
        int(db.scalar(select(func.count()).select_from(OutboxMessage)) or 0),
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (lambda: fixture("out_of_office_exchange.eml"), "auto_reply"),
        (lambda: fixture("list_message.eml"), "mailing_list"),
        (lambda: plain(Auto_Submitted="auto-replied"), "auto_reply"),
        (lambda: plain(X_Autoreply="yes"), "auto_reply"),
        (lambda: plain(X_Autorespond="yes"), "auto_reply"),
        (lambda: plain(Precedence="bulk"), "mailing_list"),
        (lambda: plain(Precedence="junk"), "mailing_list"),
        (lambda: plain(Precedence="auto_reply"), "auto_reply"),
        (lambda: plain(sender="MAILER-DAEMON@mx.example.org"), "bounce"),
        (lambda: plain(sender="postmaster@example.net"), "bounce"),
        (lambda: plain(sender="no-reply@localhost"), "own_mail"),
        (lambda: fixture("newsletter_list_unsubscribe.eml"), "mailing_list"),
        (lambda: plain(List_Unsubscribe="<https://news.example/u/1>"), "mailing_list"),
        (lambda: plain(List_Unsubscribe_Post="List-Unsubscribe=One-Click"), "mailing_list"),
        (lambda: plain(List_Post="<mailto:group@lists.example>"), "mailing_list"),
        (lambda: fixture("exchange_inbox_rule_reply.eml"), "auto_reply"),
        (lambda: plain(subject="Automatic reply: Expert report"), "auto_reply"),
        (lambda: plain(subject="Out of Office: back on Monday"), "auto_reply"),
        (lambda: plain(subject="Réponse automatique : absent"), "auto_reply"),
        (lambda: fixture("read_receipt_outlook.eml"), "read_receipt"),
        (lambda: with_headers(plain(), *hops(26)), "loop"),
    ],
    ids=[
        "outlook-out-of-office",
        "list-message",
        "auto-submitted",
        "x-autoreply",
        "x-autorespond",
        "precedence-bulk",
        "precedence-junk",
        "precedence-auto-reply",
        "mailer-daemon",
        "postmaster",
        "our-own-from-address",
        "newsletter-list-unsubscribe-only",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-post",
        "exchange-inbox-rule-reply-without-auto-submitted",
        "subject-automatic-reply",
        "subject-out-of-office",
        "subject-french-outlook",
        "read-receipt",
        "26-received-hops",
    ],
)
def test_machine_mail_never_opens_a_request_nor_gets_an_answer(
    db: Session, raw: object, reason: str
) -> None:
    create_user(db, role=Role.staff)
    before = counts(db)
    message = raw()  # type: ignore[operator]
    outcome = inbound_message(db, message)
    assert (outcome.action, outcome.reason) == ("set_aside", reason)
    assert counts(db) == before  # no request, no message, nothing queued (no answer)
    # ... but a trace staff can see, with why.
    [trace] = db.scalars(select(InboundSetAside)).all()
    assert trace.reason.value == reason and trace.size == len(message)


@pytest.mark.parametrize(
    ("machine", "person", "reason"),
    [
        (
            lambda: with_headers(plain(), *hops(26)),
            lambda: with_headers(plain(), *hops(25)),
            "loop",
        ),
        (
            lambda: plain(subject="Automatic reply: Expert report"),
            lambda: plain(subject="Re: Automatic reply: Expert report"),
            "auto_reply",
        ),
        (
            lambda: plain(subject="Out of office: until Monday"),
            lambda: plain(subject="I will be out of office: please call"),
            "auto_reply",
        ),
    ],
    ids=["25-hops-is-a-person", "a-person-answering-an-auto-reply", "words-later-in-the-subject"],
)
def test_the_marks_of_a_machine_stop_short_of_a_person_writing(
    db: Session, machine: object, person: object, reason: str
) -> None:
    set_aside = inbound_message(db, machine())  # type: ignore[operator]
    assert (set_aside.action, set_aside.reason) == ("set_aside", reason)
    assert inbound_message(db, person()).action == "created"  # type: ignore[operator]


def test_auto_submitted_no_is_a_person_writing(db: Session) -> None:
    assert inbound_message(db, plain(Auto_Submitted="no")).action == "created"


def test_our_own_message_coming_back_is_ignored(db: Session, mail_dir: Path) -> None:
    req = request_of(db, inbound_message(db, fixture("new_request_gmail.eml")).reference)
    drain(db)
    ack = next(m for m in messages(mail_dir) if m["To"] == SENDER)
    before = counts(db)
    outcome = inbound_message(db, ack.as_bytes())
    assert (outcome.action, outcome.reason) == ("set_aside", "own_mail")
    assert counts(db) == before
    assert req.status.value == "new"
    [trace] = db.scalars(select(InboundSetAside)).all()
    assert trace.reason.value == "own_mail" and trace.request_id == req.id


def _request_with_sent_message(db: Session, message_id: str, kind: MessageKind) -> IntakeRequest:
    req = request_of(db, inbound_message(db, fixture("new_request_gmail.eml")).reference)
    db.add(
        RequestMessage(
            request_id=req.id,
            direction=MessageDirection.outbound,
            kind=kind,
            message_id=message_id,
            at=now(),
            recorded_at=now(),
            delivery=DeliveryState.sent,
        )
    )
    db.flush()
    return req


def test_a_delivery_report_lands_on_its_request_and_flags_the_address(db: Session) -> None:
    req = _request_with_sent_message(db, "outbox-987654@localhost", MessageKind.automatic)
    outcome = inbound_message(db, fixture("dsn_postfix.eml"))
    assert (outcome.action, outcome.reference, outcome.reason) == (
        "delivery_report",
        req.reference,
        "5.1.1",
    )
    report = db.scalars(
        select(RequestMessage).where(RequestMessage.kind == MessageKind.delivery_report)
    ).one()
    assert report.request_id == req.id and report.in_reply_to == "outbox-987654@localhost"
    event = db.scalars(
        select(RequestHistory).where(
            RequestHistory.request_id == req.id, RequestHistory.action == "delivery_report"
        )
    ).one()
    assert event.details["permanent"] is True and event.details["status"] == "5.1.1"
    original = db.scalars(
        select(RequestMessage).where(RequestMessage.message_id == "outbox-987654@localhost")
    ).one()
    assert original.delivery == DeliveryState.bounced
    flagged = db.get(FlaggedAddress, keys.email_lookup(db, SENDER))
    assert flagged is not None and flagged.status == "5.1.1"
    # The flagged address gets no more acknowledgements.
    later = request_of(db, inbound_message(db, plain(subject="again")).reference)
    actions = db.scalars(
        select(RequestHistory.action).where(RequestHistory.request_id == later.id)
    ).all()
    assert "ack_skipped" in actions and "ack_queued" not in actions


def test_a_delivery_report_for_a_message_we_never_sent_is_ignored(db: Session) -> None:
    before = counts(db)
    outcome = inbound_message(db, fixture("dsn_postfix.eml"))
    assert (outcome.action, outcome.reason) == ("set_aside", "delivery_report_unmatched")
    assert counts(db) == before
    [trace] = db.scalars(select(InboundSetAside)).all()
    assert trace.reason.value == "delivery_report_unmatched" and trace.request_id is None


def test_a_bounced_first_response_stops_counting_and_the_responder_is_told(
    db: Session, mail_dir: Path
) -> None:
    staff = create_user(db, role=Role.staff)
    req = request_of(db, inbound_message(db, fixture("new_request_gmail.eml")).reference)
    # The mailbox received it a minute ago, so the clock is still running.
    req.received_at = now() - dt.timedelta(minutes=1)
    req.first_response_due_at = req.received_at + dt.timedelta(minutes=60)
    db.flush()
    sent = replies.reply(db, req, staff, "We are on it; an expert will call you today.")
    assert req.first_responded_at is not None  # the reply counted
    pending = select(func.count()).where(
        OutboxMessage.dedup_key.startswith(key_prefix(req.id)),
        OutboxMessage.status == OutboxStatus.pending,
    )
    assert db.scalar(pending) == 0  # reminders cancelled by the first response
    assert sent.message_id is not None
    raw = fixture("dsn_postfix.eml", **{"outbox-987654@localhost": sent.message_id})
    outcome = inbound_message(db, raw)
    assert outcome.action == "delivery_report"
    db.refresh(req)
    assert req.first_responded_at is None  # the clock goes on
    contact = db.get(RequestContact, sent.contact_id)
    assert contact is not None and contact.bounced_at is not None
    assert (db.scalar(pending) or 0) > 0  # reminders and escalation are armed again
    notices = db.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == service.BOUNCE_NOTICE_KIND)
    ).all()
    assert [n.params["user_id"] for n in notices] == [str(staff.id)]
    for row in db.scalars(
        select(OutboxMessage).where(OutboxMessage.kind != service.BOUNCE_NOTICE_KIND)
    ).all():
        if row.status == OutboxStatus.pending:
            row.due_at = now() + dt.timedelta(days=1)  # only the notice is delivered now
    db.flush()
    drain(db)
    [notice] = [m for m in messages(mail_dir) if m["To"] == staff.email]
    assert req.reference in str(notice["Subject"]) and "bounced" in str(notice["Subject"])
    assert "no longer counts" in text_of(notice)
    assert SENDER not in notice.as_string()


def test_a_gmail_style_report_with_the_whole_message_attached_lands_too(db: Session) -> None:
    """Gmail's bounces carry the original as message/rfc822, not text/rfc822-headers."""
    req = _request_with_sent_message(db, "outbox-987654@localhost", MessageKind.automatic)
    outcome = inbound_message(db, fixture("dsn_gmail.eml"))
    assert (outcome.action, outcome.reference, outcome.reason) == (
        "delivery_report",
        req.reference,
        "5.1.1",
    )
    assert db.get(FlaggedAddress, keys.email_lookup(db, SENDER)) is not None
