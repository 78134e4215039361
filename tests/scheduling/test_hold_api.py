"""Holding a time through the API, as the booking pages do: hold, read, confirm (201 with the
consultation), a second requester refused meanwhile (409), an expired hold refused with
``hold_expired`` and ``still_free``, release (204, then 404)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import Clock
from tests.factories import at, bearer, day_in, expert_with_hours, iso, submit

ZONE = "Europe/London"


def _hold(client: TestClient, sub: dict[str, Any], start: dt.datetime) -> Any:
    return client.post(
        f"/api/v1/requests/{sub['reference']}/consultation/hold",
        json={"start": iso(start), "timezone": ZONE},
        headers=bearer(sub["access_token"]),
    )


def _url(sub: dict[str, Any], tail: str = "") -> str:
    return f"/api/v1/requests/{sub['reference']}/consultation/hold{tail}"


def test_hold_read_confirm_and_a_second_requester_refused(client: TestClient, db: Session) -> None:
    expert_with_hours(db, zone=ZONE, name="Dr Api", min_notice_minutes=0)
    mine, theirs = submit(client, timezone=ZONE), submit(client, timezone=ZONE)
    start = at(day_in(ZONE, 2), "10:00", ZONE)
    held = _hold(client, mine, start)
    assert held.status_code == 201, held.text
    body = held.json()
    assert body["expert"] == {"public_name": "Dr Api"} and body["minutes"] == 60
    assert dt.datetime.fromisoformat(body["start_utc"]) == start
    read = client.get(_url(mine), headers=bearer(mine["access_token"]))
    assert read.status_code == 200 and read.json()["id"] == body["id"]
    refused = _hold(client, theirs, start)
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["reason"] == "conflict"
    done = client.post(
        _url(mine, "/confirm"), json={"hold_id": body["id"]}, headers=bearer(mine["access_token"])
    )
    assert done.status_code == 201, done.text
    assert done.json()["status"] == "booked"
    assert client.get(_url(mine), headers=bearer(mine["access_token"])).status_code == 404


def test_an_expired_hold_is_refused_and_release_lets_a_hold_go(
    client: TestClient, db: Session, clock: Clock
) -> None:
    expert_with_hours(db, zone=ZONE, min_notice_minutes=0)
    sub = submit(client, timezone=ZONE)
    start = at(day_in(ZONE, 2), "10:00", ZONE)
    body = _hold(client, sub, start).json()
    clock.at(dt.datetime.fromisoformat(body["expires_at"]) + dt.timedelta(seconds=1))
    late = client.post(
        _url(sub, "/confirm"), json={"hold_id": body["id"]}, headers=bearer(sub["access_token"])
    )
    assert late.status_code == 409
    error = late.json()["error"]
    assert error["code"] == "hold_expired" and error["details"]["still_free"] is True
    assert "was not confirmed, so it was released" in error["message"]
    assert _hold(client, sub, start).status_code == 201
    gone = client.delete(_url(sub), headers=bearer(sub["access_token"]))
    assert gone.status_code == 204
    assert client.delete(_url(sub), headers=bearer(sub["access_token"])).status_code == 404
