"""E-mails to requesters: the sample report and the expert's CV (once, when an expert
accepts or at the wait, whichever comes first; best match country > region > general; staff
alerted when something is missing), the consultation reminders (24 h and 1 h before, moved by a
reschedule, dropped by a cancel), the languages, and discretion."""

from __future__ import annotations

import datetime as dt
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.experts import service as experts
from app.flows import request as flows
from app.models import (
    Assignment,
    Document,
    IntakeRequest,
    OutboxMessage,
    OutboxStatus,
    Region,
    RequestHistory,
    Role,
    User,
)
from app.sendouts import service as sendouts
from app.sendouts.handlers import SUBJECTS
from app.sendouts.service import REMINDER_KIND
from tests.factories import (
    MARKER,
    at,
    bearer,
    create_expert,
    create_user,
    day_in,
    drain,
    expert_with_hours,
    iso,
    login,
    make_request,
    submit,
    tiny_pdf,
)
from tests.mail_reader import html_of, messages, text_of

EE = "eastern_europe_post_soviet"
LONDON = "Europe/London"
BOTH = ["sample_report", "expert_cv"]


# Helpers ---------------------------------------------------------------------------------------


def _admin(db: Session) -> User:
    return create_user(db, role=Role.admin)


def _with_cv(db: Session, expert: User, data: bytes) -> Document:
    return experts.set_cv(db, expert.id, data=data, filename="cv.pdf", by=_admin(db))


def _report(
    db: Session, data: bytes, *, country: str | None = None, region: str | None = None
) -> Document:
    return sendouts.upload_sample_report(
        db,
        data=data,
        filename="report.pdf",
        uploaded_by=_admin(db).id,
        country_code=country,
        region_code=region,
    )


def _to(mail_dir: Path, address: str) -> list[EmailMessage]:
    return [m for m in messages(mail_dir) if str(m["To"]) == address]


def _pdfs(msg: EmailMessage) -> list[tuple[str, bytes]]:
    out = []
    for part in msg.iter_attachments():
        assert part.get_content_type() == "application/pdf"
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out.append((str(part.get_filename()), payload))
    return out


def _docs_mails(mail_dir: Path, address: str) -> list[EmailMessage]:
    return [
        m
        for m in _to(mail_dir, address)
        if any(p.get_content_type() == "application/pdf" for p in m.iter_attachments())
    ]


def _bodies(msg: EmailMessage) -> tuple[str, str]:
    return text_of(msg), html_of(msg)


def _offer(db: Session, req: IntakeRequest) -> Assignment:
    a = db.scalar(select(Assignment).where(Assignment.request_id == req.id))
    assert a is not None
    return a


def _history(db: Session, req: IntakeRequest, action: str) -> list[RequestHistory]:
    return list(
        db.scalars(
            select(RequestHistory).where(
                RequestHistory.request_id == req.id, RequestHistory.action == action
            )
        ).all()
    )


def _email() -> str:
    return f"docs-{uuid.uuid4().hex[:8]}@example.org"


# Documents: when -------------------------------------------------------------------------------


