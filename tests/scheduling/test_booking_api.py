"""Slots and booking through the API: the requester's zone, 422s, booking with invites, 409s with
alternatives, the stored availability and bookings reaching the engine, reschedule, cancel,
who may do what, the region pool, and the PostgreSQL exclusion constraint."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import (
    Assignment,
    AssignmentStatus,
    Consultation,
    ConsultationStatus,
    IntakeRequest,
    OutboxMessage,
    RequestHistory,
    RequestStatus,
    Role,
)
from app.scheduling.service import INVITE_KIND, MEETING_CREATE, send_invites
from tests.conftest import Clock
from tests.factories import (
    add_absence,
    at,
    bearer,
    create_expert,
    create_user,
    day_in,
    drain,
    expert_with_hours,
    field_problems,
    iso,
    login,
    starts,
    submit,
    utc_text,
)
from tests.mail_reader import clear, event_of, invites, raw_text

LONDON = "Europe/London"
NAME = "Zqxbooker Applicant"


def _request(client: TestClient, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"full_name": NAME, "timezone": LONDON} | overrides
    return submit(client, **body)


def _slots(
    client: TestClient, sub: dict[str, Any], first: dt.date, last: dt.date, zone: str = LONDON
) -> Any:
    resp = client.get(
        f"/api/v1/requests/{sub['reference']}/slots",
        params={"from": first.isoformat(), "to": last.isoformat(), "timezone": zone},
        headers=bearer(sub["access_token"]),
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def _book(client: TestClient, sub: dict[str, Any], start: dt.datetime, **extra: Any) -> Any:
    return client.post(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": iso(start)} | extra,
        headers=bearer(sub["access_token"]),
    )


def _req(db: Session, sub: dict[str, Any]) -> IntakeRequest:
    req = db.scalar(
        select(IntakeRequest)
        .where(IntakeRequest.reference == sub["reference"])
        .execution_options(populate_existing=True)
    )
    assert req is not None
    return req


# Slots ---------------------------------------------------------------------------------------


def test_slots_in_the_requester_zone_grouped_by_local_date_with_offsets(
    client: TestClient, db: Session
) -> None:
    expert = expert_with_hours(db, name="Dr Slots")
    sub = _request(client)
    zone = "Pacific/Auckland"  # 09:00-12:00 London crosses midnight there
    first, last = day_in(zone, 2), day_in(zone, 4)
    body = _slots(client, sub, first, last, zone)
    assert body["pool"] is False
    assert body["expert"] == {"public_name": "Dr Slots"}
    assert [d["date"] for d in body["days"]] == [
        (first + dt.timedelta(days=i)).isoformat() for i in range(3)
    ]
    tz = zoneinfo.ZoneInfo(zone)
    # Independently: every London 09:00, 10:00, 11:00 whose Auckland date is in the range.
    expected = []
    for offset in range(-2, 6):
        date = day_in(LONDON, offset)
        for hhmm in ("09:00", "10:00", "11:00"):
            instant = at(date, hhmm, LONDON)
            if first <= instant.astimezone(tz).date() <= last:
                expected.append(utc_text(instant))
    assert starts(body) == sorted(expected)
    for day in body["days"]:
        for s in day["slots"]:
            start = dt.datetime.fromisoformat(s["start_utc"])
            local = start.astimezone(tz)
            assert s["start_utc"].endswith("+00:00")
            assert s["start_local"] == local.isoformat()
            assert day["date"] == local.date().isoformat()
            off = local.strftime("%z")
            assert s["utc_offset"] == f"{off[:3]}:{off[3:]}"
            end = dt.datetime.fromisoformat(s["end_utc"])
            assert end - start == dt.timedelta(hours=1)
    assert expert.id is not None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"from": "tomorrow"}, "from"),
        ({"to": "9999-01-01"}, "to"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": ""}, "timezone"),
    ],
)
def test_bad_slot_queries_are_422_naming_the_field(
    client: TestClient, db: Session, params: dict[str, str], field: str
) -> None:
    expert_with_hours(db)
    sub = _request(client)
    query = {
        "from": day_in(LONDON, 1).isoformat(),
        "to": day_in(LONDON, 2).isoformat(),
        "timezone": LONDON,
    } | params
    resp = client.get(
        f"/api/v1/requests/{sub['reference']}/slots",
        params=query,
        headers=bearer(sub["access_token"]),
    )
    assert resp.status_code == 422, resp.text
    assert field in field_problems(resp)


def test_range_beyond_the_expert_horizon_is_422_on_to(client: TestClient, db: Session) -> None:
    expert_with_hours(db, horizon_days=5)
    sub = _request(client)
    resp = client.get(
        f"/api/v1/requests/{sub['reference']}/slots",
        params={
            "from": day_in(LONDON, 1).isoformat(),
            "to": day_in(LONDON, 6).isoformat(),
            "timezone": LONDON,
        },
        headers=bearer(sub["access_token"]),
    )
    assert resp.status_code == 422
    assert "horizon" in field_problems(resp)["to"]
    ok = _slots(client, sub, day_in(LONDON, 1), day_in(LONDON, 5))
    assert len(ok["days"]) == 5


def test_another_requests_token_and_no_token_are_404(client: TestClient, db: Session) -> None:
    expert_with_hours(db)
    mine, other = _request(client), _request(client)
    for headers in (bearer(other["access_token"]), {}, bearer("rl_forged")):
        resp = client.get(
            f"/api/v1/requests/{mine['reference']}/slots",
            params={"from": day_in(LONDON).isoformat(), "to": day_in(LONDON).isoformat()},
            headers=headers,
        )
        assert resp.status_code == 404
        resp = client.post(
            f"/api/v1/requests/{mine['reference']}/consultation",
            json={"start": iso(at(day_in(LONDON), "09:00", LONDON))},
            headers=headers,
        )
        assert resp.status_code == 404


# The stored availability and bookings reach the engine ---------------------------------------


def test_stored_buffers_bookings_and_caps_shape_the_slots(client: TestClient, db: Session) -> None:
    expert_with_hours(
        db, slot_minutes=60, interval_minutes=30, buffer_after_minutes=30, max_per_day=2
    )
    first = _request(client)
    day = day_in(LONDON, 2)
    before = starts(_slots(client, first, day, day))
    assert before == [
        utc_text(at(day, t, LONDON)) for t in ("09:00", "09:30", "10:00", "10:30", "11:00")
    ]
    assert _book(client, first, at(day, "09:00", LONDON)).status_code == 201
    second = _request(client)
    # 09:30 overlaps, 10:00 starts inside the 30-minute after-buffer; 10:30 is free.
    after = starts(_slots(client, second, day, day))
    assert after == [utc_text(at(day, t, LONDON)) for t in ("10:30", "11:00")]
    assert _book(client, second, at(day, "11:00", LONDON)).status_code == 201
    third = _request(client)
    # Two a day: the day is full, the next is not.
    body = _slots(client, third, day, day + dt.timedelta(days=1))
    assert body["days"][0]["slots"] == []
    assert len(body["days"][1]["slots"]) == 5
    resp = _book(client, third, at(day, "10:30", LONDON))
    assert resp.status_code == 409
    assert resp.json()["error"]["details"]["reason"] == "day_full"


def test_unavailable_periods_overrides_and_minimum_notice_shape_the_slots(
    client: TestClient, db: Session
) -> None:
    d1, d2, d3 = day_in(LONDON, 2), day_in(LONDON, 3), day_in(LONDON, 4)
    expert = expert_with_hours(
        db,
        overrides=[
            {"date": d2.isoformat(), "ranges": [{"start": "14:00", "end": "15:00"}]},
            {"date": d3.isoformat(), "ranges": []},
        ],
    )
    add_absence(db, expert, starts=at(d1, "10:30", LONDON), hours=1)
    sub = _request(client)
    body = _slots(client, sub, d1, d3)
    by_date = {d["date"]: [s["start_utc"] for s in d["slots"]] for d in body["days"]}
    assert by_date[d1.isoformat()] == [utc_text(at(d1, "09:00", LONDON))]  # 10:00, 11:00 away
    assert by_date[d2.isoformat()] == [utc_text(at(d2, "14:00", LONDON))]
    assert by_date[d3.isoformat()] == []
    # A minimum notice of four days leaves none of them.
    from app.scheduling import service
    from app.scheduling.schemas import AvailabilityIn

    service.put_availability(
        db,
        expert.id,
        AvailabilityIn.model_validate(
            {
                "weekly": [{"weekday": d, "start": "09:00", "end": "12:00"} for d in range(7)],
                "slot_minutes": 60,
                "min_notice_minutes": 5 * 24 * 60,
            }
        ),
        actor="test",
    )
    assert starts(_slots(client, sub, d1, d3)) == []
    resp = _book(client, sub, at(d1, "09:00", LONDON))
    assert resp.status_code == 409
    assert resp.json()["error"]["details"]["reason"] == "too_soon"


# Booking -------------------------------------------------------------------------------------


def test_booking_confirms_with_invites_and_moves_the_status(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    expert = expert_with_hours(db, name="Dr Invite", link="https://meet.example.org/dr-invite")
    sub = _request(client)
    req = _req(db, sub)
    assert req.assigned_expert_id == expert.id  # routing offered it on submission
    start = at(day_in(LONDON, 2), "10:00", LONDON)
    drain(db)  # the acknowledgement and the offer
    clear(mail_dir)
    resp = _book(client, sub, start)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "booked"
    assert dt.datetime.fromisoformat(body["start_utc"]) == start
    assert dt.datetime.fromisoformat(body["end_utc"]) == start + dt.timedelta(hours=1)
    assert body["expert"] == {"public_name": "Dr Invite"}
    assert body["join_url"] == "https://meet.example.org/dr-invite"
    assert body["meeting_link"] == "ready"
    assert body["ical_sequence"] == 0
    req = _req(db, sub)
    assert req.status == RequestStatus.consultation_scheduled
    actions = db.scalars(
        select(RequestHistory.action).where(RequestHistory.request_id == req.id)
    ).all()
    assert "consultation_booked" in actions and "status_changed" in actions
    live = db.scalar(
        select(Assignment).where(
            Assignment.request_id == req.id, Assignment.status == AssignmentStatus.accepted
        )
    )
    assert live is not None and live.expert_id == expert.id
    # The link provider knew the link at once: no meeting row to wait for.
    assert db.scalar(select(OutboxMessage).where(OutboxMessage.kind == MEETING_CREATE)) is None
    status = client.get(
        f"/api/v1/requests/{sub['reference']}", headers=bearer(sub["access_token"])
    ).json()
    assert status["status"] == "consultation_scheduled"

    drain(db)
    found = invites(mail_dir)
    assert len(found) == 2
    by_to = {str(m["To"]): (m, alt, att) for m, alt, att in found}
    expert_msg = by_to[expert.email][0]
    requester_msg = next(m for to, (m, _, _) in by_to.items() if to != expert.email)
    for _, cal, attached in found:
        for c in (cal, attached):
            assert str(c["METHOD"]) == "REQUEST"
            ev = event_of(c)
            assert str(ev["UID"]) == body["ical_uid"]
            assert int(ev["SEQUENCE"]) == 0
            assert ev.decoded("DTSTART") == start
            assert ev.to_ical().decode().count("DTSTART:") == 1
            assert f"DTSTART:{start:%Y%m%dT%H%M%S}Z" in c.to_ical().decode()
            assert str(ev["LOCATION"]) == "https://meet.example.org/dr-invite"
            assert str(ev["STATUS"]) == "CONFIRMED"
            assert "ORGANIZER" in ev and "ATTENDEE" in ev
    # The expert's copy: reference, country and time; nothing of the requester.
    expert_raw = raw_text(expert_msg)
    assert sub["reference"] in expert_raw
    assert "Zqxbooker" not in expert_raw
    assert str(requester_msg["To"]) not in expert_raw
    assert "Zqxbooker" in raw_text(requester_msg)
    alt_part = next(p for p in expert_msg.walk() if p.get_content_type() == "text/calendar")
    assert alt_part.get_param("method") == "REQUEST"
    assert alt_part.get_content_charset() in ("utf-8", "UTF-8")


def test_russian_discreet_requester_gets_a_neutral_russian_invite(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    expert_with_hours(db)
    sub = _request(client, language="ru", discreet=True)
    drain(db)
    clear(mail_dir)
    assert _book(client, sub, at(day_in(LONDON, 2), "09:00", LONDON)).status_code == 201
    drain(db)
    msg, *calendars = next(i for i in invites(mail_dir) if str(i[0]["To"]).startswith("applicant-"))
    for cal in calendars:  # the invite itself, PRODID included, says nothing of asylum
        assert "asylum" not in cal.to_ical().decode().lower()
    subject = str(msg["Subject"])
    assert "встреча" in subject.lower()
    assert "консульт" not in subject.lower() and "asylum" not in subject.lower()
    assert "Здравствуйте" in raw_text(msg)


def test_a_slot_not_offered_or_taken_is_409_with_fresh_alternatives(
    client: TestClient, db: Session, clock: Clock
) -> None:
    # After today's 09:00-12:00 in London, so that tomorrow's hours are the next ones.
    clock.at(dt.datetime(2027, 1, 13, 14, 0, tzinfo=dt.UTC))
    expert_with_hours(db)
    day = day_in(LONDON, 2)
    first, second = _request(client), _request(client)
    resp = _book(client, first, at(day, "09:10", LONDON))
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["code"] == "slot_unavailable"
    assert error["details"]["reason"] == "not_offered"
    # The next free slots from now: tomorrow's hours come first.
    first_alternative = error["details"]["alternatives"][0]
    assert first_alternative["start_utc"] == utc_text(at(day_in(LONDON, 1), "09:00", LONDON))
    assert first_alternative["start_local"].endswith(("+00:00", "+01:00"))
    assert _book(client, first, at(day, "09:00", LONDON)).status_code == 201
    resp = _book(client, second, at(day, "09:00", LONDON))
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["details"]["reason"] == "conflict"
    assert "taken" in error["message"]
    alternatives = [a["start_utc"] for a in error["details"]["alternatives"]]
    assert len(alternatives) == 5
    assert utc_text(at(day, "09:00", LONDON)) not in alternatives
    assert alternatives == sorted(alternatives)


def test_booking_twice_is_409_naming_the_allowed_statuses(client: TestClient, db: Session) -> None:
    expert_with_hours(db)
    sub = _request(client)
    assert _book(client, sub, at(day_in(LONDON, 2), "09:00", LONDON)).status_code == 201
    resp = _book(client, sub, at(day_in(LONDON, 2), "11:00", LONDON))
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["code"] == "booking_not_allowed"
    assert error["details"]["allowed"] == ["new", "in_progress"]
    assert "new or in_progress" in error["message"]


def test_pool_booking_assigns_the_picked_expert(client: TestClient, db: Session) -> None:
    sub = _request(client)  # no expert exists yet: triage
    assert _req(db, sub).assigned_expert_id is None
    a = expert_with_hours(db, countries=(), regions=("eastern_europe_post_soviet",))
    b = expert_with_hours(
        db,
        countries=(),
        regions=("eastern_europe_post_soviet",),
        weekly=[{"weekday": d, "start": "13:00", "end": "14:00"} for d in range(7)],
    )
    day = day_in(LONDON, 2)
    body = _slots(client, sub, day, day)
    assert body["pool"] is True and body["expert"] is None
    assert starts(body) == [
        utc_text(at(day, t, LONDON)) for t in ("09:00", "10:00", "11:00", "13:00")
    ]
    resp = _book(client, sub, at(day, "13:00", LONDON))
    assert resp.status_code == 201, resp.text
    req = _req(db, sub)
    assert req.assigned_expert_id == b.id
    assert req.status == RequestStatus.consultation_scheduled
    live = db.scalar(
        select(Assignment).where(
            Assignment.request_id == req.id, Assignment.status == AssignmentStatus.accepted
        )
    )
    assert live is not None and live.expert_id == b.id
    assert a.id != b.id


# Reschedule and cancel -----------------------------------------------------------------------


def test_requester_reschedules_same_uid_next_sequence(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    expert_with_hours(db)
    sub = _request(client)
    day = day_in(LONDON, 2)
    booked = _book(client, sub, at(day, "09:00", LONDON)).json()
    drain(db)
    clear(mail_dir)
    resp = client.patch(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": iso(at(day, "11:00", LONDON))},
        headers=bearer(sub["access_token"]),
    )
    assert resp.status_code == 200, resp.text
    moved = resp.json()
    assert moved["ical_uid"] == booked["ical_uid"] and moved["ical_sequence"] == 1
    assert dt.datetime.fromisoformat(moved["start_utc"]) == at(day, "11:00", LONDON)
    drain(db)
    found = invites(mail_dir)
    assert len(found) == 2
    for _, cal, att in found:
        for c in (cal, att):
            ev = event_of(c)
            assert str(c["METHOD"]) == "REQUEST"
            assert str(ev["UID"]) == booked["ical_uid"]
            assert int(ev["SEQUENCE"]) == 1
            assert ev.decoded("DTSTART") == at(day, "11:00", LONDON)
    # The old time is free again, the new one is not.
    other = _request(client)
    free = starts(_slots(client, other, day, day))
    assert utc_text(at(day, "09:00", LONDON)) in free
    assert utc_text(at(day, "11:00", LONDON)) not in free
    # Rescheduling onto a taken slot: 409 with alternatives.
    assert _book(client, other, at(day, "10:00", LONDON)).status_code == 201
    resp = client.patch(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": iso(at(day, "10:00", LONDON))},
        headers=bearer(sub["access_token"]),
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["details"]["alternatives"]


def test_staff_cancels_with_method_cancel_and_the_request_goes_back(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    expert_with_hours(db)
    staff = create_user(db, role=Role.staff)
    sub = _request(client)
    day = day_in(LONDON, 2)
    booked = _book(client, sub, at(day, "09:00", LONDON)).json()
    drain(db)
    clear(mail_dir)
    resp = client.delete(
        f"/api/v1/requests/{sub['reference']}/consultation", headers=login(client, staff)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "cancelled"
    assert _req(db, sub).status == RequestStatus.in_progress
    drain(db)
    found = invites(mail_dir)
    assert len(found) == 2
    for _, cal, att in found:
        for c in (cal, att):
            ev = event_of(c)
            assert str(c["METHOD"]) == "CANCEL"
            assert str(ev["STATUS"]) == "CANCELLED"
            assert str(ev["UID"]) == booked["ical_uid"]
            assert int(ev["SEQUENCE"]) == 1
    # The slot is free again, and the request may book again (in_progress).
    assert utc_text(at(day, "09:00", LONDON)) in starts(_slots(client, sub, day, day))
    again = _book(client, sub, at(day, "09:00", LONDON))
    assert again.status_code == 201
    assert again.json()["ical_uid"] != booked["ical_uid"]


def test_the_expert_cancels_their_own_and_other_experts_get_404(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    expert = expert_with_hours(db)
    stranger = create_expert(db, countries=["AF"])
    sub = _request(client)
    _book(client, sub, at(day_in(LONDON, 2), "09:00", LONDON))
    url = f"/api/v1/requests/{sub['reference']}/consultation"
    assert client.delete(url, headers=login(client, stranger)).status_code == 404
    assert client.get(url, headers=login(client, stranger)).status_code == 404
    assert client.delete(url, headers=bearer("rl_wrong")).status_code == 404
    mine = login(client, expert)
    assert client.get(url, headers=mine).json()["status"] == "booked"
    # The expert cannot book or list slots for the requester.
    assert (
        client.post(
            url, json={"start": iso(at(day_in(LONDON, 3), "09:00", LONDON))}, headers=mine
        ).status_code
        == 404
    )
    drain(db)
    clear(mail_dir)
    resp = client.delete(url, headers=mine)
    assert resp.status_code == 200
    assert resp.json()["status"] == "cancelled" and resp.json()["ical_sequence"] == 1
    drain(db)
    sent = [cal for _, cal, _ in invites(mail_dir)]
    assert len(sent) == 2
    assert {str(cal["METHOD"]) for cal in sent} == {"CANCEL"}
    assert {int(event_of(cal)["SEQUENCE"]) for cal in sent} == {1}
    assert client.delete(url, headers=mine).status_code == 404  # nothing booked any more


# Reassignment --------------------------------------------------------------------------------


def test_reassignment_moves_the_booking_when_the_new_expert_is_free(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    old = expert_with_hours(db)
    new = expert_with_hours(db, countries=("KZ",), link="https://meet.example.org/new-one")
    staff = create_user(db, role=Role.staff)
    sub = _request(client)
    booked = _book(client, sub, at(day_in(LONDON, 2), "10:00", LONDON)).json()
    drain(db)
    clear(mail_dir)
    resp = client.post(
        f"/api/v1/requests/{sub['reference']}/reassign",
        json={"expert_id": str(new.id)},
        headers=login(client, staff),
    )
    assert resp.status_code == 200, resp.text
    c = db.scalar(select(Consultation).execution_options(populate_existing=True))
    assert c is not None and c.status == ConsultationStatus.booked
    assert c.expert_id == new.id and c.ical_sequence == 1
    assert c.ical_uid == booked["ical_uid"]
    assert c.meeting_join_url == "https://meet.example.org/new-one"
    req = _req(db, sub)
    assert req.status == RequestStatus.consultation_scheduled
    live = db.scalar(
        select(Assignment).where(
            Assignment.request_id == req.id, Assignment.status == AssignmentStatus.accepted
        )
    )
    assert live is not None and live.expert_id == new.id
    drain(db)
    by_to = {str(m["To"]): cal for m, cal, _ in invites(mail_dir)}
    assert str(by_to[old.email]["METHOD"]) == "CANCEL"
    assert str(by_to[new.email]["METHOD"]) == "REQUEST"
    requester = [cal for to, cal in by_to.items() if to not in (old.email, new.email)]
    assert len(requester) == 1
    assert str(requester[0]["METHOD"]) == "REQUEST"
    ev = event_of(requester[0])
    assert int(ev["SEQUENCE"]) == 1 and str(ev["UID"]) == booked["ical_uid"]
    assert str(ev["LOCATION"]) == "https://meet.example.org/new-one"


def test_a_move_before_the_confirmations_went_out_tells_the_old_expert_once(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    old = expert_with_hours(db)
    new = expert_with_hours(db, countries=("KZ",), link="https://meet.example.org/new-two")
    staff = create_user(db, role=Role.staff)
    sub = _request(client)
    _book(client, sub, at(day_in(LONDON, 2), "10:00", LONDON))
    clear(mail_dir)  # nothing of the booking has been sent yet
    resp = client.post(
        f"/api/v1/requests/{sub['reference']}/reassign",
        json={"expert_id": str(new.id)},
        headers=login(client, staff),
    )
    assert resp.status_code == 200, resp.text
    drain(db)
    sent = [(str(m["To"]), str(cal["METHOD"])) for m, cal, _ in invites(mail_dir)]
    # The old expert: the move, as one cancellation (not also their "booked", turned into
    # another); the new expert: the move, once.
    assert [method for to, method in sent if to == old.email] == ["CANCEL"]
    assert [method for to, method in sent if to == new.email] == ["REQUEST"]


def test_one_change_is_queued_once_for_each_person(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    expert_with_hours(db)
    sub = _request(client)
    _book(client, sub, at(day_in(LONDON, 2), "10:00", LONDON))
    c = db.scalar(select(Consultation))
    assert c is not None
    invite_rows = select(OutboxMessage.params).where(OutboxMessage.kind == INVITE_KIND)
    before = db.scalars(invite_rows).all()
    assert sorted(p["to"] for p in before) == ["expert", "requester"]
    send_invites(db, c, "booked")  # the same change (same SEQUENCE) queued again
    assert db.scalars(invite_rows).all() == before


def test_reassignment_cancels_the_booking_when_the_new_expert_is_not_free(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    expert_with_hours(db)
    busy = expert_with_hours(
        db,
        countries=("KZ",),
        weekly=[{"weekday": d, "start": "14:00", "end": "17:00"} for d in range(7)],
    )
    staff = create_user(db, role=Role.staff)
    sub = _request(client)
    booked = _book(client, sub, at(day_in(LONDON, 2), "10:00", LONDON)).json()
    drain(db)
    clear(mail_dir)
    resp = client.post(
        f"/api/v1/requests/{sub['reference']}/reassign",
        json={"expert_id": str(busy.id)},
        headers=login(client, staff),
    )
    assert resp.status_code == 200, resp.text
    c = db.scalar(select(Consultation).execution_options(populate_existing=True))
    assert c is not None and c.status == ConsultationStatus.cancelled
    assert c.cancel_reason == "expert_reassigned" and c.ical_sequence == 1
    assert _req(db, sub).status == RequestStatus.in_progress
    drain(db)
    found = invites(mail_dir)
    assert {str(cal["METHOD"]) for _, cal, _ in found} == {"CANCEL"}
    requester = next(m for m, _, _ in found if str(m["To"]).startswith("applicant-"))
    assert "rebook" in str(requester["Subject"])
    assert "/book#token=" in raw_text(requester)
    assert booked["ical_uid"] in {str(event_of(cal)["UID"]) for _, cal, _ in found}


# PostgreSQL's exclusion constraint -----------------------------------------------------------


def _row(
    req: IntakeRequest, expert_id: Any, start: dt.datetime, minutes: int = 60, **kw: Any
) -> Consultation:
    import uuid

    return Consultation(
        id=uuid.uuid4(),
        request_id=req.id,
        expert_id=expert_id,
        start_at=start,
        end_at=start + dt.timedelta(minutes=minutes),
        blocked_from=kw.pop("blocked_from", start),
        blocked_until=kw.pop("blocked_until", start + dt.timedelta(minutes=minutes)),
        status=kw.pop("status", ConsultationStatus.booked),
        ical_uid=f"{uuid.uuid4()}@test",
        created_by="test",
    )


def test_the_exclusion_constraint_refuses_overlapping_booked_rows(
    client: TestClient, db: Session
) -> None:
    expert = expert_with_hours(db)
    a, b, c = (_req(db, _request(client)) for _ in range(3))
    start = at(day_in(LONDON, 2), "09:00", LONDON)
    db.add(_row(a, expert.id, start))
    db.flush()
    with pytest.raises(IntegrityError) as caught, db.begin_nested():
        db.add(_row(b, expert.id, start + dt.timedelta(minutes=59)))
        db.flush()
    assert "ex_consultations_booked_overlap" in str(caught.value.orig)
    # Touching ends do not overlap; cancelled rows do not count.
    db.add(_row(b, expert.id, start + dt.timedelta(minutes=60)))
    db.add(_row(c, expert.id, start, status=ConsultationStatus.cancelled))
    db.flush()
    names = (
        db.execute(
            text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'consultations'::regclass "
                "AND contype = 'x'"
            )
        )
        .scalars()
        .all()
    )
    assert names == ["ex_consultations_booked_overlap"]


def test_an_exclusion_violation_is_answered_409_with_alternatives(
    client: TestClient, db: Session
) -> None:
    """A booking stored when the expert's buffers were wider keeps its wider blocked range:
    the engine (today's buffers) offers the next slot, the constraint refuses it."""
    expert = expert_with_hours(db)
    old = _req(db, _request(client))
    day = day_in(LONDON, 2)
    start = at(day, "09:00", LONDON)
    db.add(
        _row(
            old,
            expert.id,
            start,
            blocked_from=start,
            blocked_until=start + dt.timedelta(minutes=90),
        )
    )
    db.flush()
    sub = _request(client)
    assert utc_text(at(day, "10:00", LONDON)) in starts(_slots(client, sub, day, day))
    resp = _book(client, sub, at(day, "10:00", LONDON))
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["details"]["reason"] == "conflict"
    assert error["details"]["alternatives"]
    assert _req(db, sub).status != RequestStatus.consultation_scheduled


def test_withdrawing_the_request_cancels_its_consultation(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    expert = expert_with_hours(db)
    sub = _request(client)
    day = day_in(LONDON, 2)
    booked = _book(client, sub, at(day, "09:00", LONDON)).json()
    drain(db)
    clear(mail_dir)
    resp = client.post(
        f"/api/v1/requests/{sub['reference']}/withdraw", headers=bearer(sub["access_token"])
    )
    assert resp.status_code == 200, resp.text
    c = db.scalar(select(Consultation).execution_options(populate_existing=True))
    assert c is not None and c.status == ConsultationStatus.cancelled
    assert c.cancel_reason == "request_withdrawn"
    assert _req(db, sub).status == RequestStatus.withdrawn
    drain(db)
    found = invites(mail_dir)
    expert_cal = next(cal for m, cal, _ in found if str(m["To"]) == expert.email)
    assert str(expert_cal["METHOD"]) == "CANCEL"
    assert str(event_of(expert_cal)["UID"]) == booked["ical_uid"]
    # The time is free again for someone else.
    other = _request(client)
    assert utc_text(at(day, "09:00", LONDON)) in starts(_slots(client, other, day, day))


def _next_clock_change(zone: str) -> dt.date:
    """The first local date (from the day after tomorrow) whose noon has another UTC offset
    than the noon before."""
    tz = zoneinfo.ZoneInfo(zone)
    day = day_in(zone, 2)
    for _ in range(360):
        following = day + dt.timedelta(days=1)
        noon = dt.datetime(day.year, day.month, day.day, 12, tzinfo=tz)
        next_noon = dt.datetime(following.year, following.month, following.day, 12, tzinfo=tz)
        if noon.utcoffset() != next_noon.utcoffset():
            return following
        day = following
    raise AssertionError("no clock change within a year")


def test_slots_across_the_requesters_clock_change_carry_each_days_offset(
    client: TestClient, db: Session
) -> None:
    """The expert (Asia/Tokyo, no daylight saving) works 09:00-10:00; a requester in New York
    asks for the days around New York's next clock change: the same Tokyo instants, labelled
    with the New York offset in force at each."""
    ny = "America/New_York"
    expert_with_hours(
        db,
        zone="Asia/Tokyo",
        timezone="Asia/Tokyo",
        horizon_days=365,
        weekly=[{"weekday": d, "start": "09:00", "end": "10:00"} for d in range(7)],
    )
    sub = _request(client, timezone=ny)
    change = _next_clock_change(ny)
    first, last = change - dt.timedelta(days=1), change + dt.timedelta(days=1)
    body = _slots(client, sub, first, last, ny)
    tokyo, tz = zoneinfo.ZoneInfo("Asia/Tokyo"), zoneinfo.ZoneInfo(ny)
    offsets = set()
    for day in body["days"]:
        assert len(day["slots"]) == 1
        s = day["slots"][0]
        start = dt.datetime.fromisoformat(s["start_utc"])
        assert start.astimezone(tokyo).strftime("%H:%M") == "09:00"
        local = start.astimezone(tz)
        assert s["start_local"] == local.isoformat()
        assert day["date"] == local.date().isoformat()
        offsets.add(s["utc_offset"])
    assert offsets == {"-05:00", "-04:00"}


def test_a_start_without_a_zone_is_422_on_start(client: TestClient, db: Session) -> None:
    expert_with_hours(db)
    sub = _request(client)
    resp = client.post(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": "2026-12-01T09:00:00"},
        headers=bearer(sub["access_token"]),
    )
    assert resp.status_code == 422
    assert "start" in field_problems(resp)


def test_the_requesters_own_booking_does_not_hide_the_slots_it_may_move_to(
    client: TestClient, db: Session
) -> None:
    expert_with_hours(db, slot_minutes=60, interval_minutes=30, max_per_day=1)
    sub = _request(client)
    day = day_in(LONDON, 2)
    assert _book(client, sub, at(day, "09:00", LONDON)).status_code == 201
    # The day is full for everyone else, but the requester may move within it.
    other = _request(client)
    assert _slots(client, other, day, day)["days"][0]["slots"] == []
    mine = starts(_slots(client, sub, day, day))
    assert utc_text(at(day, "09:30", LONDON)) in mine
    resp = client.patch(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": iso(at(day, "09:30", LONDON))},
        headers=bearer(sub["access_token"]),
    )
    assert resp.status_code == 200, resp.text


def test_staff_and_the_expert_reschedule_each_change_raises_the_sequence(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    expert = expert_with_hours(db)
    staff = create_user(db, role=Role.staff)
    sub = _request(client)
    day = day_in(LONDON, 2)
    booked = _book(client, sub, at(day, "09:00", LONDON)).json()
    url = f"/api/v1/requests/{sub['reference']}/consultation"
    by_staff = client.patch(
        url, json={"start": iso(at(day, "10:00", LONDON))}, headers=login(client, staff)
    )
    assert by_staff.status_code == 200 and by_staff.json()["ical_sequence"] == 1
    drain(db)
    clear(mail_dir)
    by_expert = client.patch(
        url, json={"start": iso(at(day, "11:00", LONDON))}, headers=login(client, expert)
    )
    assert by_expert.status_code == 200, by_expert.text
    assert by_expert.json()["ical_sequence"] == 2
    drain(db)
    found = invites(mail_dir)
    assert len(found) == 2
    for _, cal, _ in found:
        ev = event_of(cal)
        assert str(cal["METHOD"]) == "REQUEST"
        assert str(ev["UID"]) == booked["ical_uid"] and int(ev["SEQUENCE"]) == 2
        assert ev.decoded("DTSTART") == at(day, "11:00", LONDON)
    actors = db.scalars(
        select(RequestHistory.actor).where(RequestHistory.action == "consultation_rescheduled")
    ).all()
    assert sorted(actors) == sorted([f"user:{staff.id}", f"user:{expert.id}"])


def test_the_pool_gives_a_shared_time_to_the_expert_with_fewer_bookings_that_day(
    client: TestClient, db: Session
) -> None:
    first, second = _request(client), _request(client)  # no expert yet: the pool
    region = ("eastern_europe_post_soviet",)
    a = expert_with_hours(db, countries=(), regions=region)
    b = expert_with_hours(db, countries=(), regions=region)
    day = day_in(LONDON, 2)
    # Whoever the rule picks first gets the 09:00 booking; the next request's 10:00 (offered
    # by both) must then go to the other one.
    assert _book(client, first, at(day, "09:00", LONDON)).status_code == 201
    busy = _req(db, first).assigned_expert_id
    assert busy in (a.id, b.id)
    assert busy == min((a.id, b.id), key=str)  # a tie goes to the lower id (as text)
    assert _req(db, second).assigned_expert_id is None
    assert _book(client, second, at(day, "10:00", LONDON)).status_code == 201
    assert _req(db, second).assigned_expert_id == ({a.id, b.id} - {busy}).pop()


@pytest.mark.sqlite
def test_the_whole_flow_on_sqlite(client: TestClient, db: Session, mail_dir: Path) -> None:
    """The embedded default: book, a taken slot is 409 with alternatives, reschedule, cancel."""
    expert_with_hours(db)
    first, second = _request(client), _request(client)
    day = day_in(LONDON, 2)
    booked = _book(client, first, at(day, "09:00", LONDON))
    assert booked.status_code == 201, booked.text
    taken = _book(client, second, at(day, "09:00", LONDON))
    assert taken.status_code == 409
    assert taken.json()["error"]["details"]["alternatives"]
    url = f"/api/v1/requests/{first['reference']}/consultation"
    moved = client.patch(
        url, json={"start": iso(at(day, "10:00", LONDON))}, headers=bearer(first["access_token"])
    )
    assert moved.status_code == 200 and moved.json()["ical_sequence"] == 1
    assert _book(client, second, at(day, "09:00", LONDON)).status_code == 201
    gone = client.delete(url, headers=bearer(first["access_token"]))
    assert gone.status_code == 200 and gone.json()["status"] == "cancelled"
    drain(db)
    methods = sorted(str(cal["METHOD"]) for _, cal, _ in invites(mail_dir))
    assert methods and set(methods) <= {"REQUEST", "CANCEL"} and "CANCEL" in methods
