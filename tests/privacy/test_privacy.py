"""Data rights: export, erasure (admin and requester), and what erasure leaves.

The byte searches run on databases whose commits are real (a fresh SQLite file, a dedicated
PostgreSQL database): the per-run test database lives inside a rolled-back transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cases import notes as case_notes
from app.core.database import commit
from app.core.settings import get_settings
from app.core.time import now
from app.intake import keys
from app.intake import records as intake
from app.models import (
    AuditEvent,
    IntakeRequest,
    RequestContact,
    RequestHistory,
    RequestNote,
    Role,
    User,
    WhatsAppContact,
    WhatsAppMessage,
)
from tests.factories import (
    RealDb,
    app_client,
    bearer,
    create_user,
    drain,
    login,
    real_database,
    submit,
)
from tests.fakes.whatsapp_fake import FakeWhatsApp
from tests.mail_reader import messages
from tests.whatsapp.conftest import env_for as whatsapp_env


def _marker() -> str:
    return f"Qzm{secrets.token_hex(5)}"


def _request(session: Session, reference: str) -> IntakeRequest:
    req = session.scalar(select(IntakeRequest).where(IntakeRequest.reference == reference))
    assert req is not None
    return req


def _plant(c: Any, session: Session, marker: str) -> tuple[dict[str, Any], User, User]:
    """A request with the marker in its name and summary, a note and a contact note; the
    acknowledgement e-mailed (to var/mail). Returns (submission reply, staff, admin)."""
    reply = submit(
        c,
        full_name=f"Name {marker}",
        case_summary=f"My case {marker} in detail.",
        phone="+996 555 000 111",
    )
    staff = create_user(session, role=Role.staff)
    admin = create_user(session, role=Role.admin)
    commit(session)
    drain(session)
    req = _request(session, reply["reference"])
    case_notes.add_note(session, req, staff, f"Internal note {marker}")
    commit(session)
    contact = c.post(
        f"/api/v1/cases/{req.reference}/contacts",
        json={"channel": "phone", "contacted_at": now().isoformat(), "note": f"Called {marker}"},
        headers=login(c, staff),
    )
    assert contact.status_code == 201, contact.text
    return reply, staff, admin


def _mail_mentions(mail_dir: Path, marker: str) -> bool:
    for msg in messages(mail_dir):
        for part in msg.walk():
            if part.get_content_maintype() == "text" and marker in str(part.get_content()):
                return True
    return any(marker.encode() in p.read_bytes() for p in mail_dir.glob("*.eml"))


def _secret_blobs(session: Session, req: IntakeRequest) -> list[bytes]:
    """Ciphertexts that must be gone after erasure (the wrapped key first)."""
    blobs = [req.data_key_enc, req.pii_enc, req.token_enc]
    note = session.scalar(select(RequestNote.body_enc).where(RequestNote.request_id == req.id))
    contact = session.scalar(
        select(RequestContact.note_enc).where(RequestContact.request_id == req.id)
    )
    blobs += [note, contact]
    assert all(b is not None for b in blobs)
    return [b for b in blobs if b is not None]


def _erase_and_check_statistics(
    c: Any, session: Session, reply: dict[str, Any], staff: User, admin: User
) -> None:
    ref = reply["reference"]
    as_staff, as_admin = login(c, staff), login(c, admin)
    resp = c.post(
        f"/api/v1/admin/requests/{ref}/erase", json={"reason": "admin_decision"}, headers=as_admin
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["cleared"]["notes"] == 1
    # Nothing answers 500: the case view, the requester's own view, the export.
    assert c.get(f"/api/v1/cases/{ref}", headers=as_staff).status_code == 200
    own = c.get(f"/api/v1/requests/{ref}", headers=bearer(reply["access_token"]))
    assert own.status_code == 200, own.text
    export = c.get(f"/api/v1/admin/requests/{ref}/export", headers=as_admin)
    assert export.status_code == 200 and export.json()["erased"] is True
    assert export.json()["personal"] is None
    # What statistics need stays: the request is still in the queue and counted by country.
    queue = c.get("/api/v1/queue", params={"view": "all"}, headers=as_staff)
    assert queue.status_code == 200, queue.text
    assert ref in [item["reference"] for item in queue.json()["items"]]
    session.expire_all()
    req = _request(session, ref)
    assert req.erased_at is not None and req.data_key_enc is None and req.pii_enc is None
    assert intake.reveal_pii(req) is None
    by_country = session.scalar(
        select(func.count())
        .select_from(IntakeRequest)
        .where(IntakeRequest.country_of_origin == "KG")
    )
    assert by_country == 1
    session.commit()  # SQLite: end the read transaction (BEGIN IMMEDIATE holds the lock)


@pytest.mark.slow
def test_erasure_leaves_no_trace_in_the_sqlite_file_or_var_mail(
    tmp_path: Path, mail_dir: Path
) -> None:
    marker = _marker()
    with real_database("sqlite", tmp_path) as db, app_client() as c:
        session = db.session()
        reply, staff, admin = _plant(c, session, marker)
        assert _mail_mentions(mail_dir, marker), "the acknowledgement should greet by name"
        blobs = _secret_blobs(session, _request(session, reply["reference"]))
        session.commit()
        # The search works: before erasure the ciphertexts are in the file.
        assert all(blob[12:40] in _sqlite_bytes(db) for blob in blobs)
        _erase_and_check_statistics(c, session, reply, staff, admin)
        session.close()
        content = _sqlite_bytes(db)
    assert marker.encode() not in content
    assert marker.encode("utf-16-le") not in content
    for blob in blobs:
        assert blob[12:40] not in content, "a ciphertext is still in the file"
    assert not _mail_mentions(mail_dir, marker)
    assert reply["reference"] not in "".join(p.name for p in mail_dir.glob("*.eml"))


@pytest.mark.slow
def test_erasure_leaves_no_trace_in_a_postgresql_dump(tmp_path: Path, mail_dir: Path) -> None:
    marker = _marker()
    with real_database("postgresql", tmp_path) as db, app_client() as c:
        session = db.session()
        reply, staff, admin = _plant(c, session, marker)
        blobs = _secret_blobs(session, _request(session, reply["reference"]))
        session.commit()
        before = _dump(db)
        # The search works: before erasure the ciphertexts are in the dump (as bytea hex).
        assert blobs[0][12:40].hex() in before
        _erase_and_check_statistics(c, session, reply, staff, admin)
        session.close()
        after = _dump(db)
    assert marker not in after
    for blob in blobs:
        assert blob[12:40].hex() not in after, "a ciphertext is still in the dump"
    assert not _mail_mentions(mail_dir, marker)


@pytest.mark.slow
def test_erasing_a_whatsapp_request_leaves_no_number_hash_or_text_in_a_postgresql_dump(
    tmp_path: Path, mail_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request opened on WhatsApp and answered there: the number's keyed hash (contacts and
    messages), Meta's message ids (they carry the number) and both texts leave the dump."""
    marker, number = _marker(), "4915199887766"
    fake = FakeWhatsApp().start()
    try:
        for key, value in whatsapp_env(fake).items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        with real_database("postgresql", tmp_path) as db, app_client() as c:
            session = db.session()
            fake.customer_writes(number, f"Help me {marker}")
            assert fake.deliver(
                lambda body, headers: (
                    c.post("/webhooks/whatsapp", content=body, headers=headers).status_code
                )
            ) == [200]
            while drain(session):
                pass
            req = session.scalar(select(IntakeRequest))
            assert req is not None
            staff, admin = (
                create_user(session, role=Role.staff),
                create_user(session, role=Role.admin),
            )
            commit(session)
            sent = c.post(
                f"/api/v1/cases/{req.reference}/whatsapp",
                json={"text": f"We answer {marker}"},
                headers=login(c, staff),
            )
            assert sent.status_code == 201, sent.text
            while drain(session):
                pass
            lookup = session.scalar(select(WhatsAppContact.phone_lookup))
            wamids = [w for w in session.scalars(select(WhatsAppMessage.wamid)) if w]
            assert lookup and len(wamids) >= 2
            session.commit()
            before = _dump(db)
            assert lookup in before and all(w in before for w in wamids)  # the search works
            erased = c.post(
                f"/api/v1/admin/requests/{req.reference}/erase",
                json={"reason": "admin_decision"},
                headers=login(c, admin),
            )
            assert erased.status_code == 200, erased.text
            assert erased.json()["cleared"]["whatsapp_contacts"] == 1
            session.close()
            after = _dump(db)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        fake.stop()
    assert lookup not in after
    assert not any(w in after for w in wamids)
    assert number not in after and marker not in after