def test_documents_go_once_when_the_expert_accepts_and_not_again_at_the_wait(
    db: Session, mail_dir: Path, clock: Any
) -> None:
    expert = create_expert(db, countries=["KG"], languages=["en"])
    cv_bytes, report_bytes = tiny_pdf(2), tiny_pdf(3)
    cv = _with_cv(db, expert, cv_bytes)
    report = _report(db, report_bytes, country="kg")
    address = _email()
    req = submit(db, wants=BOTH, language="en", email=address)
    drain(db)
    assert _docs_mails(mail_dir, address) == []  # only offered so far: nothing yet

    clock.advance(minutes=5)
    flows.answer_offer(db, _offer(db, req).id, expert, accept=True)
    drain(db)
    sent = _docs_mails(mail_dir, address)
    assert len(sent) == 1
    msg = sent[0]
    assert f"[{req.reference}]" in str(msg["Subject"])
    assert str(msg["Message-ID"]).startswith("<outbox-")
    assert str(msg["From"]) == get_settings().mail_from
    text, html = _bodies(msg)
    assert req.reference in text and req.reference in html
    assert "the expert who is working on your request" in text
    # The real PDFs, byte for byte.
    assert [data for _, data in _pdfs(msg)] == [report_bytes, cv_bytes]
    (row,) = _history(db, req, "documents_sent")
    assert row.details["document_ids"] == [str(report.id), str(cv.id)]
    assert row.details["trigger"] == "assigned"

    clock.advance(minutes=30)  # past the wait
    drain(db)
    assert len(_docs_mails(mail_dir, address)) == 1
    assert len(_history(db, req, "documents_sent")) == 1
    wait_row = db.scalar(
        select(OutboxMessage).where(OutboxMessage.dedup_key == f"docs:{req.id}:wait")
    )
    assert wait_row is not None and wait_row.status == OutboxStatus.cancelled


def test_at_the_wait_without_an_accepted_expert_the_region_leads_cv_goes(
    db: Session, mail_dir: Path, clock: Any
) -> None:
    lead = create_expert(db, regions=[EE])  # routing offers it to them; nobody accepts
    cv_bytes = tiny_pdf(4)
    _with_cv(db, lead, cv_bytes)
    region = db.get(Region, EE)
    assert region is not None
    region.lead_expert_id = lead.id
    staff = create_user(db, role=Role.staff)
    address = _email()
    req = submit(db, wants=["expert_cv"], language="en", email=address, country_of_origin="KG")
    assert req.region_code == EE
    drain(db)
    clock.advance(minutes=get_settings().documents_wait_minutes - 1)
    drain(db)
    assert _docs_mails(mail_dir, address) == []

    clock.advance(minutes=2)
    drain(db)
    (msg,) = _docs_mails(mail_dir, address)
    assert [data for _, data in _pdfs(msg)] == [cv_bytes]
    assert "our lead expert for your region" in _bodies(msg)[0]
    (row,) = _history(db, req, "documents_sent")
    assert row.details["cv_source"] == "region_lead" and row.details["trigger"] == "wait"
    assert _to(mail_dir, staff.email) == []  # nothing was missing

    # An expert accepting later sends nothing more.
    a = _offer(db, req)
    a.respond_by = now() + dt.timedelta(minutes=10)  # as if the offer were still open
    flows.answer_offer(db, a.id, lead, accept=True)
    drain(db)
    assert len(_docs_mails(mail_dir, address)) == 1


def test_a_request_that_asked_for_nothing_gets_no_documents(
    db: Session, mail_dir: Path, clock: Any
) -> None:
    _report(db, tiny_pdf(1))
    address = _email()
    submit(db, wants=["consultation"], language="en", email=address)
    clock.advance(minutes=get_settings().documents_wait_minutes + 1)
    drain(db)
    assert _docs_mails(mail_dir, address) == []


# Documents: which ---------------------------------------------------------------------------


def test_the_best_sample_report_is_the_country_else_region_else_general_newest_first(
    db: Session, clock: Any
) -> None:
    req = make_request(db, country="KG", region=EE)
    assert sendouts.best_sample_report(db, req) is None
    general = _report(db, tiny_pdf(1))
    _report(db, tiny_pdf(2), country="AF")  # another country
    _report(db, tiny_pdf(3), region="middle_east")  # another region
    assert sendouts.best_sample_report(db, req) == general
    region_doc = _report(db, tiny_pdf(4), region=EE)
    assert sendouts.best_sample_report(db, req) == region_doc
    older = _report(db, tiny_pdf(5), country="KG")
    assert sendouts.best_sample_report(db, req) == older
    clock.advance(minutes=1)
    newer = _report(db, tiny_pdf(6), country="KG")
    assert sendouts.best_sample_report(db, req) == newer
    # Without a region on the request, its country's region is used.
    other = make_request(db, country="TJ", region=None)
    assert sendouts.best_sample_report(db, other) == region_doc


