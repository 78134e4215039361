"""GET/PUT /api/v1/experts/{id}/availability: who may, what is stored, what is refused, and that
the requester's slots follow what was stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Role
from tests.factories import (
    at,
    bearer,
    create_expert,
    create_user,
    day_in,
    field_problems,
    login,
    starts,
    submit,
    utc_text,
)

LONDON = "Europe/London"


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "timezone": "Asia/Bishkek",
        "weekly": [
            {"weekday": 0, "start": "09:00", "end": "12:00"},
            {"weekday": 0, "start": "14:00", "end": "18:00"},
            {"weekday": 4, "start": "22:00", "end": "02:00"},
        ],
        "overrides": [
            {"date": "2026-12-24", "ranges": []},
            {"date": "2026-12-27", "ranges": [{"start": "10:00", "end": "11:30"}]},
        ],
        "slot_minutes": 60,
        "interval_minutes": 30,
        "buffer_before_minutes": 10,
        "buffer_after_minutes": 15,
        "min_notice_minutes": 240,
        "horizon_days": 21,
        "max_per_day": 4,
    }
    body.update(overrides)
    return body


def test_an_expert_reads_defaults_then_stores_and_reads_their_own(
    client: TestClient, db: Session
) -> None:
    expert = create_expert(db, countries=["KG"])
    headers = login(client, expert)
    url = f"/api/v1/experts/{expert.id}/availability"
    first = client.get(url, headers=headers)
    assert first.status_code == 200
    assert first.json() | {"expert_id": None} == {
        "expert_id": None,
        "configured": False,
        "timezone": "Europe/London",  # the expert's own zone
        "weekly": [],
        "overrides": [],
        "slot_minutes": 45,
        "interval_minutes": None,
        "buffer_before_minutes": 0,
        "buffer_after_minutes": 0,
        "min_notice_minutes": 120,
        "horizon_days": 30,
        "max_per_day": None,
    }
    resp = client.put(url, json=_body(), headers=headers)
    assert resp.status_code == 200, resp.text
    stored = client.get(url, headers=headers).json()
    assert stored["configured"] is True
    for key, value in _body().items():
        assert stored[key] == value, key
    # PUT replaces: an override left out is gone, the zone defaults to the expert's.
    resp = client.put(url, json=_body(overrides=[], timezone=None), headers=headers)
    assert resp.json()["overrides"] == [] and resp.json()["timezone"] == "Europe/London"


def test_who_may_read_and_change_availability(client: TestClient, db: Session) -> None:
    expert = create_expert(db, countries=["KG"])
    other = create_expert(db, countries=["KZ"])
    staff = create_user(db, role=Role.staff)
    admin = create_user(db, role=Role.admin)
    url = f"/api/v1/experts/{expert.id}/availability"
    assert client.get(url).status_code == 401
    as_other = login(client, other)
    assert client.get(url, headers=as_other).status_code == 404
    assert client.put(url, json=_body(), headers=as_other).status_code == 404
    as_staff = login(client, staff)
    assert client.get(url, headers=as_staff).status_code == 200
    assert client.put(url, json=_body(), headers=as_staff).status_code == 403
    as_admin = login(client, admin)
    assert client.put(url, json=_body(), headers=as_admin).status_code == 200
    missing = "/api/v1/experts/00000000-0000-0000-0000-000000000000/availability"
    assert client.get(missing, headers=as_admin).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"weekly": [{"weekday": 7, "start": "09:00", "end": "10:00"}]}, "weekly.0.weekday"),
        ({"weekly": [{"weekday": 1, "start": "25:00", "end": "10:00"}]}, "weekly.0.start"),
        ({"weekly": [{"weekday": 1, "start": "09:00", "end": "9am"}]}, "weekly.0.end"),
        ({"slot_minutes": 0}, "slot_minutes"),
        ({"interval_minutes": 1}, "interval_minutes"),
        ({"buffer_after_minutes": -5}, "buffer_after_minutes"),
        ({"min_notice_minutes": -1}, "min_notice_minutes"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"max_per_day": -1}, "max_per_day"),
        ({"timezone": "Nowhere/City"}, "timezone"),
        (
            {"overrides": [{"date": "2026-12-24", "ranges": []}] * 2},
            "overrides",
        ),
        ({"overrides": [{"date": "2026-02-30", "ranges": []}]}, "overrides.0.date"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_availability_is_422_naming_the_field(
    client: TestClient, db: Session, change: dict[str, Any], field: str
) -> None:
    admin = create_user(db, role=Role.admin)
    expert = create_expert(db, countries=["KG"])
    resp = client.put(
        f"/api/v1/experts/{expert.id}/availability",
        json=_body(**change),
        headers=login(client, admin),
    )
    assert resp.status_code == 422, resp.text
    assert field in field_problems(resp), field_problems(resp)


def test_the_requesters_slots_follow_the_stored_availability(
    client: TestClient, db: Session
) -> None:
    expert = create_expert(db, countries=["KG"], name="Dr Hours")
    from app.models import ExpertProfile

    p = db.get(ExpertProfile, expert.id)
    assert p is not None
    p.personal_meeting_link = "https://meet.example.org/hours"
    db.flush()
    sub = submit(client, timezone=LONDON)
    day = day_in(LONDON, 3)
    query = {"from": day.isoformat(), "to": day.isoformat(), "timezone": LONDON}
    slots_url = f"/api/v1/requests/{sub['reference']}/slots"
    # No hours stored yet: nothing to offer.
    empty = client.get(slots_url, params=query, headers=bearer(sub["access_token"])).json()
    assert starts(empty) == []
    every_day = [{"weekday": d, "start": "15:00", "end": "16:30"} for d in range(7)]
    resp = client.put(
        f"/api/v1/experts/{expert.id}/availability",
        json={"weekly": every_day, "slot_minutes": 45, "timezone": LONDON},
        headers=login(client, expert),
    )
    assert resp.status_code == 200
    body = client.get(slots_url, params=query, headers=bearer(sub["access_token"])).json()
    assert starts(body) == [utc_text(at(day, t, LONDON)) for t in ("15:00", "15:45")]
    # A day off on that date, stored as an override, takes them away.
    resp = client.put(
        f"/api/v1/experts/{expert.id}/availability",
        json={
            "weekly": every_day,
            "slot_minutes": 45,
            "timezone": LONDON,
            "overrides": [{"date": day.isoformat(), "ranges": []}],
        },
        headers=login(client, expert),
    )
    assert resp.status_code == 200
    body = client.get(slots_url, params=query, headers=bearer(sub["access_token"])).json()
    assert starts(body) == []