def _sqlite_bytes(db: RealDb) -> bytes:
    """The database file (and its -wal, -shm) after a checkpoint that truncates the WAL."""
    raw = db.engine.raw_connection()  # outside a transaction: no BEGIN IMMEDIATE
    try:
        busy, _, _ = raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        raw.close()
    assert db.path is not None
    files = [p for p in db.path.parent.iterdir() if p.name.startswith(db.path.name)]
    return b"".join(p.read_bytes() for p in files)


def _dump(db: RealDb) -> str:
    result = subprocess.run(
        ["pg_dump", "--no-owner", "--data-only", db.libpq_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_export_holds_everything_decrypted_and_only_for_its_requester(
    db: Session, client: object
) -> None:
    c: Any = client
    marker = _marker()
    reply, staff, admin = _plant(c, db, marker)
    other = submit(c)
    ref = reply["reference"]

    resp = c.get(f"/api/v1/requests/{ref}/export", headers=bearer(reply["access_token"]))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-disposition"].startswith("attachment;")
    data = resp.json()
    assert data["request"]["reference"] == ref and data["erased"] is False
    assert data["personal"]["full_name"] == f"Name {marker}"
    assert marker in data["personal"]["case_summary"]
    assert any(h["action"] == "submitted" for h in data["history"])
    assert [ct["channel"] for ct in data["contacts"]] == ["phone"]

    # Another request's link, a wrong one, none: 404, the same as an unknown reference.
    for headers in (bearer(other["access_token"]), bearer("rl_wrong"), {}):
        denied = c.get(f"/api/v1/requests/{ref}/export", headers=headers)
        assert denied.status_code == 404
        assert marker not in denied.text

    # Admins export any request; staff may not.
    assert c.get(f"/api/v1/admin/requests/{ref}/export", headers=login(c, staff)).status_code == 403
    by_admin = c.get(f"/api/v1/admin/requests/{ref}/export", headers=login(c, admin))
    assert by_admin.status_code == 200 and by_admin.json()["personal"] == data["personal"]
    assert (
        c.get("/api/v1/admin/requests/ZZZZZZZZ/export", headers=login(c, admin)).status_code == 404
    )

    exports = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "privacy.export", AuditEvent.target == ref)
    ).all()
    assert [e.actor for e in exports] == ["requester", str(admin.id)]