def test_country_sample_report_is_attached_over_region_and_general(
    db: Session, mail_dir: Path, clock: Any
) -> None:
    _report(db, tiny_pdf(1))
    _report(db, tiny_pdf(2), region=EE)
    country_bytes = tiny_pdf(3)
    _report(db, country_bytes, country="KG")
    address = _email()
    submit(db, wants=["sample_report"], language="en", email=address)
    clock.advance(minutes=get_settings().documents_wait_minutes + 1)
    drain(db)
    (msg,) = _docs_mails(mail_dir, address)
    assert [data for _, data in _pdfs(msg)] == [country_bytes]


def test_missing_sample_report_sends_the_cv_alone_and_alerts_every_active_staff_user(
    db: Session, mail_dir: Path, clock: Any
) -> None:
    expert = create_expert(db, countries=["KG"])
    cv_bytes = tiny_pdf(2)
    _with_cv(db, expert, cv_bytes)
    staff = [create_user(db, role=Role.staff) for _ in range(2)]
    gone = create_user(db, role=Role.staff)
    gone.is_active = False
    address = _email()
    req = submit(db, wants=BOTH, language="en", email=address)
    flows.answer_offer(db, _offer(db, req).id, expert, accept=True)
    drain(db)
    drain(db)  # the alerts queued by the documents' delivery
    (msg,) = _docs_mails(mail_dir, address)
    assert [data for _, data in _pdfs(msg)] == [cv_bytes]
    assert "We do not have a sample report to send you yet" in _bodies(msg)[0]
    for user in staff:
        (alert,) = _to(mail_dir, user.email)
        assert req.reference in str(alert["Subject"])
        text, html = _bodies(alert)
        assert req.reference in text and "sample report" in text
        assert "What exists was sent" in text
        for body in (text, html):  # no personal data
            assert MARKER not in body and address not in body
    assert _to(mail_dir, gone.email) == []
    (row,) = _history(db, req, "documents_sent")
    assert row.details["missing"] == ["sample_report"]
    (noted,) = _history(db, req, "documents_missing")
    assert noted.details["staff_alerted"] == 2 and noted.details["sent_the_rest"] is True


def test_nothing_to_send_alerts_staff_and_a_later_acceptance_tries_again(
    db: Session, mail_dir: Path, clock: Any
) -> None:
    expert = create_expert(db, countries=["KG"])
    staff = create_user(db, role=Role.staff)
    address = _email()
    req = submit(db, wants=BOTH, language="en", email=address)
    clock.advance(minutes=get_settings().documents_wait_minutes + 1)
    drain(db)
    drain(db)
    assert _docs_mails(mail_dir, address) == []
    (alert,) = _to(mail_dir, staff.email)
    assert "Nothing could be sent" in _bodies(alert)[0]
    assert _history(db, req, "documents_sent") == []
    assert len(_history(db, req, "documents_missing")) == 1
    # The expert's CV arrives, then they accept: the CV goes.
    cv_bytes = tiny_pdf(3)
    _with_cv(db, expert, cv_bytes)
    clock.advance(minutes=1)  # the offer is answered within its time
    a = _offer(db, req)
    a.respond_by = now() + dt.timedelta(minutes=10)
    flows.answer_offer(db, a.id, expert, accept=True)
    drain(db)
    drain(db)
    (msg,) = _docs_mails(mail_dir, address)
    assert [data for _, data in _pdfs(msg)] == [cv_bytes]
    assert len(_to(mail_dir, staff.email)) == 1  # staff were told once, not at every trigger


