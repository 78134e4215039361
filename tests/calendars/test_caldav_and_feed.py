"""A CalDAV account read from a real server (Radicale), the consultation feed (private,
rotated, revoked; names only of accepted cases), the API's rules for who may do what, and the
pages (admin's expert page with the slot explainer, the expert's own calendars)."""

from __future__ import annotations

import datetime as dt

from caldav.davclient import DAVClient
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.calendars import feed, refresh
from app.models import AssignmentStatus, CalendarConnection, ConsultationFeed, Role
from app.scheduling.explain import Rule
from app.scheduling.service import explaining
from tests.calendars.servers import CalDav
from tests.calendars.test_refresh import ZONE, read_now
from tests.factories import (
    assignment,
    at,
    booked_consultation,
    create_user,
    csrf,
    day_in,
    expert_with_hours,
    login,
    make_request,
    signed_in,
)

EVENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//tests//EN
BEGIN:VEVENT
UID:hearing@tests
DTSTAMP:20270101T000000Z
DTSTART:{start}
DTEND:{end}
RRULE:FREQ=DAILY;COUNT=3
SUMMARY:Court hearing
END:VEVENT
END:VCALENDAR
"""


def test_a_caldav_account_is_read_from_a_real_server(
    db: Session, client: TestClient, caldav_server: CalDav
) -> None:
    expert = expert_with_hours(db, zone=ZONE)
    day = day_in(ZONE, 2)
    start = at(day, "10:00", ZONE)
    with DAVClient(
        url=caldav_server.url,
        username=caldav_server.username,
        password=caldav_server.password,
    ) as dav:
        principal = dav.principal()  # type: ignore[no-untyped-call]
        calendars = principal.calendars()
        calendar = calendars[0] if calendars else principal.make_calendar(name="Work")
        stamp = "%Y%m%dT%H%M%SZ"
        calendar.save_event(
            EVENT.format(
                start=start.strftime(stamp), end=(start + dt.timedelta(minutes=30)).strftime(stamp)
            )
        )
    admin = create_user(db, role=Role.admin)
    headers = login(client, admin)
    answer = client.post(
        f"/api/v1/experts/{expert.id}/calendars",
        json={
            "kind": "caldav",
            "address": caldav_server.url,
            "username": caldav_server.username,
            "password": "wrong",
            "label": "Radicale",
        },
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    assert caldav_server.url not in answer.text and "wrong" not in answer.text
    connection = db.get(CalendarConnection, answer.json()["id"])
    assert connection is not None
    outcome = read_now(db, connection)
    assert outcome.error == "The CalDAV server refused the user name or app password."
    client.delete(f"/api/v1/experts/{expert.id}/calendars/{connection.id}", headers=headers)
    missing = client.post(
        f"/api/v1/experts/{expert.id}/calendars",
        json={"kind": "caldav", "address": caldav_server.url},
        headers=headers,
    )
    assert missing.status_code == 422
    assert {f["field"] for f in missing.json()["error"]["fields"]} == {"username", "password"}

    answer = client.post(
        f"/api/v1/experts/{expert.id}/calendars",
        json={
            "kind": "caldav",
            "address": caldav_server.url,
            "username": caldav_server.username,
            "password": caldav_server.password,
            "label": "Radicale",
        },
        headers=headers,
    )
    connection = db.get(CalendarConnection, answer.json()["id"])
    assert connection is not None
    read_now(db, connection)
    assert connection.last_error is None and connection.busy_count == 3  # the daily series
    (found,) = explaining.explain_time(db, [expert.id], start)
    assert [(r.rule, found.calendars[r.source]) for r in found.explanation.reasons] == [
        (Rule.CALENDAR_BUSY, "Radicale")
    ]
    listed = client.get(f"/api/v1/experts/{expert.id}/calendars", headers=headers).json()
    assert listed[0]["busy_count"] == 3 and listed[0]["last_success_at"]
    why = client.get(
        f"/api/v1/experts/{expert.id}/slot-explanation",
        params={"at": start.isoformat()},
        headers=headers,
    ).json()
    assert why["experts"][0]["reasons"][0]["calendar"] == "Radicale"


def test_the_feed_is_private_rotated_revoked_and_names_only_accepted_cases(
    db: Session, client: TestClient
) -> None:
    expert = expert_with_hours(db, zone=ZONE)
    other = expert_with_hours(db, zone=ZONE)
    offered, accepted = make_request(db), make_request(db)
    assignment(db, expert, offered)
    assignment(db, expert, accepted, status=AssignmentStatus.accepted)
    accepted.pii_enc = None  # no personal data stored on a bare row: the name needs it
    booked_consultation(db, offered, expert, hours=20)
    booked_consultation(db, accepted, expert, hours=40)
    headers = login(client, expert)
    assert (
        client.get(f"/api/v1/experts/{other.id}/calendar-feed", headers=headers).status_code == 404
    )
    made = client.post(f"/api/v1/experts/{expert.id}/calendar-feed/rotate", headers=headers).json()
    url = made["url"]
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    row = db.get(ConsultationFeed, expert.id)
    assert row is not None and token not in row.token_hash and row.token_hash == feed._hash(token)
    body = client.get(f"/calendar-feeds/{token}.ics")
    assert body.status_code == 200 and body.headers["content-type"].startswith("text/calendar")
    text = body.text.replace("\r\n ", "")
    assert offered.reference in text and accepted.reference in text
    again = client.get(
        f"/calendar-feeds/{token}.ics", headers={"If-None-Match": body.headers["etag"]}
    )
    assert again.status_code == 304
    assert (
        client.get(f"/api/v1/experts/{expert.id}/calendar-feed", headers=headers).json()["url"]
        == url
    )
    client.post(f"/api/v1/experts/{expert.id}/calendar-feed/rotate", headers=headers)
    assert client.get(f"/calendar-feeds/{token}.ics").status_code == 404
    client.delete(f"/api/v1/experts/{expert.id}/calendar-feed", headers=headers)
    state = client.get(f"/api/v1/experts/{expert.id}/calendar-feed", headers=headers).json()
    assert state == {"active": False, "url": None, "created_at": None}


def test_the_feed_names_the_requester_only_once_the_expert_accepted(db: Session) -> None:
    from tests.factories import submit

    expert = expert_with_hours(db, zone=ZONE)
    req = submit(db, process=False, full_name="Aigul Testova")
    booked_consultation(db, req, expert, hours=20)
    assert b"Aigul" not in feed.build(db, expert.id).body
    assignment(db, expert, req, status=AssignmentStatus.accepted)
    assert b"Aigul Testova" in feed.build(db, expert.id).body.replace(b"\r\n ", b"")


def _web() -> TestClient:
    from app.main import create_app

    return TestClient(create_app(), base_url="https://testserver", raise_server_exceptions=False)


def test_pages_connect_show_state_and_explain(db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    expert = expert_with_hours(db, zone=ZONE)
    web = signed_in(_web(), admin)
    page = f"/admin/experts/{expert.id}"
    refused = web.post(
        f"{page}/calendars",
        data={**csrf(web, page), "calendar_kind": "ics", "calendar_address": "ftp://x"},
    )
    assert refused.status_code == 422 and 'id="calendar_address-error"' in refused.text
    done = web.post(
        f"{page}/calendars",
        data={
            **csrf(web, page),
            "calendar_kind": "ics",
            "calendar_address": "webcal://calendar.example.org/secret-abcd1234.ics",
            "calendar_label": "Work",
        },
        follow_redirects=True,
    )
    assert "Work" in done.text and "calendar.example.org …1234" in done.text
    assert "secret-abcd" not in done.text
    day = day_in(ZONE, 2)
    when = at(day, "13:00", ZONE).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")
    why = web.get("/staff/slot-explanation", params={"expert": str(expert.id), "at": when})
    assert why.status_code == 200 and 'data-rule="outside_hours"' in why.text
    expert_web = signed_in(_web(), expert)
    own = expert_web.get("/expert/calendars")
    assert own.status_code == 200 and "Work" in own.text
    assert expert_web.get("/staff/slot-explanation").status_code == 403
    assert refresh.due(db)  # connected calendars are due at once

    # The case page carries the same panel for its request.
    req = make_request(db)
    case = web.get(f"/staff/cases/{req.reference}")
    assert case.status_code == 200 and 'id="explainer-form"' in case.text
    assert f'name="reference" value="{req.reference}"' in case.text
    asked = web.get("/staff/slot-explanation", params={"reference": req.reference, "at": when})
    assert asked.status_code == 200 and 'id="explainer-answer"' in asked.text