def _staff_work_left_out(text: str, data: dict[str, Any], marker: str, staff: User) -> None:
    """What the requester's own export must not hold: internal notes, notes on contacts, who on
    the staff did what."""
    assert f"Internal note {marker}" not in text and f"Called {marker}" not in text
    assert str(staff.id) not in text
    assert data["audience"] == "requester" and "notes" not in data
    for contact in data["contacts"]:
        assert set(contact) == {"channel", "via", "contacted_at", "bounced_at"}
    for row in data["history"]:
        assert "details" not in row and row["actor"] in ("requester", "system", "organisation")
        assert row["action"] != "note_added"
    assert {"contact_recorded", "submitted"} <= {row["action"] for row in data["history"]}


def test_the_requesters_export_leaves_out_internal_notes_contact_notes_and_staff_ids(
    db: Session, client: object
) -> None:
    c: Any = client
    marker = _marker()
    reply, staff, admin = _plant(c, db, marker)
    ref = reply["reference"]
    own = c.get(f"/api/v1/requests/{ref}/export", headers=bearer(reply["access_token"]))
    assert own.status_code == 200, own.text
    _staff_work_left_out(own.text, own.json(), marker, staff)

    # The admin's export, for a formal access request, keeps all of it.
    full = c.get(f"/api/v1/admin/requests/{ref}/export", headers=login(c, admin))
    assert full.status_code == 200, full.text
    body = full.json()
    assert body["audience"] == "admin"
    assert [(n["body"], n["author_id"]) for n in body["notes"]] == [
        (f"Internal note {marker}", str(staff.id))
    ]
    assert [(ct["note"], ct["recorded_by"]) for ct in body["contacts"]] == [
        (f"Called {marker}", str(staff.id))
    ]
    noted = [h for h in body["history"] if h["action"] == "note_added"]
    assert [h["actor"] for h in noted] == [f"user:{staff.id}"]