# Languages and discretion ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "phrase", "html_mark"),
    [
        ("ru", "Как вы просили, высылаем документы", 'lang="ru"'),
        ("es", "Tal como pidió, le enviamos los documentos", 'lang="es"'),
        ("ar-EG", "كما طلبتم، نرسل إليكم المستندات", 'dir="rtl"'),
    ],
)
def test_documents_in_the_requesters_language(
    db: Session, mail_dir: Path, clock: Any, language: str, phrase: str, html_mark: str
) -> None:
    _report(db, tiny_pdf(1), country="KG")
    address = _email()
    req = submit(db, wants=["sample_report"], language=language, email=address)
    clock.advance(minutes=get_settings().documents_wait_minutes + 1)
    drain(db)
    (msg,) = _docs_mails(mail_dir, address)
    lang = language[:2]
    # (a long encoded subject may come back with a doubled space where it was folded)
    subject = " ".join(str(msg["Subject"]).split())
    assert subject == SUBJECTS[lang][("documents", False)].format(ref=req.reference)
    text, html = _bodies(msg)
    assert phrase in text and phrase in html and html_mark in html
    assert "Translation needs review" not in text + html  # a template comment, not shown


@pytest.mark.parametrize(
    ("language", "subject_start"),
    [("es", "Hemos recibido su solicitud"), ("ar", "تلقينا طلبكم")],
)
def test_the_acknowledgement_in_spanish_and_arabic(
    client: TestClient, db: Session, mail_dir: Path, language: str, subject_start: str
) -> None:
    address = _email()
    body = submit(client, language=language, email=address)
    drain(db)
    (msg,) = _to(mail_dir, address)
    assert str(msg["Subject"]).startswith(subject_start)
    assert f"[{body['reference']}]" in str(msg["Subject"])
    text, html = _bodies(msg)
    assert body["reference"] in text and body["reference"] in html
    assert (f'lang="{language}" dir="rtl"' if language == "ar" else 'lang="es"') in html


def test_discreet_documents_have_a_neutral_subject_sender_and_file_names(
    db: Session, mail_dir: Path, clock: Any
) -> None:
    report_bytes = tiny_pdf(2)
    _report(db, report_bytes, country="KG")
    address = _email()
    req = submit(db, wants=["sample_report"], language="en", email=address, discreet=True)
    clock.advance(minutes=get_settings().documents_wait_minutes + 1)
    drain(db)
    (msg,) = _docs_mails(mail_dir, address)
    subject = str(msg["Subject"])
    assert subject == f"The documents you asked for [{req.reference}]"
    for word in ("asylum", "report", "expert"):
        assert word not in subject.lower()
    assert str(msg["From"]) == get_settings().mail_from_discreet
    assert _pdfs(msg) == [("document-1.pdf", report_bytes)]


# Consultation reminders -----------------------------------------------------------------------


def _book(client: TestClient, sub: dict[str, Any], start: dt.datetime) -> None:
    resp = client.post(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": iso(start)},
        headers=bearer(sub["access_token"]),
    )
    assert resp.status_code == 201, resp.text


def _reminders(mail_dir: Path, address: str) -> list[EmailMessage]:
    return [m for m in _to(mail_dir, address) if "eminder" in str(m["Subject"])]


def _advance_to(clock: Any, instant: dt.datetime, *, plus_minutes: float = 1) -> None:
    clock.advance(seconds=(instant - now()).total_seconds() + plus_minutes * 60)


def _consultation_request(client: TestClient, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "full_name": f"Remi {MARKER} Requester",
        "timezone": LONDON,
        "wants": ["consultation"],
        "email": _email(),
    }
    return submit(client, **(body | extra))


