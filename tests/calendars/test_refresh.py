"""Reading experts' calendars from a real local HTTP server: busy times block slots, a
conditional GET is answered 304 and keeps them, a failing calendar keeps its last good busy
times, backs off and alerts its expert and staff once, a new event over a booked consultation
alerts once with the reference and time only, the size limit and private addresses."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calendars import refresh, service
from app.calendars.schemas import CalendarIn
from app.core.time import now
from app.models import CalendarBusy, CalendarConnection, Role
from app.scheduling import slots
from app.scheduling.service.common import _load_experts
from tests.calendars.conftest import settings_with
from tests.calendars.servers import IcsFiles
from tests.conftest import Clock
from tests.factories import (
    at,
    booked_consultation,
    create_user,
    day_in,
    drain,
    expert_with_hours,
    make_request,
    outbox_rows,
)
from tests.mail_reader import messages, text_of

ZONE = "Europe/London"


def ics_event(uid: str, start: dt.datetime, end: dt.datetime) -> bytes:
    stamp = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20270101T000000Z\r\n"
        f"DTSTART:{start.astimezone(dt.UTC).strftime(stamp)}\r\n"
        f"DTEND:{end.astimezone(dt.UTC).strftime(stamp)}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def connect(db: Session, expert_id: uuid.UUID, url: str) -> CalendarConnection:
    return service.connect(
        db, expert_id, CalendarIn(kind="ics", address=SecretStr(url), label="Work")
    )


def read_now(db: Session, connection: CalendarConnection, **settings: object) -> refresh.Outcome:
    """One worker step, in the test's transaction: claim, read, record."""
    target = refresh.claim(db, connection.id)
    assert target is not None, "the calendar was not due"
    options = settings_with(**settings)
    outcome = refresh.read(target, options)
    refresh.record(db, connection.id, outcome, options)
    db.refresh(connection)
    return outcome


def free_starts(db: Session, expert_id: uuid.UUID) -> set[dt.datetime]:
    (e,) = _load_experts(
        db, [expert_id], now() - dt.timedelta(days=2), now() + dt.timedelta(days=40)
    )
    m = e.member()
    return {
        s.start_utc
        for s in slots.free_slots(
            m.availability, m.bookings, m.unavailable, busy=m.busy, now_utc=now(), expert_id=1
        )
    }


def test_busy_times_block_slots_and_an_unchanged_calendar_is_answered_304(
    db: Session, ics: IcsFiles
) -> None:
    expert = expert_with_hours(db, zone=ZONE)
    day = day_in(ZONE, 3)
    url = ics.put("/work.ics", ics_event("court", at(day, "10:00", ZONE), at(day, "10:30", ZONE)))
    connection = connect(db, expert.id, url)
    assert at(day, "10:00", ZONE) in free_starts(db, expert.id)

    read_now(db, connection)
    assert connection.busy_count == 1 and connection.last_error is None
    assert connection.etag == IcsFiles.etag(ics.files["/work.ics"])
    free = free_starts(db, expert.id)
    assert at(day, "10:00", ZONE) not in free
    assert {at(day, "09:00", ZONE), at(day, "11:00", ZONE)} <= free
    assert connection.next_refresh_at == connection.last_success_at + dt.timedelta(minutes=5)

    connection.next_refresh_at = now()  # due again
    outcome = read_now(db, connection)
    assert outcome.not_modified
    assert ics.requests[-1]["if-none-match"] == connection.etag
    assert "if-modified-since" in ics.requests[-1]
    assert at(day, "10:00", ZONE) not in free_starts(db, expert.id)  # kept

    service.remove(db, expert.id, connection.id)
    assert db.scalars(select(CalendarBusy)).all() == []
    assert at(day, "10:00", ZONE) in free_starts(db, expert.id)


