"""The requester's own request through the link token; withdrawal; status table; SLA state;
history rows."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.flows import request as flows
from app.intake.sla import SlaState, sla_state
from app.intake.status import IllegalTransition, allowed_moves, check_move
from app.models import ExpertProfile, IntakeRequest, RequestHistory, RequestStatus, Role
from tests.factories import bearer, create_user, login, submit


def _req(db: Session, reference: str) -> IntakeRequest:
    req = db.scalar(select(IntakeRequest).where(IntakeRequest.reference == reference))
    assert req is not None
    return req


def test_the_link_token_opens_the_request_and_shows_only_what_was_asked(
    client: TestClient,
) -> None:
    body = submit(
        client,
        full_name="Marker Personname",
        case_summary="secret summary text",
        topics=["political_repression", "freedom_of_speech"],
        deadline=(now().date() + dt.timedelta(days=30)).isoformat(),
    )
    resp = client.get(f"/api/v1/requests/{body['reference']}", headers=bearer(body["access_token"]))
    assert resp.status_code == 200
    view = resp.json()
    assert set(view) == {
        "reference",
        "status",
        "received_at",
        "wants",
        "topics",
        "case_stage",
        "deadline",
        "sla",
        "expert",
        "consultation",
    }
    assert view["status"] == "new" and view["wants"] == ["consultation", "sample_report"]
    assert view["topics"] == ["political_repression", "freedom_of_speech"]
    assert view["sla"]["state"] == "awaiting"
    assert view["expert"] is None and view["consultation"] is None
    assert "Marker" not in resp.text and "secret summary" not in resp.text
    assert "@example.org" not in resp.text


def test_the_reference_may_be_typed_loosely(client: TestClient) -> None:
    body = submit(client)
    ref = body["reference"]
    loose = f"{ref[:4].lower()}-{ref[4:].lower()}"
    resp = client.get(f"/api/v1/requests/{loose}", headers=bearer(body["access_token"]))
    assert resp.status_code == 200 and resp.json()["reference"] == ref


def test_wrong_missing_or_other_tokens_are_all_the_same_404(
    client: TestClient, db: Session
) -> None:
    mine = submit(client)
    theirs = submit(client)
    url = f"/api/v1/requests/{mine['reference']}"
    staff = login(client, create_user(db, role=Role.staff))
    answers = [
        client.get(url),
        client.get(url, headers=bearer("rl_wrong-token-value")),
        client.get(url, headers=bearer(theirs["access_token"])),
        client.get(url, headers=bearer(mine["access_token"][3:])),  # without the prefix
        client.get(url, headers=staff),
        client.get("/api/v1/requests/ZZZZZZZZ", headers=bearer(mine["access_token"])),
        client.post(f"{url}/withdraw", headers=bearer(theirs["access_token"])),
    ]
    assert [r.status_code for r in answers] == [404] * len(answers)
    assert len({r.json()["error"]["message"] for r in answers}) == 1
    assert {r.json()["error"]["code"] for r in answers} == {"request_not_found"}
    # The other request's token still opens its own request.
    own = client.get(
        f"/api/v1/requests/{theirs['reference']}", headers=bearer(theirs["access_token"])
    )
    assert own.status_code == 200


def test_the_assigned_experts_public_name_is_shown(client: TestClient, db: Session) -> None:
    body = submit(client)
    expert = create_user(db, role=Role.expert, display_name="Dr. Public Name")
    _req(db, body["reference"]).assigned_expert_id = expert.id
    db.flush()
    view = client.get(
        f"/api/v1/requests/{body['reference']}", headers=bearer(body["access_token"])
    ).json()
    assert view["expert"] == {"public_name": "Dr. Public Name"}
    assert expert.email not in str(view)
    # With an expert profile, its public name is what requesters see.
    db.add(
        ExpertProfile(
            user_id=expert.id,
            public_name="Dr. A. Expert",
            email="expert-private@example.org",
            timezone="Europe/Berlin",
        )
    )
    db.flush()
    view = client.get(
        f"/api/v1/requests/{body['reference']}", headers=bearer(body["access_token"])
    ).json()
    assert view["expert"] == {"public_name": "Dr. A. Expert"}
    assert "expert-private" not in str(view)


def test_sla_state_moves_with_the_clock(client: TestClient, clock: object) -> None:
    body = submit(client)
    url, headers = f"/api/v1/requests/{body['reference']}", bearer(body["access_token"])
    assert client.get(url, headers=headers).json()["sla"]["state"] == "awaiting"
    clock.advance(minutes=46)  # type: ignore[attr-defined]
    assert client.get(url, headers=headers).json()["sla"]["state"] == "due_soon"
    clock.advance(minutes=15)  # type: ignore[attr-defined]
    assert client.get(url, headers=headers).json()["sla"]["state"] == "breached"


def test_sla_state_function() -> None:
    due = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    soon = dt.timedelta(minutes=15)

    def at(minutes: float, responded: float | None = None) -> SlaState:
        return sla_state(
            due_at=due,
            responded_at=due + dt.timedelta(minutes=responded) if responded is not None else None,
            ended_at=None,
            current=due + dt.timedelta(minutes=minutes),
            due_soon=soon,
        )

    assert at(-60) == SlaState.awaiting
    assert at(-15) == SlaState.awaiting
    assert at(-14.9) == SlaState.due_soon
    assert at(0) == SlaState.breached
    assert at(30, responded=-10) == SlaState.met
    assert at(-20, responded=-30) == SlaState.met
    assert at(30, responded=5) == SlaState.breached


def test_withdraw_sets_withdrawn_and_writes_history(client: TestClient, db: Session) -> None:
    body = submit(client)
    url, headers = f"/api/v1/requests/{body['reference']}", bearer(body["access_token"])
    resp = client.post(f"{url}/withdraw", headers=headers)
    assert resp.status_code == 200 and resp.json()["status"] == "withdrawn"
    req = _req(db, body["reference"])
    db.refresh(req)
    assert req.status == RequestStatus.withdrawn and req.withdrawn_at is not None
    rows = db.scalars(
        select(RequestHistory)
        .where(RequestHistory.request_id == req.id)
        .order_by(RequestHistory.id)
    ).all()
    ours = [r for r in rows if not r.action.startswith("routing")]  # routing adds its own
    assert [(r.action, r.actor) for r in ours] == [
        ("submitted", "requester"),
        ("ack_queued", "system"),
        ("status_changed", "requester"),
    ]
    assert (ours[-1].from_status, ours[-1].to_status) == ("new", "withdrawn")
    # Asking twice is fine and writes nothing more; the request is still there to see.
    assert client.post(f"{url}/withdraw", headers=headers).status_code == 200
    assert client.get(url, headers=headers).json()["status"] == "withdrawn"
    after = db.scalars(select(RequestHistory).where(RequestHistory.request_id == req.id)).all()
    assert len(after) == len(rows)


def test_a_closed_request_cannot_be_withdrawn(client: TestClient, db: Session) -> None:
    body = submit(client)
    req = _req(db, body["reference"])
    flows.change_status(db, req, RequestStatus.in_progress, actor="system")
    flows.change_status(db, req, RequestStatus.closed, actor="system")
    resp = client.post(
        f"/api/v1/requests/{body['reference']}/withdraw", headers=bearer(body["access_token"])
    )
    assert resp.status_code == 409
    err = resp.json()["error"]
    assert err["code"] == "illegal_status_change"
    assert err["details"] == {"from": "closed", "to": "withdrawn", "allowed": []}


def test_the_status_table() -> None:
    S = RequestStatus
    assert allowed_moves(S.new) == [
        S.in_progress,
        S.consultation_scheduled,
        S.declined,
        S.spam,
        S.withdrawn,
    ]
    check_move(S.in_progress, S.consultation_scheduled)  # booking from in_progress
    with pytest.raises(IllegalTransition) as info:
        check_move(S.new, S.report_ordered)
    assert info.value.status_code == 409
    assert "in_progress" in info.value.message and "withdrawn" in info.value.message
    for final in (S.closed, S.declined, S.spam, S.withdrawn):
        assert allowed_moves(final) == []
    for status in S:
        if status not in (S.closed, S.declined, S.spam, S.withdrawn):
            assert {S.declined, S.spam, S.withdrawn} <= set(allowed_moves(status))