def test_reminders_24_hours_and_1_hour_before_to_both_sides_with_the_join_link(
    client: TestClient, db: Session, mail_dir: Path, clock: Any
) -> None:
    expert = expert_with_hours(db, link="https://meet.example.org/zqx-room")
    sub = _consultation_request(client)
    address = _consultation_email(db, sub)
    start = at(day_in(LONDON, 3), "10:00", LONDON)
    _book(client, sub, start)
    drain(db)
    assert _reminders(mail_dir, address) == []

    _advance_to(clock, start - dt.timedelta(hours=24), plus_minutes=-2)
    drain(db)
    assert _reminders(mail_dir, address) == []  # not yet
    clock.advance(minutes=3)
    drain(db)
    (mine,) = _reminders(mail_dir, address)
    assert (
        str(mine["Subject"]) == f"Reminder: your free consultation in 24 hours [{sub['reference']}]"
    )
    text, html = _bodies(mine)
    assert (
        "https://meet.example.org/zqx-room" in text and "https://meet.example.org/zqx-room" in html
    )
    assert str(mine["Message-ID"]).startswith("<outbox-")
    (theirs,) = _reminders(mail_dir, expert.email)
    assert f"[{sub['reference']}]" in str(theirs["Subject"])
    text, html = _bodies(theirs)
    assert "https://meet.example.org/zqx-room" in text
    for body in (text, html):
        assert MARKER not in body and address not in body

    _advance_to(clock, start - dt.timedelta(hours=1))
    drain(db)
    assert len(_reminders(mail_dir, address)) == 2
    assert "in one hour" in str(_reminders(mail_dir, address)[-1]["Subject"])
    assert len(_reminders(mail_dir, expert.email)) == 2
    clock.advance(hours=2)
    drain(db)
    assert len(_reminders(mail_dir, address)) == 2


def _consultation_email(db: Session, sub: dict[str, Any]) -> str:
    from app.intake import records as intake

    req = intake.get_by_reference(db, sub["reference"])
    assert req is not None
    pii = intake.reveal_pii(req)
    assert pii is not None
    return str(pii["email"])


def test_a_reschedule_moves_the_reminders(
    client: TestClient, db: Session, mail_dir: Path, clock: Any
) -> None:
    expert = expert_with_hours(db)
    sub = _consultation_request(client, language="ru")
    address = _consultation_email(db, sub)
    day = day_in(LONDON, 3)
    old, new = at(day, "09:00", LONDON), at(day + dt.timedelta(days=1), "11:00", LONDON)
    _book(client, sub, old)
    resp = client.patch(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": iso(new)},
        headers=bearer(sub["access_token"]),
    )
    assert resp.status_code == 200, resp.text
    drain(db)
    _advance_to(clock, old - dt.timedelta(hours=1))  # both of the old times have passed
    drain(db)
    assert _reminders(mail_dir, address) == [] and _reminders(mail_dir, expert.email) == []
    _advance_to(clock, new - dt.timedelta(hours=24))
    drain(db)
    (mine,) = [m for m in _to(mail_dir, address) if "Напоминание" in str(m["Subject"])]
    assert str(mine["Subject"]) == SUBJECTS["ru"][("reminder", False)].format(
        when="через 24 часа", ref=sub["reference"]
    )
    # The expert's reminder gives the new time on the expert's own clock (London, here).
    assert (
        new.astimezone(ZoneInfo(LONDON)).strftime("%H:%M")
        in _bodies(_reminders(mail_dir, expert.email)[0])[0]
    )


def test_a_cancel_drops_the_reminders(
    client: TestClient, db: Session, mail_dir: Path, clock: Any
) -> None:
    expert = expert_with_hours(db)
    staff = create_user(db, role=Role.staff)
    sub = _consultation_request(client)
    address = _consultation_email(db, sub)
    start = at(day_in(LONDON, 3), "10:00", LONDON)
    _book(client, sub, start)
    pending = db.scalars(
        select(OutboxMessage).where(
            OutboxMessage.kind == REMINDER_KIND, OutboxMessage.status == OutboxStatus.pending
        )
    ).all()
    assert len(pending) == 4
    resp = client.delete(
        f"/api/v1/requests/{sub['reference']}/consultation", headers=login(client, staff)
    )
    assert resp.status_code == 200, resp.text
    for row in pending:
        db.refresh(row)
        assert row.status == OutboxStatus.cancelled
    _advance_to(clock, start)
    drain(db)
    assert _reminders(mail_dir, address) == [] and _reminders(mail_dir, expert.email) == []