def test_a_failing_calendar_keeps_its_busy_times_backs_off_and_alerts_once(
    db: Session, ics: IcsFiles, clock: Clock, mail_dir: Path
) -> None:
    staff = create_user(db, role=Role.staff)
    expert = expert_with_hours(db, zone=ZONE)
    day = day_in(ZONE, 3)
    url = ics.put("/work.ics", ics_event("court", at(day, "10:00", ZONE), at(day, "10:30", ZONE)))
    connection = connect(db, expert.id, url)
    read_now(db, connection)
    ics.status["/work.ics"] = 500

    waits = []
    for _ in range(5):
        clock.set((connection.next_refresh_at - now()).total_seconds() + clock.offset + 1)
        read_now(db, connection)
        waits.append(round((connection.next_refresh_at - now()).total_seconds() / 60))
        assert at(day, "10:00", ZONE) not in free_starts(db, expert.id)  # the last good read
    assert waits == [10, 20, 40, 80, 160]
    assert connection.failures == 5 and connection.last_error == "The calendar answered HTTP 500."
    # Unreadable since the first failure: 10+20+40+80 minutes > 120 at the fifth failure.
    assert len(outbox_rows(db, refresh.UNREADABLE_KIND)) == 1
    clock.set((connection.next_refresh_at - now()).total_seconds() + clock.offset + 1)
    read_now(db, connection)
    assert len(outbox_rows(db, refresh.UNREADABLE_KIND)) == 1  # once per run of failures
    drain(db)
    for person in (expert, staff):
        (mail,) = messages(mail_dir, to=person.email)
        assert "Work" in mail["Subject"] and "HTTP 500" in text_of(mail)

    del ics.status["/work.ics"]
    clock.set((connection.next_refresh_at - now()).total_seconds() + clock.offset + 1)
    read_now(db, connection)
    assert (connection.failures, connection.failing_since, connection.alerted_at) == (0, None, None)


def test_a_new_event_over_a_booked_consultation_alerts_staff_and_expert_once(
    db: Session, ics: IcsFiles, mail_dir: Path
) -> None:
    staff = create_user(db, role=Role.staff)
    expert = expert_with_hours(db, zone=ZONE)
    req = make_request(db)
    c = booked_consultation(db, req, expert, hours=30)
    url = ics.put(
        "/work.ics",
        ics_event(
            "court", c.start_at - dt.timedelta(minutes=30), c.start_at + dt.timedelta(minutes=15)
        ),
    )
    connection = connect(db, expert.id, url)
    read_now(db, connection)
    assert len(outbox_rows(db, refresh.CONFLICT_KIND)) == 1
    ics.put("/work.ics", ics.files["/work.ics"].replace(b"PRODID:-//tests//EN", b"PRODID:-//t//EN"))
    connection.next_refresh_at = now()
    assert not read_now(db, connection).not_modified  # read again in full
    assert len(outbox_rows(db, refresh.CONFLICT_KIND)) == 1
    drain(db)
    for person in (expert, staff):
        (mail,) = messages(mail_dir, to=person.email)
        assert req.reference in mail["Subject"]
        assert "court" not in text_of(mail)


def test_a_calendar_larger_than_the_limit_or_in_a_private_network_is_refused(
    db: Session, ics: IcsFiles
) -> None:
    expert = expert_with_hours(db, zone=ZONE)
    day = day_in(ZONE, 3)
    url = ics.put("/work.ics", ics_event("court", at(day, "10:00", ZONE), at(day, "10:30", ZONE)))
    connection = connect(db, expert.id, url)
    outcome = read_now(db, connection, max_bytes=len(ics.files["/work.ics"]) - 1)
    assert outcome.error is not None and "larger than" in outcome.error
    connection.next_refresh_at = now()
    outcome = read_now(db, connection, allow_private_addresses=False)
    assert outcome.error == "The address points into a private network: refused."
    connection.next_refresh_at = now()
    outcome = read_now(db, connection, allow_http=False)
    assert outcome.error is not None and "https://" in outcome.error
    assert connection.busy_count == 0
    assert len(ics.requests) == 1  # the refused addresses were never asked