def test_the_export_page_leaves_out_staff_work_too(db: Session, client: object) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    c: Any = client
    marker = _marker()
    reply, staff, _admin = _plant(c, db, marker)
    ref = reply["reference"]
    with TestClient(
        create_app(), base_url="https://testserver", raise_server_exceptions=False
    ) as page:
        opened = page.get(f"/r/{ref}?token={reply['access_token']}")
        assert opened.status_code == 200, opened.text
        resp = page.get(f"/r/{ref}/export")
    assert resp.status_code == 200, resp.text
    assert f"Name {marker}" in resp.text  # the requester's own data is there, decrypted
    _staff_work_left_out(resp.text, resp.json(), marker, staff)


def test_export_includes_attachments_decrypted(db: Session, client: object) -> None:
    """An inbound e-mail's attachment is a document sealed with the request's key and named in
    the message; the export carries its bytes decrypted (base64)."""
    from app.documents import service as documents
    from app.models import DocumentKind, MessageDirection, MessageKind, RequestMessage
    from app.models.messages import MESSAGE_SEAL_KIND

    c: Any = client
    reply = submit(c)
    req = _request(db, reply["reference"])
    dk = keys.data_key(req)
    assert dk is not None
    content = b"%PDF-1.4 attachment bytes"
    doc = documents.store_sealed(
        db,
        sealed=keys.seal(dk, "attachment", req.id, content),
        content_type="application/pdf",
        kind=DocumentKind.attachment,
    )
    data = {"subject": "Papers", "attachments": [{"filename": "p.pdf", "document_id": str(doc.id)}]}
    db.add(
        RequestMessage(
            request_id=req.id,
            direction=MessageDirection.inbound,
            kind=MessageKind.requester,
            at=now(),
            recorded_at=now(),
            data_enc=keys.seal_json(dk, MESSAGE_SEAL_KIND, req.id, data),
        )
    )
    commit(db)
    doc_id = doc.id
    resp = c.get(f"/api/v1/requests/{req.reference}/export", headers=bearer(reply["access_token"]))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["messages"][0]["data"]["subject"] == "Papers"
    [exported] = body["documents"]
    assert base64.b64decode(exported["content_base64"]) == content
    # A download of the attachment is recorded in the audit trail.
    staff = create_user(db, role=Role.staff)
    c.get(f"/api/v1/documents/{doc_id}", headers=login(c, staff))
    downloads = db.scalars(
        select(AuditEvent).where(AuditEvent.target == f"document_id={doc_id}")
    ).all()
    assert [(d.action, d.actor) for d in downloads] == [
        ("GET /api/v1/documents/{document_id}", str(staff.id))
    ]

    # Erasure removes the attachment's document.
    erased = c.post(
        f"/api/v1/requests/{req.reference}/erase", headers=bearer(reply["access_token"])
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["cleared"]["documents"] == 1
    from app.models import Document

    gone = select(func.count()).select_from(Document).where(Document.id == doc_id)
    assert db.scalar(gone) == 0


def test_requester_erasure_withdraws_and_the_link_then_shows_erased(
    db: Session, client: object, mail_dir: Path
) -> None:
    c: Any = client
    marker = _marker()
    reply = submit(c, full_name=f"Name {marker}")
    drain(db)
    assert _mail_mentions(mail_dir, marker)
    ref = reply["reference"]
    resp = c.post(f"/api/v1/requests/{ref}/erase", headers=bearer(reply["access_token"]))
    assert resp.status_code == 200, resp.text
    db.expire_all()
    req = _request(db, ref)
    assert req.status.value == "withdrawn" and req.erased_at is not None
    assert not _mail_mentions(mail_dir, marker)
    history = db.scalars(select(RequestHistory).where(RequestHistory.request_id == req.id)).all()
    assert [h.details for h in history if h.action == "erased"] == [{"reason": "requester_asked"}]
    # The link still opens the request's page: status and dates, nothing personal.
    own = c.get(f"/api/v1/requests/{ref}", headers=bearer(reply["access_token"]))
    assert own.status_code == 200 and own.json()["status"] == "withdrawn"
    # Asking again is fine; another request's token is 404.
    again = c.post(f"/api/v1/requests/{ref}/erase", headers=bearer(reply["access_token"]))
    assert again.status_code == 200
    other = submit(c)
    assert (
        c.post(f"/api/v1/requests/{ref}/erase", headers=bearer(other["access_token"])).status_code
        == 404
    )
    rows = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "privacy.erase", AuditEvent.target == ref)
    ).all()
    assert [r.actor for r in rows] == ["requester", "requester"]
    assert all(marker not in json.dumps(r.details) for r in rows)


