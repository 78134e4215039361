"""POST /webhooks/zoom over HTTP and the worker's processing of its events.

Signatures are computed here with hmac from Zoom's published formula, not with the module's own
helpers. Consultations are booked through the API (link provider) and then given a Zoom meeting
id, as the meetings.create handler would; no Zoom call is needed for webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.core.settings import get_settings
from app.core.time import now
from app.meetings.events import WEBHOOK_EVENT_KIND, mark_no_shows
from app.meetings.factory import get_meeting_provider
from app.models import (
    Consultation,
    ConsultationStatus,
    IntakeRequest,
    OutboxMessage,
    RequestHistory,
    RequestStatus,
    Role,
    ZoomWebhookEvent,
)
from tests.conftest import Clock
from tests.factories import (
    at,
    bearer,
    create_user,
    day_in,
    drain,
    expert_with_hours,
    iso,
    named_time,
    submit,
)
from tests.mail_reader import clear, messages, text_of

SECRET = "whsec_webhook_test"
LONDON = "Europe/London"
URL = "/webhooks/zoom"
MEETING_ID = 2**32 + 81_234_567_890


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("INTAKE_ZOOM_WEBHOOK_SECRET_TOKEN", SECRET)
    get_settings.cache_clear()
    get_meeting_provider.cache_clear()
    yield SECRET
    monkeypatch.delenv("INTAKE_ZOOM_WEBHOOK_SECRET_TOKEN")
    get_settings.cache_clear()
    get_meeting_provider.cache_clear()


def signed(body: bytes, *, ts: int | None = None, key: str = SECRET) -> dict[str, str]:
    stamp = str(ts if ts is not None else int(now().timestamp()))
    digest = hmac.new(key.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    return {
        "x-zm-request-timestamp": stamp,
        "x-zm-signature": "v0=" + digest.hexdigest(),
        "content-type": "application/json",
    }


def event(name: str, meeting_id: object = MEETING_ID, *, ts_ms: int | None = None) -> bytes:
    return json.dumps(
        {
            "event": name,
            "event_ts": ts_ms if ts_ms is not None else int(now().timestamp() * 1000),
            "payload": {
                "account_id": "acct_test",
                "object": {
                    "id": meeting_id,
                    "uuid": "4444AAAiAAAAAiAiAiiAii==",
                    "host_id": "u_expert1",
                    "topic": "Consultation",
                    "type": 2,
                },
            },
        }
    ).encode()


def _book(
    client: TestClient, db: Session, *, hhmm: str = "09:00", zoom_id: int | None = MEETING_ID
) -> Consultation:
    """A booked consultation; with ``zoom_id`` it has the Zoom meeting the handler would make."""
    expert = db.scalar(select(Consultation.expert_id))
    if expert is None:
        expert_with_hours(db)
    sub = submit(client, timezone=LONDON, full_name="Zqxhook Person")
    resp = client.post(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": iso(at(day_in(LONDON, 2), hhmm, LONDON))},
        headers=bearer(sub["access_token"]),
    )
    assert resp.status_code == 201, resp.text
    c = db.get(Consultation, uuid.UUID(resp.json()["id"]))
    assert c is not None
    if zoom_id is not None:
        c.meeting_provider = "zoom"
        c.zoom_meeting_id = zoom_id
        c.meeting_external_id = str(zoom_id)
        c.meeting_join_url = f"https://zoom.us/j/{zoom_id}"
    db.flush()
    drain(db)  # the confirmations
    return c


def _fresh(db: Session, c: Consultation) -> Consultation:
    got = db.get(Consultation, c.id, populate_existing=True)
    assert got is not None
    return got


def _count(db: Session, model: Any, *where: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_started_then_ended_are_recorded_and_the_consultation_is_held(
    client: TestClient, db: Session, secret: str
) -> None:
    c = _book(client, db)
    started_ms = int(now().timestamp() * 1000)
    body = event("meeting.started", MEETING_ID, ts_ms=started_ms)
    t0 = time.monotonic()
    resp = client.post(URL, content=body, headers=signed(body))
    assert resp.status_code == 204, resp.text
    assert time.monotonic() - t0 < 1.0
    [row] = db.scalars(select(ZoomWebhookEvent)).all()
    assert row.event == "meeting.started" and row.meeting_id == MEETING_ID
    assert _count(db, OutboxMessage, OutboxMessage.kind == WEBHOOK_EVENT_KIND) == 1
    assert _fresh(db, c).meeting_started_at is None  # the work is the worker's
    drain(db)
    c = _fresh(db, c)
    assert c.meeting_started_at is not None
    assert abs(c.meeting_started_at.timestamp() - started_ms / 1000) < 0.01
    assert c.status == ConsultationStatus.booked

    # Zoom sends the id as a string in some events.
    body = event("meeting.ended", str(MEETING_ID))
    resp = client.post(URL, content=body, headers=signed(body))
    assert resp.status_code == 204, resp.text
    drain(db)
    c = _fresh(db, c)
    assert c.status == ConsultationStatus.held and c.meeting_ended_at is not None
    req = db.get(IntakeRequest, c.request_id, populate_existing=True)
    assert req is not None and req.status == RequestStatus.consultation_held
    actions = list(
        db.scalars(
            select(RequestHistory.action).where(
                RequestHistory.request_id == req.id, RequestHistory.actor == "zoom"
            )
        )
    )
    assert sorted(actions) == ["consultation_held", "status_changed"]


def test_url_validation_is_answered_with_the_encrypted_token(
    client: TestClient, db: Session, secret: str
) -> None:
    body = json.dumps(
        {
            "event": "endpoint.url_validation",
            "event_ts": int(now().timestamp() * 1000),
            "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
        }
    ).encode()
    resp = client.post(URL, content=body, headers=signed(body))
    assert resp.status_code == 200, resp.text
    expected = hmac.new(SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert resp.json() == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}
    wrong = client.post(URL, content=body, headers=signed(body, key="not-the-secret"))
    assert wrong.status_code == 401
    assert _count(db, ZoomWebhookEvent) == 0


def test_a_bad_signature_is_refused_and_nothing_is_stored(
    client: TestClient, db: Session, secret: str
) -> None:
    body = event("meeting.started")
    resp = client.post(URL, content=body, headers=signed(body, key="whsec_other"))
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_webhook_signature"
    assert "request_id" in resp.json()
    tampered = body.replace(b"meeting.started", b"meeting.deleted")
    assert client.post(URL, content=tampered, headers=signed(body)).status_code == 401
    assert client.post(URL, content=body).status_code == 401  # no headers at all
    assert _count(db, ZoomWebhookEvent) == 0
    assert _count(db, OutboxMessage, OutboxMessage.kind == WEBHOOK_EVENT_KIND) == 0


def test_a_stale_or_future_timestamp_is_refused(
    client: TestClient, db: Session, secret: str
) -> None:
    body = event("meeting.started")
    current = int(now().timestamp())
    stale = client.post(URL, content=body, headers=signed(body, ts=current - 301))
    assert stale.status_code == 401 and "old" in stale.json()["error"]["message"]
    future = client.post(URL, content=body, headers=signed(body, ts=current + 120))
    assert future.status_code == 401
    assert client.post(URL, content=body, headers=signed(body, ts=current - 60)).status_code == 204
    assert _count(db, ZoomWebhookEvent) == 1


def test_a_replayed_delivery_is_acknowledged_and_ignored(
    client: TestClient, db: Session, secret: str, clock: Clock
) -> None:
    c = _book(client, db)
    body = event("meeting.started")
    assert client.post(URL, content=body, headers=signed(body)).status_code == 204
    drain(db)
    first = _fresh(db, c).meeting_started_at
    clock.advance(seconds=90)  # Zoom's retry, or a replay inside the window, newly signed
    again = client.post(URL, content=body, headers=signed(body))
    assert again.status_code == 200
    assert _count(db, ZoomWebhookEvent) == 1
    assert _count(db, OutboxMessage, OutboxMessage.kind == WEBHOOK_EVENT_KIND) == 1
    drain(db)
    assert _fresh(db, c).meeting_started_at == first


def test_a_meeting_deleted_outside_the_service_alerts_staff(
    client: TestClient, db: Session, mail_dir: Path, secret: str
) -> None:
    staff = create_user(db, role=Role.staff)
    accounts.update_settings(db, staff, timezone="Asia/Bishkek")
    in_utc = create_user(db, role=Role.staff)
    c = _book(client, db)
    cancelled = _book(client, db, hhmm="11:00", zoom_id=MEETING_ID + 1)
    cancelled.status = ConsultationStatus.cancelled  # cancelled by us: its deletion is ours
    db.flush()
    clear(mail_dir)
    for meeting_id in (MEETING_ID, MEETING_ID + 1):
        body = event("meeting.deleted", meeting_id)
        assert client.post(URL, content=body, headers=signed(body)).status_code == 204
    drain(db)
    drain(db)  # the alert
    c = _fresh(db, c)
    assert c.meeting_deleted_at is not None and c.status == ConsultationStatus.booked
    assert _fresh(db, cancelled).meeting_deleted_at is None
    req = db.get(IntakeRequest, c.request_id)
    assert req is not None
    sent = messages(mail_dir)
    [alert] = [m for m in sent if str(m["To"]) == staff.email and "Zoom" in str(m["Subject"])]
    text = text_of(alert)
    assert req.reference in str(alert["Subject"])
    # When, in each reader's own zone, named: one e-mail each.
    assert named_time(c.start_at, "Asia/Bishkek") in " ".join(text.split())
    assert named_time(c.start_at, "UTC") not in " ".join(text.split())
    [other] = [m for m in sent if str(m["To"]) == in_utc.email and "Zoom" in str(m["Subject"])]
    assert named_time(c.start_at, "UTC") in " ".join(text_of(other).split())
    assert "Zqxhook" not in str(alert) and "applicant-" not in str(alert)
    alerts = [m for m in sent if "Zoom" in str(m["Subject"])]
    assert len({str(m["To"]) for m in alerts}) == len(alerts)  # not for the cancelled


def test_no_show_is_marked_by_the_clock_for_zoom_consultations_only(
    client: TestClient, db: Session, secret: str, clock: Clock
) -> None:
    missed = _book(client, db, hhmm="09:00", zoom_id=MEETING_ID)
    link_only = _book(client, db, hhmm="10:00", zoom_id=None)
    started = _book(client, db, hhmm="11:00", zoom_id=MEETING_ID + 2)
    body = event("meeting.started", MEETING_ID + 2)
    assert client.post(URL, content=body, headers=signed(body)).status_code == 204
    drain(db)

    end = _fresh(db, missed).end_at
    clock.set((end - now()).total_seconds() + 20 * 60)  # 20 minutes after its end: grace
    assert mark_no_shows(db) == 0
    clock.advance(hours=3)
    assert mark_no_shows(db) == 1
    assert _fresh(db, missed).status == ConsultationStatus.no_show
    assert _fresh(db, link_only).status == ConsultationStatus.booked
    assert _fresh(db, started).status == ConsultationStatus.booked
    history = db.scalar(
        select(RequestHistory).where(
            RequestHistory.request_id == missed.request_id,
            RequestHistory.action == "consultation_no_show",
        )
    )
    assert history is not None and history.details["consultation_id"] == str(missed.id)
    assert mark_no_shows(db) == 0  # once


def test_a_large_body_is_refused(client: TestClient, db: Session, secret: str) -> None:
    body = b'{"event": "meeting.started", "pad": "' + b"x" * 70_000 + b'"}'
    resp = client.post(URL, content=body, headers=signed(body))
    assert resp.status_code == 413
    assert _count(db, ZoomWebhookEvent) == 0


def test_without_a_secret_token_every_delivery_is_refused(client: TestClient, db: Session) -> None:
    assert get_settings().zoom_webhook_secret_token is None
    body = event("meeting.started")
    assert client.post(URL, content=body, headers=signed(body)).status_code == 401
    assert _count(db, ZoomWebhookEvent) == 0
