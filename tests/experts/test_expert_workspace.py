"""The expert's workspace: an expert lists their assignments and consultations,
accepts, replies, logs contacts, adds notes, reschedules and cancels their own consultation and
edits their availability; a request not assigned to them is 404 and in none of their lists."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.core.time import now
from tests.factories import (
    at,
    bearer,
    create_expert,
    day_in,
    expert_with_hours,
    hours,
    iso,
    login,
    submit,
)

LONDON = "Europe/London"


def test_an_expert_works_their_own_case_end_to_end_and_never_sees_another(
    db: Session, client: object, mail_dir: Path
) -> None:
    c: Any = client
    expert = expert_with_hours(db, countries=("KG",))
    other_expert = expert_with_hours(db, countries=("AM",))
    mine = submit(c, country_of_origin="KG", timezone=LONDON)
    theirs = submit(c, country_of_origin="AM", timezone=LONDON)
    h = login(c, expert)

    # Assignments: only mine, offered; accept it.
    listed = c.get("/api/v1/expert/assignments", headers=h).json()
    assert [a["request_reference"] for a in listed] == [mine["reference"]]
    assert listed[0]["status"] == "offered"
    accepted = c.post(f"/api/v1/expert/assignments/{listed[0]['id']}/accept", headers=h)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"

    # The requester books; the consultation is in my list, times in my zone.
    day = day_in(LONDON, 2)
    url = f"/api/v1/requests/{mine['reference']}/consultation"
    booked = c.post(
        url, json={"start": iso(at(day, "09:00", LONDON))}, headers=bearer(mine["access_token"])
    )
    assert booked.status_code == 201, booked.text
    consultations = c.get("/api/v1/expert/consultations", headers=h).json()
    assert [x["reference"] for x in consultations] == [mine["reference"]]
    assert consultations[0]["timezone"] == LONDON and consultations[0]["status"] == "booked"
    assert c.get("/api/v1/expert/consultations", headers=login(c, other_expert)).json() == []

    # Reply, log a contact, add a note on my case.
    case = f"/api/v1/cases/{mine['reference']}"
    reply = c.post(f"{case}/replies", json={"body": "Hello, I am your expert."}, headers=h)
    assert reply.status_code == 201, reply.text
    contact = {"channel": "whatsapp", "contacted_at": now().isoformat(), "note": "Voice call"}
    assert c.post(f"{case}/contacts", json=contact, headers=h).status_code == 201
    assert c.post(f"{case}/notes", json={"body": "Strong case"}, headers=h).status_code == 201
    view = c.get(case, headers=h).json()
    assert [n["body"] for n in view["notes"]] == ["Strong case"]
    assert {x["channel"] for x in view["contacts"]} == {"email", "whatsapp"}

    # Reschedule, then cancel my consultation.
    moved = c.patch(url, json={"start": iso(at(day, "11:00", LONDON))}, headers=h)
    assert moved.status_code == 200, moved.text
    assert dt.datetime.fromisoformat(moved.json()["start_utc"]) == at(day, "11:00", LONDON)
    assert c.delete(url, headers=h).json()["status"] == "cancelled"
    assert c.get("/api/v1/expert/consultations", headers=h).json() == []
    past = c.get("/api/v1/expert/consultations", params={"all": "true"}, headers=h).json()
    assert [x["status"] for x in past] == ["cancelled"]

    # Availability: mine yes, another expert's 404.
    body = {"weekly": hours("10:00", "13:00"), "slot_minutes": 30}
    put = c.put(f"/api/v1/experts/{expert.id}/availability", json=body, headers=h)
    assert put.status_code == 200, put.text
    other = c.put(f"/api/v1/experts/{other_expert.id}/availability", json=body, headers=h)
    assert other.status_code == 404

    # Someone else's request: 404 everywhere, never listed.
    ref = theirs["reference"]
    for method, path, payload in (
        ("GET", f"/api/v1/cases/{ref}", None),
        ("GET", f"/api/v1/expert/requests/{ref}", None),
        ("POST", f"/api/v1/cases/{ref}/replies", {"body": "x"}),
        ("POST", f"/api/v1/cases/{ref}/notes", {"body": "x"}),
        ("POST", f"/api/v1/cases/{ref}/contacts", contact),
        ("GET", f"/api/v1/requests/{ref}/consultation", None),
        ("DELETE", f"/api/v1/requests/{ref}/consultation", None),
    ):
        resp = c.request(method, path, json=payload, headers=h)
        assert resp.status_code == 404, (method, path, resp.text)
    everything = c.get("/api/v1/expert/assignments", params={"all": "true"}, headers=h).json()
    assert ref not in {a["request_reference"] for a in everything}
    notes = c.get("/api/v1/expert/notifications", headers=h).json()
    assert ref not in {n["request_reference"] for n in notes}


def test_an_expert_cannot_act_as_staff_on_their_own_case(db: Session, client: object) -> None:
    c: Any = client
    expert = create_expert(db, countries=["KG"])
    sub = submit(c, country_of_origin="KG")
    h = login(c, expert)
    offer = c.get("/api/v1/expert/assignments", headers=h).json()[0]
    # Offered, not accepted: the case is not theirs yet.
    case = f"/api/v1/cases/{sub['reference']}"
    assert c.post(f"{case}/notes", json={"body": "x"}, headers=h).status_code == 404
    c.post(f"/api/v1/expert/assignments/{offer['id']}/accept", headers=h)
    assert c.post(f"{case}/status", json={"status": "closed"}, headers=h).status_code == 403
    assert c.post(f"{case}/assign", json={}, headers=h).status_code == 403
    assert c.patch(case, json={"language": "en"}, headers=h).status_code == 403
    assert c.get("/api/v1/queue", headers=h).status_code == 403
