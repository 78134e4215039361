"""Consultations with the zoom provider against the fake Zoom over real HTTP (tests/fakes/
zoom_server.py): the outbox creates the meeting (64-bit id, join link, password encrypted, no
start link stored); Zoom down for the whole retry window keeps the booking, dead-letters the row,
alerts staff, and a staff retry once Zoom is back sends the link; a 429 with a long Retry-After
is retried by the outbox; the daily count lives in ``zoom_daily_usage`` and nearing the cap
alerts admins once; the expert's host link is read fresh from Zoom.

Faults: a create Zoom carried out but never answered is found again, not made twice; a
requester's cancel does not wait for a rate-limited or slow create (real transactions on a
fresh database, a worker thread and the API at once), the meeting is deleted or never made,
and each side gets one cancellation and nothing that says "booked"."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from app.core import database
from app.core.database import commit
from app.core.settings import get_settings
from app.core.time import now
from app.intake import keys
from app.main import create_app
from app.meetings.factory import get_meeting_provider
from app.meetings.quota import NEARING_CAP_AT, host_key
from app.meetings.usage import CAP_ALERT_KIND, DbUsageStore, count_meeting_write
from app.models import (
    Consultation,
    ConsultationStatus,
    OutboxMessage,
    OutboxStatus,
    Role,
    User,
    ZoomDailyUsage,
)
from app.outbox import service as outbox
from app.scheduling.service import MEETING_CREATE
from tests.conftest import Clock, create_migrated_pg_database, drop_pg_database
from tests.factories import (
    TEST_WORKER,
    at,
    bearer,
    create_user,
    day_in,
    drain,
    expert_with_hours,
    iso,
    login,
    submit,
)
from tests.fakes.zoom_server import FakeZoom
from tests.mail_reader import clear, event_of, invites, messages, raw_text, text_of

LONDON = "Europe/London"
MAX_ATTEMPTS = 3


@pytest.fixture
def zoom(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeZoom]:
    fake = FakeZoom().start()
    env = {
        "INTAKE_MEETING_PROVIDER": "zoom",
        "INTAKE_ZOOM_ACCOUNT_ID": fake.account_id,
        "INTAKE_ZOOM_CLIENT_ID": fake.client_id,
        "INTAKE_ZOOM_CLIENT_SECRET": fake.client_secret,
        "INTAKE_ZOOM_API_BASE_URL": fake.base_url,
        "INTAKE_ZOOM_OAUTH_BASE_URL": fake.base_url,
        "INTAKE_ZOOM_TIMEOUT_SECONDS": "2",
        "INTAKE_OUTBOX_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    get_meeting_provider.cache_clear()
    assert get_meeting_provider().name == "zoom"
    yield fake
    for key in env:
        monkeypatch.delenv(key)
    get_settings.cache_clear()
    get_meeting_provider.cache_clear()
    fake.stop()


def _recover(fake: FakeZoom) -> None:
    with fake._lock:
        fake._faults.clear()


def _book(client: TestClient, db: Session, fake: FakeZoom, mail_dir: Path) -> dict[str, Any]:
    expert = expert_with_hours(db)
    fake.add_user(expert.email, "u_" + expert.email.split("@")[0])
    sub = submit(client, timezone=LONDON, full_name="Zqxzoom Person")
    drain(db)
    clear(mail_dir)
    day = day_in(LONDON, 2)
    url = f"/api/v1/requests/{sub['reference']}/consultation"
    resp = client.post(
        url, json={"start": iso(at(day, "09:00", LONDON))}, headers=bearer(sub["access_token"])
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["meeting_link"] == "follows"
    return {"sub": sub, "url": url, "expert": expert, "day": day}


def _consultation(db: Session) -> Consultation:
    c = db.scalar(select(Consultation).execution_options(populate_existing=True))
    assert c is not None
    return c


def _create_rows(db: Session) -> list[OutboxMessage]:
    return list(
        db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.kind == MEETING_CREATE)
            .execution_options(populate_existing=True)
        )
    )


def _creates(fake: FakeZoom) -> list[Any]:
    return [c for c in fake.api_calls() if c.method == "POST"]


def test_zoom_down_for_the_whole_retry_window_then_staff_retry_sends_the_link(
    client: TestClient, db: Session, mail_dir: Path, zoom: FakeZoom, clock: Clock
) -> None:
    staff = create_user(db, role=Role.staff)
    booked = _book(client, db, zoom, mail_dir)
    zoom.fail_next(1000, "500")  # every API call fails

    for _ in range(MAX_ATTEMPTS + 2):  # the confirmations, then each retry after its backoff
        drain(db)
        clock.advance(hours=1)
    [row] = _create_rows(db)
    assert row.status == OutboxStatus.dead and row.attempts == MAX_ATTEMPTS
    assert "ZoomUnavailable" in (row.last_error or "")
    # One call to Zoom per attempt: the create, then (it may have been carried out) look-ups.
    assert len(zoom.api_calls()) == MAX_ATTEMPTS and len(_creates(zoom)) == 1
    drain(db)  # the dead-letter alert

    c = _consultation(db)
    assert c.status == ConsultationStatus.booked  # the booking stands whatever Zoom does
    assert c.meeting_join_url is None and c.zoom_meeting_id is None
    got = client.get(booked["url"], headers=bearer(booked["sub"]["access_token"])).json()
    assert got["status"] == "booked" and got["meeting_link"] == "follows"

    sent = messages(mail_dir)
    to_requester = [m for m, _, _ in invites(mail_dir) if str(m["To"]).startswith("applicant-")]
    assert len(to_requester) == 1  # the confirmation only, no link yet
    assert "The link to join follows in a separate message." in text_of(to_requester[0])
    alerts = [m for m in sent if str(m["To"]) == staff.email and "set aside" in str(m["Subject"])]
    assert len(alerts) == 1 and f"#{row.id}" in str(alerts[0]["Subject"])
    assert "Zqxzoom" not in raw_text(alerts[0])

    headers = login(client, staff)
    seen = client.get(booked["url"], headers=headers)
    assert seen.status_code == 200 and seen.json()["meeting_link"] == "follows"  # pending
    listed = client.get("/api/v1/outbox/dead-letters", headers=headers)
    assert listed.status_code == 200
    assert [i["id"] for i in listed.json()["items"] if i["kind"] == MEETING_CREATE] == [row.id]

    clear(mail_dir)
    _recover(zoom)  # Zoom is back
    resp = client.post(f"/api/v1/outbox/{row.id}/retry", headers=headers)
    assert resp.status_code == 200, resp.text
    drain(db)  # creates the meeting
    drain(db)  # the invites with the link
    [row] = _create_rows(db)
    assert row.status == OutboxStatus.sent

    c = _consultation(db)
    assert c.status == ConsultationStatus.booked and c.meeting_provider == "zoom"
    assert c.zoom_meeting_id is not None and c.zoom_meeting_id > 2**32
    assert c.meeting_external_id == str(c.zoom_meeting_id)
    meeting = zoom.meetings[c.zoom_meeting_id]
    assert c.meeting_join_url == meeting["join_url"]
    created = _creates(zoom)[-1].json
    assert created["type"] == 2 and created["settings"]["waiting_room"] is True
    assert created["start_time"] == at(booked["day"], "09:00", LONDON).astimezone(dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert created["duration"] == 60
    # The password is stored encrypted; the host's start link is not stored anywhere.
    assert c.meeting_password_enc is not None
    assert meeting["password"].encode() not in c.meeting_password_enc
    stored = " ".join(str(getattr(c, col.key)) for col in Consultation.__table__.columns)
    assert "zak=" not in stored and "/s/" not in stored

    links = [(m, cal) for m, cal, _ in invites(mail_dir)]
    to = sorted(str(m["To"]) for m, _ in links)
    assert len(links) == 2 and to[1] == booked["expert"].email and to[0].startswith("applicant-")
    for m, cal in links:
        assert str(event_of(cal)["LOCATION"]) == meeting["join_url"]
        assert meeting["join_url"] in raw_text(m)
        assert "zak=" not in raw_text(m)
    got = client.get(booked["url"], headers=bearer(booked["sub"]["access_token"])).json()
    assert got["meeting_link"] == "ready" and got["join_url"] == meeting["join_url"]


def test_429_with_a_long_retry_after_is_retried_by_the_outbox(
    client: TestClient, db: Session, mail_dir: Path, zoom: FakeZoom, clock: Clock
) -> None:
    _book(client, db, zoom, mail_dir)
    zoom.fail_next(1, "429", retry_after=600)  # longer than the client waits inside a call
    drain(db)
    [row] = _create_rows(db)
    assert row.status == OutboxStatus.pending and "ZoomRateLimited" in (row.last_error or "")
    assert row.due_at >= now() + dt.timedelta(seconds=590)  # Zoom's Retry-After, not 10 s
    clock.advance(seconds=300)
    drain(db)
    assert _consultation(db).zoom_meeting_id is None  # not due yet
    clock.advance(seconds=310)
    drain(db)
    [row] = _create_rows(db)
    assert row.status == OutboxStatus.sent
    c = _consultation(db)
    assert c.zoom_meeting_id is not None and c.zoom_meeting_id in zoom.meetings
    assert len(_creates(zoom)) == 2


def test_creates_and_updates_are_counted_per_host_per_day_in_the_database(
    client: TestClient, db: Session, mail_dir: Path, zoom: FakeZoom
) -> None:
    booked = _book(client, db, zoom, mail_dir)
    drain(db)
    host = host_key(booked["expert"].email)
    count = select(ZoomDailyUsage.count).where(ZoomDailyUsage.host == host)
    assert db.scalar(count) == 1
    resp = client.patch(
        booked["url"],
        json={"start": iso(at(booked["day"], "11:00", LONDON))},
        headers=bearer(booked["sub"]["access_token"]),
    )
    assert resp.status_code == 200, resp.text
    drain(db)
    assert [c.method for c in zoom.api_calls()] == ["POST", "PATCH"]
    assert db.scalar(count.execution_options(populate_existing=True)) == 2


@pytest.mark.parametrize(
    "backend", ["postgresql", pytest.param("sqlite", marks=pytest.mark.sqlite)]
)
def test_nearing_the_cap_alerts_every_admin_once_per_host_and_day(
    db: Session, mail_dir: Path, backend: str
) -> None:
    assert db.get_bind().dialect.name == backend
    admins = [create_user(db, role=Role.admin) for _ in range(2)]
    staff = create_user(db, role=Role.staff)
    store = DbUsageStore(db)
    today = now().date()
    for _ in range(NEARING_CAP_AT - 1):
        status = count_meeting_write(db, "Busy.Expert@Example.org")
    assert status.count == NEARING_CAP_AT - 1 and not status.nearing_cap
    assert store.get("busy.expert@example.org", today) == NEARING_CAP_AT - 1
    kinds = select(func.count()).where(OutboxMessage.kind == CAP_ALERT_KIND)
    assert db.scalar(kinds) == 0
    for _ in range(5):
        count_meeting_write(db, "busy.expert@example.org")
    assert store.get("busy.expert@example.org", today) == NEARING_CAP_AT + 4
    assert db.scalar(kinds) == 1  # once per host and day
    count_meeting_write(db, "other@example.org")
    assert store.get("other@example.org", today) == 1
    drain(db)
    sent = messages(mail_dir)
    assert sorted(str(m["To"]) for m in sent) == sorted(a.email for a in admins)
    assert staff.email not in {str(m["To"]) for m in sent}
    assert f"{NEARING_CAP_AT}/100" in str(sent[0]["Subject"])


def test_the_expert_gets_a_fresh_host_link_that_is_never_stored(
    client: TestClient, db: Session, mail_dir: Path, zoom: FakeZoom
) -> None:
    booked = _book(client, db, zoom, mail_dir)
    expert: User = booked["expert"]
    c = _consultation(db)
    url = f"/api/v1/expert/consultations/{c.id}/host-link"
    headers = login(client, expert)
    pending = client.get(url, headers=headers)
    assert pending.status_code == 409 and pending.json()["error"]["code"] == "meeting_pending"

    drain(db)
    c = _consultation(db)
    assert c.zoom_meeting_id is not None
    calls = len(zoom.api_calls())
    resp = client.get(url, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["url"].startswith(f"https://zoom.us/s/{c.zoom_meeting_id}?zak=")
    assert resp.headers["cache-control"] == "no-store"
    assert [(x.method, x.path) for x in zoom.api_calls()[calls:]] == [
        ("GET", f"/v2/meetings/{c.zoom_meeting_id}")
    ]
    c = _consultation(db)
    stored = " ".join(str(getattr(c, col.key)) for col in Consultation.__table__.columns)
    assert "zak=" not in stored
    again = client.get(url, headers=headers).json()["url"]
    assert again != resp.json()["url"]  # read from Zoom each time

    other = expert_with_hours(db)
    assert client.get(url, headers=login(client, other)).status_code == 404
    staff = create_user(db, role=Role.staff)
    assert client.get(url, headers=login(client, staff)).status_code == 403

    zoom.fail_next(1, "500")
    down = client.get(url, headers=headers)
    assert down.status_code == 503 and down.json()["error"]["code"].startswith("meeting")


# Faults ----------------------------------------------------------------------------------------


def _deliver_kind(session: Session, kind: str) -> int:
    """Claim and deliver the due rows of one kind only, as the worker's pump does (claim and
    commit, then lock, deliver, commit); the others wait."""
    ids = list(
        session.scalars(
            select(OutboxMessage.id).where(
                OutboxMessage.kind == kind,
                OutboxMessage.status == OutboxStatus.pending,
                OutboxMessage.due_at <= now(),
            )
        )
    )
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(
            status=OutboxStatus.claimed,
            claimed_by=TEST_WORKER,
            attempts=OutboxMessage.attempts + 1,
            lease_until=now() + dt.timedelta(minutes=2),
        )
    )
    commit(session)
    rows = list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .execution_options(populate_existing=True)
        )
    )
    outbox.deliver_locked(session, outbox.lock_claimed(session, rows, worker=TEST_WORKER))
    commit(session)
    return len(rows)


def _to(mail_dir: Path, address: str) -> list[tuple[EmailMessage, Any]]:
    """Every e-mail to ``address`` with its calendar (None when it has none)."""
    cals = {str(m["Message-ID"]): cal for m, cal, _ in invites(mail_dir)}
    return [
        (m, cals.get(str(m["Message-ID"]))) for m in messages(mail_dir) if str(m["To"]) == address
    ]


def _one_cancellation_each(mail_dir: Path, requester: str, expert: str) -> None:
    """Each side got exactly one consultation notice, a cancellation (METHOD:CANCEL), and no
    e-mail that says "booked" or carries a meeting link."""
    for address, subject in (
        (requester, "Your consultation is cancelled"),
        (expert, "Consultation cancelled"),
    ):
        sent = _to(mail_dir, address)
        assert not any("booked" in str(m["Subject"]).lower() for m, _ in sent)
        assert not any("zoom.us/j/" in raw_text(m) for m, _ in sent)
        notices = [(m, cal) for m, cal in sent if cal is not None]
        assert [str(m["Subject"]).split(" [")[0] for m, _ in notices] == [subject]
        assert str(notices[0][1]["METHOD"]) == "CANCEL"


def test_a_create_zoom_carried_out_but_never_answered_is_found_not_made_again(
    client: TestClient, db: Session, mail_dir: Path, zoom: FakeZoom, clock: Clock
) -> None:
    booked = _book(client, db, zoom, mail_dir)
    expert: User = booked["expert"]
    zoom.fail_next(1, "lost_answer", hang_seconds=4)  # past the client's 2 s timeout
    drain(db)
    [row] = _create_rows(db)
    assert row.status == OutboxStatus.pending and "ZoomUnavailable" in (row.last_error or "")
    [made] = zoom.meetings_of(expert.email)  # carried out at Zoom all the same
    assert _consultation(db).zoom_meeting_id is None

    clock.advance(hours=1)
    drain(db)  # the retry finds it
    drain(db)  # the invites with the link
    [row] = _create_rows(db)
    assert row.status == OutboxStatus.sent
    assert zoom.meetings_of(expert.email) == [made]  # one meeting for the booking
    assert [c.status for c in _creates(zoom)] == [-1]  # the lost one: no second create
    c = _consultation(db)
    assert c.zoom_meeting_id == made["id"] and c.meeting_join_url == made["join_url"]
    assert c.meeting_password_enc is not None
    usage = select(ZoomDailyUsage.count).where(ZoomDailyUsage.host == host_key(expert.email))
    assert db.scalar(usage) == 1  # Zoom counted that create against the cap: so do we
    [(link, cal)] = [
        (m, cal)
        for m, cal, _ in invites(mail_dir)
        if str(m["To"]).startswith("applicant-") and "link" in str(m["Subject"])
    ]
    assert str(event_of(cal)["LOCATION"]) == made["join_url"]
    assert made["password"] in raw_text(link)


def test_after_a_cancel_nothing_says_booked_and_each_side_gets_one_cancellation(
    client: TestClient, db: Session, mail_dir: Path, zoom: FakeZoom
) -> None:
    booked = _book(client, db, zoom, mail_dir)
    expert: User = booked["expert"]
    # The meeting is made; the "booked" and "link" invites of both sides still wait.
    assert _deliver_kind(db, MEETING_CREATE) == 1
    meeting_id = _consultation(db).zoom_meeting_id
    assert meeting_id in zoom.meetings and list(mail_dir.glob("*.eml")) == []

    token = booked["sub"]["access_token"]
    resp = client.delete(booked["url"], headers=bearer(token))
    assert resp.status_code == 200, resp.text
    for _ in range(3):
        drain(db)

    requester = str(
        next(m["To"] for m in messages(mail_dir) if str(m["To"]).startswith("applicant-"))
    )
    _one_cancellation_each(mail_dir, requester, expert.email)
    assert zoom.meetings_of(expert.email) == []  # deleted at Zoom
    assert ("DELETE", f"/v2/meetings/{meeting_id}", 204) in [
        (c.method, c.path, c.status) for c in zoom.api_calls()
    ]


@pytest.fixture
def own_database() -> Iterator[Engine]:
    """A fresh database that the API, a worker thread and the test all commit to."""
    name = f"intake_zoom_{secrets.token_hex(3)}"
    url = create_migrated_pg_database(name)
    engine = None
    try:
        engine = database.build_engine(url, for_tests=True)
        database.set_engine(engine)
        yield engine
    finally:
        database.set_engine(None)
        keys.forget_cached_keys()
        if engine is not None:
            engine.dispose()
        drop_pg_database(name)


def _cancel_while_the_create_is_at_zoom(
    engine: Engine,
    zoom: FakeZoom,
    mail_dir: Path,
    clock: Clock,
    at_zoom: Callable[[], None],
    after_cancel: Callable[[], None] = lambda: None,
) -> tuple[float, str, str]:
    """Book through the API; a worker thread runs the booking's meeting create; once
    ``at_zoom`` says the create is at Zoom, the requester cancels through the API (then
    ``after_cancel``). Returns how long the cancel took, the requester's and the expert's
    addresses, once the outbox has delivered everything that follows."""
    with Session(engine) as s:
        expert = expert_with_hours(s)
        expert_email = expert.email
        s.commit()
    zoom.add_user(expert_email, "u_" + expert_email.split("@")[0])
    with TestClient(create_app(), raise_server_exceptions=False) as api:
        requester = f"applicant-{secrets.token_hex(4)}@example.org"
        sub = submit(api, timezone=LONDON, email=requester)
        with Session(engine) as s:
            drain(s)  # the acknowledgement and the offer
        clear(mail_dir)
        url = f"/api/v1/requests/{sub['reference']}/consultation"
        start = at(day_in(LONDON, 2), "09:00", LONDON)
        booked = api.post(url, json={"start": iso(start)}, headers=bearer(sub["access_token"]))
        assert booked.status_code == 201, booked.text

        errors: list[BaseException] = []

        def worker() -> None:
            try:
                with Session(engine) as s:
                    assert _deliver_kind(s, MEETING_CREATE) == 1
            except BaseException as exc:  # reported below
                errors.append(exc)

        thread = threading.Thread(target=worker)
        thread.start()
        at_zoom()
        started = time.monotonic()
        cancelled = api.delete(url, headers=bearer(sub["access_token"]))
        took = time.monotonic() - started
        assert cancelled.status_code == 200, cancelled.text
        after_cancel()
        thread.join(60)
        assert not thread.is_alive() and errors == []
    clock.advance(minutes=10)  # past any Retry-After
    with Session(engine) as s:
        for _ in range(5):
            drain(s)
    return took, requester, expert_email


def test_a_cancel_does_not_wait_while_zoom_rate_limits_the_meeting_create(
    own_database: Engine, zoom: FakeZoom, mail_dir: Path, clock: Clock
) -> None:
    zoom.fail_next(2, "429", retry_after=4)

    def rate_limited() -> None:
        deadline = time.monotonic() + 30
        while not any(c.method == "POST" and c.status == 429 for c in zoom.api_calls()):
            assert time.monotonic() < deadline, "the create never reached Zoom"
            time.sleep(0.005)

    took, requester, expert = _cancel_while_the_create_is_at_zoom(
        own_database, zoom, mail_dir, clock, rate_limited
    )

    assert took < 2.0, f"the cancel waited {took:.1f}s for the worker's Zoom call"
    _one_cancellation_each(mail_dir, requester, expert)
    assert zoom.meetings_of(expert) == []  # never made: the retry found it cancelled
    assert [c.status for c in _creates(zoom)] == [429]


def test_a_cancel_while_the_create_is_in_flight_does_not_wait_and_the_meeting_goes(
    own_database: Engine,
    zoom: FakeZoom,
    mail_dir: Path,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A slow Zoom, within the client's timeout: it answers once the cancel is back (or 10 s).
    monkeypatch.setenv("INTAKE_ZOOM_TIMEOUT_SECONDS", "20")
    get_settings.cache_clear()
    get_meeting_provider.cache_clear()
    gate = zoom.gate_next(timeout=10)

    def in_flight() -> None:
        assert gate.arrived.wait(30), "the create never reached Zoom"

    took, requester, expert = _cancel_while_the_create_is_at_zoom(
        own_database, zoom, mail_dir, clock, in_flight, after_cancel=gate.open.set
    )

    assert took < 2.0, f"the cancel waited {took:.1f}s for the worker's Zoom call"
    _one_cancellation_each(mail_dir, requester, expert)
    # Zoom made it once the cancel had committed: the worker saw that and deleted it.
    assert [c.status for c in _creates(zoom)] == [201]
    assert zoom.meetings_of(expert) == []
    assert [c.status for c in zoom.api_calls() if c.method == "DELETE"] == [204]