def test_a_discreet_reminder_is_neutral(
    client: TestClient, db: Session, mail_dir: Path, clock: Any
) -> None:
    expert_with_hours(db)
    sub = _consultation_request(client, discreet=True)
    address = _consultation_email(db, sub)
    start = at(day_in(LONDON, 3), "10:00", LONDON)
    _book(client, sub, start)
    drain(db)
    _advance_to(clock, start - dt.timedelta(hours=1))
    drain(db)
    # Delivered late (within the last hour), the 24-hour reminder is skipped: one e-mail.
    (msg,) = _reminders(mail_dir, address)
    assert str(msg["Subject"]) == f"Reminder: your appointment in one hour [{sub['reference']}]"
    assert str(msg["From"]) == get_settings().mail_from_discreet
    assert "consultation" not in str(msg["Subject"]).lower()


# Sample reports (admins) ---------------------------------------------------------------------


def test_admins_upload_list_and_delete_sample_reports(client: TestClient, db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    staff = create_user(db, role=Role.staff)
    headers = login(client, admin)
    pdf = tiny_pdf(2)
    url = "/api/v1/admin/sample-reports"
    resp = client.post(
        url,
        headers=headers,
        files={"file": ("r.pdf", pdf, "application/pdf")},
        data={"country_code": "kg"},
    )
    assert resp.status_code == 201, resp.text
    made = resp.json()
    assert made["kind"] == "sample_report" and made["country_code"] == "KG"
    general = client.post(
        url, headers=headers, files={"file": ("g.pdf", tiny_pdf(1), "application/pdf")}
    )
    assert general.status_code == 201
    both = client.post(
        url,
        headers=headers,
        files={"file": ("b.pdf", pdf, "application/pdf")},
        data={"country_code": "KG", "region_code": EE},
    )
    assert both.status_code == 422
    unknown = client.post(
        url,
        headers=headers,
        files={"file": ("b.pdf", pdf, "application/pdf")},
        data={"region_code": "atlantis"},
    )
    assert unknown.status_code == 422
    not_pdf = client.post(
        url, headers=headers, files={"file": ("x.pdf", b"hello", "application/pdf")}
    )
    assert not_pdf.status_code == 422
    assert (
        client.post(
            url, headers=login(client, staff), files={"file": ("r.pdf", pdf, "application/pdf")}
        ).status_code
        == 403
    )
    listed = client.get(url, headers=headers).json()
    assert {d["id"] for d in listed} == {made["id"], general.json()["id"]}
    assert client.delete(f"{url}/{made['id']}", headers=headers).status_code == 204
    assert client.delete(f"{url}/{made['id']}", headers=headers).status_code == 404
    assert [d["id"] for d in client.get(url, headers=headers).json()] == [general.json()["id"]]


def test_booking_with_the_offered_expert_sends_the_documents_at_once(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    expert = expert_with_hours(db)
    cv_bytes = tiny_pdf(5)
    _with_cv(db, expert, cv_bytes)
    sub = _consultation_request(client, wants=["consultation", "expert_cv"])
    address = _consultation_email(db, sub)
    drain(db)
    assert _docs_mails(mail_dir, address) == []  # offered, not accepted: not yet
    _book(client, sub, at(day_in(LONDON, 3), "10:00", LONDON))  # the booking accepts it
    drain(db)
    (msg,) = _docs_mails(mail_dir, address)
    assert [data for _, data in _pdfs(msg)] == [cv_bytes]


def test_every_translation_is_marked_for_review_and_arabic_html_is_rtl() -> None:
    root = Path(__file__).resolve().parents[2] / "app/notifications/templates"
    written = [
        root / "sendouts" / f"{n}_{lang}"
        for n in ("documents", "reminder")
        for lang in ("ru", "es", "ar")
    ]
    written += [root / "intake" / f"{n}_{lang}" for n in ("ack", "link") for lang in ("es", "ar")]
    for base in written:
        for ext in (".txt", ".html"):
            source = base.with_suffix(ext).read_text()
            assert "Translation needs review by a native speaker" in source, base
        if base.name.endswith("_ar"):
            assert 'dir="rtl"' in base.with_suffix(".html").read_text()