def test_admin_erasure_takes_only_a_fixed_reason(db: Session, client: object) -> None:
    c: Any = client
    admin = create_user(db, role=Role.admin)
    reply = submit(c)
    resp = c.post(
        f"/api/v1/admin/requests/{reply['reference']}/erase",
        json={"reason": "free text with a name in it"},
        headers=login(c, admin),
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["fields"][0]["field"].endswith("reason")


def test_an_admin_erasing_an_open_request_declines_it_first(db: Session, client: object) -> None:
    """Erased but left open, it would sit in the queue with no way to reach the requester."""
    from app.models import RequestStatus

    c: Any = client
    admin = create_user(db, role=Role.admin)
    reply = submit(c)
    ref = reply["reference"]
    resp = c.post(
        f"/api/v1/admin/requests/{ref}/erase",
        json={"reason": "admin_decision"},
        headers=login(c, admin),
    )
    assert resp.status_code == 200, resp.text
    req = db.scalars(
        select(IntakeRequest)
        .where(IntakeRequest.reference == ref)
        .execution_options(populate_existing=True)
    ).one()
    assert req.status == RequestStatus.declined and req.erased_at is not None
    moves = db.scalars(
        select(RequestHistory.to_status).where(
            RequestHistory.request_id == req.id, RequestHistory.action == "status_changed"
        )
    ).all()
    assert moves == ["declined"]


def _end(db: Session, req: IntakeRequest, status: str, at: dt.datetime) -> None:
    from app.models import RequestStatus

    target = RequestStatus(status)
    before = req.status
    req.status = target
    intake.add_history(
        db,
        req,
        actor="system",
        action="status_changed",
        from_status=before,
        to_status=target,
        at=at,
    )


def test_retention_erases_ended_then_closed_requests_and_never_an_open_one(
    db: Session, client: object, clock: Any, mail_dir: Path
) -> None:
    from app.core.settings import get_settings
    from app.privacy.service import run_retention

    c: Any = client
    settings = get_settings()
    refs = {
        name: submit(c)["reference"] for name in ("open", "old_open", "withdrawn", "spam", "closed")
    }
    reqs = {name: _request(db, ref) for name, ref in refs.items()}
    drain(db)  # the acknowledgements, copied to var/mail
    start = now()
    _end(db, reqs["withdrawn"], "withdrawn", start)
    _end(db, reqs["spam"], "spam", start)
    _end(db, reqs["closed"], "closed", start)
    _end(db, reqs["old_open"], "in_progress", start)
    commit(db)

    def mailed(name: str) -> bool:
        return _mail_mentions(mail_dir, refs[name])

    assert all(mailed(name) for name in refs)

    clock.advance(hours=24 * (settings.retention_ended_days - 1))
    assert run_retention(db) == {"erased": 0, "ended": 0, "closed": 0}

    clock.advance(hours=48)
    assert run_retention(db) == {"erased": 2, "ended": 2, "closed": 0}
    commit(db)
    db.expire_all()
    erased = {n for n, r in reqs.items() if db.get(IntakeRequest, r.id).erased_at is not None}  # type: ignore[union-attr]
    assert erased == {"withdrawn", "spam"}
    assert not mailed("withdrawn") and not mailed("spam") and mailed("open")

    clock.set(24 * 3600 * (settings.retention_closed_days + 1) + 1)
    assert run_retention(db) == {"erased": 1, "ended": 0, "closed": 1}
    commit(db)
    # Years later, however old: the open ones keep their data.
    clock.set(24 * 3600 * (settings.retention_closed_days * 10))
    assert run_retention(db)["erased"] == 0
    db.expire_all()
    for name in ("open", "old_open"):
        req = db.get(IntakeRequest, reqs[name].id)
        assert req is not None and req.erased_at is None and intake.reveal_pii(req) is not None
    runs = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "retention.run").order_by(AuditEvent.seq)
    ).all()
    assert [r.details["erased"] for r in runs] == [0, 2, 1, 0]
    assert all(r.actor == "system" for r in runs)


