"""The admins' Operations page: the outbox's state, dead letters with a retry (staff too, as in
the API), Zoom's daily count, what ``asylum-intake check`` reports (never a secret) and the
audit search with its CSV, each from the same service as the API; staff and experts refused."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core import crypto
from app.core.database import commit
from app.core.settings import get_settings
from app.core.time import now
from app.health import service as health
from app.meetings.quota import ZOOM_DAILY_MEETING_WRITES, usage_day
from app.models import AuditEvent, OutboxMessage, OutboxStatus, Role, ZoomDailyUsage
from app.notifications.facts import local_time
from app.notifications.service import TEST_EMAIL
from app.outbox import service as outbox
from app.web import operations
from tests.conftest import PG_URL, Clock
from tests.factories import (
    create_user,
    csrf,
    drain,
    login,
    signed_in,
    submit,
)
from tests.processes import closed_port

PATH = operations.PATH
DEAD = operations.DEAD_LETTERS_PATH
AUDIT = operations.AUDIT_PATH
NOON = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def dead_letter(db: Session) -> OutboxMessage:
    """A real dead letter: a test e-mail for an admin who does not exist fails permanently."""
    row = outbox.enqueue(db, TEST_EMAIL, {"user_id": str(uuid.uuid4())})
    assert row is not None
    drain(db)
    db.refresh(row)
    assert row.status == OutboxStatus.dead
    return row


def retry_audits(db: Session, action: str) -> list[AuditEvent]:
    return list(
        db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    )


def section(html: str, ident: str) -> str:
    found = re.search(
        rf'<section aria-labelledby="[a-z]+-h" id="{ident}">(.*?)</section>', html, re.S
    )
    assert found is not None, f"no section {ident}"
    return found.group(1)


# The page's sections ---------------------------------------------------------------------------


def test_the_page_shows_the_outbox_a_dead_letter_zoom_and_the_check(
    web: TestClient, db: Session, clock: Clock
) -> None:
    clock.at(NOON)
    admin = create_user(db, role=Role.admin)
    row = dead_letter(db)
    outbox.enqueue(db, "test.later", {"n": 1}, due_at=now() + dt.timedelta(hours=1))
    late = outbox.enqueue(db, "test.due", {"n": 2}, due_at=now() - dt.timedelta(minutes=5))
    assert late is not None
    db.add(ZoomDailyUsage(host="host-a@example.org", day=usage_day(now()), count=85))
    db.add(
        ZoomDailyUsage(
            host="host-b@example.org", day=usage_day(now()) - dt.timedelta(days=1), count=7
        )
    )
    commit(db)
    stats = outbox.stats(db)

    resp = signed_in(web, admin).get(PATH)
    assert resp.status_code == 200, resp.text
    html = resp.text
    assert 'id="nav-operations" aria-current="page"' in html

    box = section(html, "outbox")
    for key in ("pending", "claimed", "sent", "dead"):
        shown = re.search(rf'id="outbox-{key}"><bdi dir="ltr">(\d+)</bdi>', box)
        assert shown is not None and int(shown.group(1)) == stats[key], key
    assert stats["dead"] >= 1 and stats["pending"] >= 2
    assert local_time(late.due_at, "UTC", form="seconds") in box  # the oldest due row
    lag = re.search(r'id="outbox-lag"><bdi dir="ltr">(\d+)</bdi>', box)
    assert lag is not None and int(lag.group(1)) >= 300  # five minutes late at least

    letters = section(html, "dead-letters")
    item = re.search(rf'id="dead-letter-{row.id}">(.*?)</li>', letters, re.S)
    assert item is not None
    assert TEST_EMAIL in item.group(1)
    assert f'<bdi dir="ltr">{row.attempts}</bdi>' in item.group(1)
    assert local_time(row.updated_at, "UTC") in item.group(1)
    assert row.last_error and row.last_error.split(":")[0] in item.group(1)
    assert f'action="{DEAD}/{row.id}/retry"' in item.group(1)

    zoom = section(html, "zoom")
    assert "host-a@example.org" in zoom and f"85 / {ZOOM_DAILY_MEETING_WRITES}" in zoom
    assert "Nearing the cap." in zoom
    assert "host-b@example.org" not in zoom  # yesterday's count is not today's

    check = section(html, "check")
    for name in ("database", "broker"):
        assert re.search(
            rf'id="dep-{name}" class="ops-item"><strong><bdi dir="ltr">{name}</bdi></strong>: ok',
            check,
        ), name
    assert "INTAKE_DATABASE_URL" in check


def test_an_empty_organisation_has_nothing_to_retry_and_no_zoom_usage(
    web: TestClient, db: Session
) -> None:
    admin = create_user(db, role=Role.admin)
    html = signed_in(web, admin).get(PATH).text
    assert 'id="dead-letters-empty"' in html and 'id="zoom-empty"' in html


def test_the_check_reports_what_the_cli_reports_and_never_a_secret(
    web: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = create_user(db, role=Role.admin)
    signed_in(web, admin)
    key = crypto.generate_master_key_text("ops1")
    db_password = "db-Secret-4711"
    smtp_password = "smtp-Secret-0815"
    port = closed_port()
    monkeypatch.setenv("INTAKE_MASTER_KEY", key)
    monkeypatch.setenv("INTAKE_SMTP_PASSWORD", smtp_password)
    monkeypatch.setenv("INTAKE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("INTAKE_SMTP_PORT", str(port))
    monkeypatch.setenv("INTAKE_SMTP_SECURITY", "none")
    monkeypatch.setenv(
        "INTAKE_DATABASE_URL", PG_URL.replace("postgres@", f"postgres:{db_password}@")
    )
    get_settings.cache_clear()
    try:
        html = web.get(PATH).text
        report = health.check_report(get_settings())
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    check = section(html, "check")
    for secret in (db_password, smtp_password, key, key.split(":", 1)[1]):
        assert secret not in html, f"secret shown: {secret[:6]}..."
    assert re.search(r'INTAKE_MASTER_KEY</bdi></dt><dd><bdi dir="ltr">\*{8}</bdi>', check)
    assert re.search(r'INTAKE_SMTP_PASSWORD</bdi></dt><dd><bdi dir="ltr">\*{8}</bdi>', check)
    assert "postgresql+psycopg://postgres:***@" in check
    # The unreachable mail server is named, as the CLI names it (one function for both).
    assert 'id="dep-smtp" class="ops-item ops-warn"' in check
    assert f"INTAKE_SMTP_HOST: cannot reach 127.0.0.1:{port}" in check
    assert [d.name for d in report.dependencies] == ["database", "broker", "smtp"]
    assert not report.ok


# Dead letters: the retry -------------------------------------------------------------------------


def test_an_admin_retries_a_dead_letter_from_the_page_and_it_is_audited(
    web: TestClient, db: Session
) -> None:
    admin = create_user(db, role=Role.admin)
    row = dead_letter(db)
    token = csrf(signed_in(web, admin), PATH)
    resp = web.post(f"{DEAD}/{row.id}/retry", data=token, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{PATH}?done=retried#dead-letters"
    db.refresh(row)
    assert row.status == OutboxStatus.pending and row.attempts == 0
    audits = retry_audits(db, f"POST {DEAD}/{{message_id}}/retry")
    assert [(a.actor, a.actor_role, a.target, a.outcome) for a in audits] == [
        (str(admin.id), "admin", f"message_id={row.id}", "ok")
    ]
    assert "The message is due again" in web.get(resp.headers["location"]).text


def test_the_apis_retry_is_audited_like_the_pages(client: TestClient, db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    row = dead_letter(db)
    resp = client.post(f"/api/v1/outbox/{row.id}/retry", headers=login(client, staff))
    assert resp.status_code == 200
    audits = retry_audits(db, "POST /api/v1/outbox/{message_id}/retry")
    assert [(a.actor, a.target, a.outcome) for a in audits] == [
        (str(staff.id), f"message_id={row.id}", "ok")
    ]


def test_a_retry_without_the_csrf_token_changes_nothing(web: TestClient, db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    row = dead_letter(db)
    attempts = row.attempts
    signed_in(web, admin).get(PATH)
    for data in ({}, {"csrf_token": "forged"}):
        resp = web.post(f"{DEAD}/{row.id}/retry", data=data, follow_redirects=False)
        assert resp.status_code == 403
        assert "Please try again" in resp.text
    db.refresh(row)
    assert row.status == OutboxStatus.dead and row.attempts == attempts


def test_retrying_a_message_that_is_not_dead_names_why_and_changes_nothing(
    web: TestClient, db: Session
) -> None:
    admin = create_user(db, role=Role.admin)
    row = dead_letter(db)
    token = csrf(signed_in(web, admin), PATH)
    assert web.post(f"{DEAD}/{row.id}/retry", data=token).status_code == 200
    again = web.post(f"{DEAD}/{row.id}/retry", data=token, follow_redirects=False)
    assert again.status_code == 409
    assert 'id="dead-letters-error"' in again.text and "pending" in again.text
    missing = web.post(f"{DEAD}/999999/retry", data=token, follow_redirects=False)
    assert missing.status_code == 404
    db.refresh(row)
    assert row.status == OutboxStatus.pending and row.attempts == 0


# Who may -----------------------------------------------------------------------------------------


def test_staff_may_see_and_retry_dead_letters_but_not_the_rest(
    web: TestClient, db: Session
) -> None:
    staff = create_user(db, role=Role.staff)
    row = dead_letter(db)
    signed_in(web, staff)
    for url in (PATH, AUDIT, f"{AUDIT}.csv"):
        resp = web.get(url)
        assert resp.status_code == 403, url
        assert "Not for your role" in resp.text
    queue = web.get("/staff/queue").text
    assert 'id="nav-dead-letters"' in queue and 'id="nav-operations"' not in queue
    page = web.get(DEAD)
    assert page.status_code == 200 and f'id="dead-letter-{row.id}"' in page.text
    token = csrf(web, DEAD)
    resp = web.post(f"{DEAD}/{row.id}/retry", data=token, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{DEAD}?done=retried#dead-letters"
    db.refresh(row)
    assert row.status == OutboxStatus.pending


def test_experts_may_open_none_of_it_and_strangers_are_sent_to_sign_in(
    web: TestClient, db: Session
) -> None:
    row = dead_letter(db)
    for url in (PATH, DEAD, AUDIT, f"{AUDIT}.csv"):
        resp = web.get(url, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/staff/sign-in")
    expert = create_user(db, role=Role.expert)
    signed_in(web, expert)
    for url in (PATH, DEAD, AUDIT, f"{AUDIT}.csv"):
        assert web.get(url).status_code == 403, url
    token = csrf(web, "/my-account")
    resp = web.post(f"{DEAD}/{row.id}/retry", data=token, follow_redirects=False)
    assert resp.status_code == 403
    db.refresh(row)
    assert row.status == OutboxStatus.dead


# The audit trail ---------------------------------------------------------------------------------


def _reads_of_a_case(db: Session, client: TestClient) -> str:
    staff = create_user(db, role=Role.staff)
    req = submit(db, country_of_origin="KG")
    commit(db)
    headers = login(client, staff)
    for _ in range(3):
        assert client.get(f"/api/v1/cases/{req.reference}", headers=headers).status_code == 200
    return str(req.reference)


def test_the_audit_search_filters_pages_and_is_itself_audited(
    web: TestClient, db: Session, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.at(NOON)
    admin = create_user(db, role=Role.admin)
    ref = _reads_of_a_case(db, web)
    signed_in(web, admin)
    monkeypatch.setattr(operations, "AUDIT_PAGE_SIZE", 2)
    first = web.get(AUDIT, params={"reference": ref, "action": "/cases/"})
    assert first.status_code == 200, first.text
    seqs = [int(s) for s in re.findall(r'id="audit-(\d+)"', first.text)]
    assert len(seqs) == 2 and seqs == sorted(seqs, reverse=True)
    older = re.search(r'<a href="([^"]+)" id="audit-older">', first.text)
    assert older is not None
    second = web.get(older.group(1).replace("&amp;", "&"))
    rest = [int(s) for s in re.findall(r'id="audit-(\d+)"', second.text)]
    assert len(rest) == 1 and max(rest) < min(seqs)
    assert 'id="audit-older"' not in second.text
    assert ref in first.text and "GET /api/v1/cases/{reference}" in first.text
    reads = retry_audits(db, f"GET {AUDIT}")
    assert reads and reads[-1].actor == str(admin.id)
    # A day range that ends before the reads finds nothing.
    yesterday = (NOON - dt.timedelta(days=1)).date().isoformat()
    none = web.get(AUDIT, params={"reference": ref, "from": yesterday, "to": yesterday})
    assert 'id="audit-empty"' in none.text


def test_a_bad_filter_is_named_next_to_its_field(web: TestClient, db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    signed_in(web, admin)
    resp = web.get(AUDIT, params={"from": "2026-13-01", "reference": "x" * 17})
    assert resp.status_code == 422
    assert 'id="from-error"' in resp.text and 'id="reference-error"' in resp.text
    assert 'id="audit-csv"' not in resp.text  # no download of a search that was refused
    backwards = web.get(AUDIT, params={"from": "2026-12-07", "to": "2026-12-06"})
    assert backwards.status_code == 422 and 'id="to-error"' in backwards.text
    assert web.get(f"{AUDIT}.csv", params={"actor": "a\x01b"}).status_code == 422


def test_the_csv_link_returns_the_same_rows_as_the_apis_csv(
    web: TestClient, db: Session, clock: Clock
) -> None:
    clock.at(NOON)
    admin = create_user(db, role=Role.admin)
    ref = _reads_of_a_case(db, web)
    day = NOON.date().isoformat()
    signed_in(web, admin)
    html = web.get(AUDIT, params={"reference": ref, "from": day, "to": day}).text
    link = re.search(r'<a href="([^"]+)" id="audit-csv"', html)
    assert link is not None
    url = link.group(1).replace("&amp;", "&")
    assert url.startswith(f"{AUDIT}.csv?") and f"reference={ref}" in url
    from_page = web.get(url)
    assert from_page.status_code == 200
    assert from_page.headers["content-type"].startswith("text/csv")
    api = web.get(
        "/api/v1/admin/audit.csv",
        params={
            "reference": ref,
            "since": f"{day}T00:00:00Z",
            "until": f"{(NOON + dt.timedelta(days=1)).date().isoformat()}T00:00:00Z",
        },
        headers=login(web, admin),
    )
    assert api.status_code == 200
    page_rows = list(csv.reader(io.StringIO(from_page.text)))
    api_rows = list(csv.reader(io.StringIO(api.text)))
    assert page_rows == api_rows
    assert len(page_rows) == 4  # the header and the three reads
    assert retry_audits(db, f"GET {AUDIT}.csv")  # the download is recorded too