def test_retention_task_is_on_the_beat_schedule() -> None:
    from workers.celery_app import app
    from workers.privacy import run_retention

    entry = app.conf.beat_schedule["privacy-retention"]
    assert entry["task"] == run_retention.name == "privacy.run_retention"
    assert entry["schedule"] == dt.timedelta(days=1)


def test_erasure_clears_the_email_look_up_and_every_meetings_link_and_password(
    db: Session, client: object
) -> None:
    """The keyed e-mail hash finds the person's requests; a meeting's join link and password
    let anyone into what was said: erasure clears each, whatever became of the meeting."""
    from app.meetings.providers import MeetingInfo
    from app.models import Consultation, ConsultationStatus
    from app.privacy.service import erase_request
    from app.scheduling.service.meetings import store_meeting
    from tests.factories import create_expert

    c: Any = client
    reply = submit(c, email="erase-me@example.org")
    ref = reply["reference"]
    req = _request(db, ref)
    assert req.email_lookup == keys.email_lookup(db, "erase-me@example.org")
    expert = create_expert(db, countries=["KG"])
    start = now() - dt.timedelta(days=2)
    meeting_ids = []
    for i, status in enumerate(ConsultationStatus):
        begins = start + dt.timedelta(hours=2 * i)
        row = Consultation(
            request_id=req.id,
            expert_id=expert.id,
            start_at=begins,
            end_at=begins + dt.timedelta(hours=1),
            blocked_from=begins,
            blocked_until=begins + dt.timedelta(hours=1),
            status=status,
            ical_uid=f"erase-{secrets.token_hex(6)}@test",
            created_by="requester",
        )
        db.add(row)
        db.flush()
        store_meeting(
            row,
            MeetingInfo(
                provider="zoom",
                external_id=85_000_000_000 + i,
                join_url=f"https://zoom.example/j/{85_000_000_000 + i}?pwd=Qzsecret{i}",
                password=f"Qzsecret{i}",
            ),
        )
        meeting_ids.append(row.id)
    commit(db)

    erase_request(db, req, by="requester", reason="requester_asked", actor_role="requester")
    commit(db)
    db.expire_all()
    assert _request(db, ref).email_lookup is None
    for row_id in meeting_ids:
        row = db.get(Consultation, row_id)
        assert row is not None
        assert row.meeting_join_url is None, row.status
        assert row.meeting_password_enc is None and row.meeting_password_key_id is None
