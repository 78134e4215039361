"""The life of an offer: accept and decline (API and signed e-mail link), no answer in time,
staff reassignment, release when the request ends, and what the expert may see when."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.flows import request as flows
from app.models import (
    Assignment,
    AssignmentStatus,
    RequestHistory,
    RequestStatus,
    Role,
    RoutingDecision,
    RoutingRule,
)
from app.routing import assignments, links
from tests.conftest import Clock
from tests.factories import (
    MARKER,
    add_absence,
    create_expert,
    create_user,
    drain,
    login,
    make_request,
    profile,
    submit,
)
from tests.mail_reader import messages, text_of

EE = "eastern_europe_post_soviet"


def _live(db: Session, request_id: object) -> Assignment | None:
    return db.scalar(
        select(Assignment).where(
            Assignment.request_id == request_id,
            Assignment.status.in_([AssignmentStatus.offered, AssignmentStatus.accepted]),
        )
    )


def _history(db: Session, request_id: object) -> list[str]:
    return list(
        db.scalars(
            select(RequestHistory.action)
            .where(RequestHistory.request_id == request_id)
            .order_by(RequestHistory.id)
        ).all()
    )


def _two_experts(db: Session) -> tuple[object, object]:
    first = create_expert(db, countries=["KG"], languages=["ru"])
    second = create_expert(db, countries=["KG"], languages=["en"])
    return first, second


# API -----------------------------------------------------------------------------------------


def test_accept_through_the_api_then_details_are_visible(db: Session, client: object) -> None:
    expert, _ = _two_experts(db)
    req = submit(db)
    headers = login(client, expert)  # type: ignore[arg-type]
    c = client  # type: ignore[assignment]
    # Before accepting: country, stage, what was asked, deadline; no contact, no summary.
    before = c.get(f"/api/v1/expert/requests/{req.reference}", headers=headers)
    assert before.status_code == 200, before.text
    body = before.json()
    assert body["country_of_origin"] == "KG" and body["case_stage"] == "refused_appeal"
    assert body["wants"] == ["consultation", "expert_cv"] and body["deadline"]
    assert body["contact"] is None and body["case_summary"] is None
    assert body["topics"] is None and body["language"] is None
    assert MARKER not in before.text
    listed = c.get("/api/v1/expert/assignments", headers=headers).json()
    assert [a["request_reference"] for a in listed] == [req.reference]
    resp = c.post(f"/api/v1/expert/assignments/{listed[0]['id']}/accept", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "accepted"
    after = c.get(f"/api/v1/expert/requests/{req.reference}", headers=headers).json()
    assert MARKER in after["contact"]["full_name"] and MARKER in after["case_summary"]
    assert after["contact"]["phone"] == "+996555123456"
    assert after["topics"] == ["political_repression"] and after["language"] == "ru"
    assert "assignment_accepted" in _history(db, req.id)
    # Answering twice is a conflict.
    again = c.post(f"/api/v1/expert/assignments/{listed[0]['id']}/accept", headers=headers)
    assert again.status_code == 409


def test_decline_through_the_api_goes_to_the_next_expert(db: Session, client: object) -> None:
    first, second = _two_experts(db)
    req = submit(db)
    a = _live(db, req.id)
    assert a is not None and a.expert_id == first.id  # type: ignore[attr-defined]
    c = client  # type: ignore[assignment]
    resp = c.post(
        f"/api/v1/expert/assignments/{a.id}/decline",
        json={"reason": "conflict_of_interest"},
        headers=login(c, first),  # type: ignore[arg-type]
    )
    assert resp.status_code == 200, resp.text
    nxt = _live(db, req.id)
    assert nxt is not None and nxt.expert_id == second.id  # type: ignore[attr-defined]
    db.refresh(req)
    assert req.assigned_expert_id == second.id  # type: ignore[attr-defined]
    assert profile(db, first).open_assignments == 0  # type: ignore[arg-type]
    assert profile(db, second).open_assignments == 1  # type: ignore[arg-type]
    assert _history(db, req.id)[-3:] == [
        "assignment_offered",
        "assignment_declined",
        "assignment_offered",
    ]
    # The first expert no longer sees it.
    gone = c.get(f"/api/v1/expert/requests/{req.reference}", headers=login(c, first))  # type: ignore[arg-type]
    assert gone.status_code == 404
    decisions = db.scalars(
        select(RoutingDecision)
        .where(RoutingDecision.request_id == req.id)
        .order_by(RoutingDecision.id)
    ).all()
    assert [d.trigger for d in decisions] == ["submitted", "declined"]
    reasons = {e["expert_id"]: e["reason"] for e in decisions[1].candidates}
    assert reasons[str(first.id)] == "declined_before"  # type: ignore[attr-defined]


def test_an_expert_not_assigned_gets_404(db: Session, client: object) -> None:
    assigned, _ = _two_experts(db)
    stranger = create_expert(db, countries=["SY"])
    req = submit(db)
    c = client  # type: ignore[assignment]
    resp = c.get(f"/api/v1/expert/requests/{req.reference}", headers=login(c, stranger))  # type: ignore[arg-type]
    assert resp.status_code == 404
    a = _live(db, req.id)
    assert a is not None
    resp = c.post(f"/api/v1/expert/assignments/{a.id}/accept", headers=login(c, stranger))  # type: ignore[arg-type]
    assert resp.status_code == 404
    listed = c.get("/api/v1/expert/assignments", headers=login(c, stranger)).json()  # type: ignore[arg-type]
    assert listed == []
    # Nor does a request that does not exist answer differently.
    assert c.get("/api/v1/expert/requests/ZZZZZZZZ", headers=login(c, stranger)).status_code == 404  # type: ignore[arg-type]
    assert assigned is not None


def test_notifications_are_listed_and_can_be_marked_read(db: Session, client: object) -> None:
    expert, _ = _two_experts(db)
    req = submit(db)
    c = client  # type: ignore[assignment]
    headers = login(c, expert)  # type: ignore[arg-type]
    notes = c.get("/api/v1/expert/notifications", headers=headers).json()
    assert [(n["kind"], n["request_reference"]) for n in notes] == [
        ("assignment_offered", req.reference)
    ]
    assert (
        c.post(f"/api/v1/expert/notifications/{notes[0]['id']}/read", headers=headers).status_code
        == 204
    )
    assert c.get("/api/v1/expert/notifications?unread=true", headers=headers).json() == []


# The signed link -----------------------------------------------------------------------------


def _link_from_mail(mail_dir: Path, email: str) -> str:
    for msg in messages(mail_dir, to=email):
        text = text_of(msg) if msg.get_body(("plain",)) is not None else ""
        if "/experts/offers/" in text:
            match = re.search(r"/experts/offers/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", text)
            assert match
            return match.group(1)
    raise AssertionError("no offer mail")


def test_accept_from_the_email_link_needs_a_post(
    db: Session, client: object, mail_dir: Path
) -> None:
    expert, _ = _two_experts(db)
    req = submit(db)
    drain(db)
    token = _link_from_mail(mail_dir, expert.email)  # type: ignore[attr-defined]
    c = client  # type: ignore[assignment]
    page = c.get(f"/experts/offers/{token}")
    assert page.status_code == 200
    assert req.reference in page.text and 'method="post"' in page.text
    assert MARKER not in page.text
    assert page.headers["x-frame-options"] == "DENY"
    # Following the link (what a mail scanner does) changed nothing.
    a = _live(db, req.id)
    assert a is not None and a.status == AssignmentStatus.offered
    done = c.post(f"/experts/offers/{token}", data={"action": "accept"})
    assert done.status_code == 200 and "You accepted" in done.text
    db.refresh(a)
    assert a.status == AssignmentStatus.accepted
    rows = db.scalars(
        select(RequestHistory).where(
            RequestHistory.request_id == req.id, RequestHistory.action == "assignment_accepted"
        )
    ).all()
    assert rows[0].details["via"] == "email_link"
    assert rows[0].actor == f"user:{expert.id}"  # type: ignore[attr-defined]
    # The link cannot act twice.
    assert c.post(f"/experts/offers/{token}", data={"action": "decline"}).status_code == 409


def test_decline_from_the_email_link(db: Session, client: object, mail_dir: Path) -> None:
    first, second = _two_experts(db)
    req = submit(db)
    drain(db)
    token = _link_from_mail(mail_dir, first.email)  # type: ignore[attr-defined]
    resp = client.post(f"/experts/offers/{token}", data={"action": "decline"})  # type: ignore[attr-defined]
    assert resp.status_code == 200 and "declined" in resp.text
    a = _live(db, req.id)
    assert a is not None and a.expert_id == second.id  # type: ignore[attr-defined]


def test_forged_and_expired_links_are_refused(db: Session, client: object, clock: Clock) -> None:
    expert, _ = _two_experts(db)
    req = submit(db)
    a = _live(db, req.id)
    assert a is not None
    token = links.sign(a.id, a.respond_by)
    payload, sig = token.split(".")
    other = links.sign(a.id + 1, a.respond_by).split(".")[1]
    c = client  # type: ignore[assignment]
    for bad in (f"{payload}.{other}", f"{payload}x.{sig}", "nonsense", f"{payload}.{sig[:-2]}AA"):
        assert c.get(f"/experts/offers/{bad}").status_code == 400
        assert c.post(f"/experts/offers/{bad}", data={"action": "accept"}).status_code == 400
    # A link signed with a longer expiry by someone without the key does not verify either.
    import base64

    forged_payload = (
        base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(payload + "==").replace(
                str(int(a.respond_by.timestamp())).encode(), b"9999999999"
            )
        )
        .decode()
        .rstrip("=")
    )
    assert c.get(f"/experts/offers/{forged_payload}.{sig}").status_code == 400
    clock.advance(minutes=16)
    expired = c.post(f"/experts/offers/{token}", data={"action": "accept"})
    assert expired.status_code == 400 and "expired" in expired.text
    db.refresh(a)
    assert a.status == AssignmentStatus.offered
    assert expert is not None


# No answer in time ---------------------------------------------------------------------------


def test_no_answer_in_time_reroutes_to_the_next_candidate(db: Session, clock: Clock) -> None:
    first, second = _two_experts(db)
    req = submit(db)
    assert assignments.expire_offers(db) == 0
    clock.advance(minutes=14)
    assert assignments.expire_offers(db) == 0
    clock.advance(minutes=2)
    assert assignments.expire_offers(db) == 1
    old = db.scalar(
        select(Assignment).where(
            Assignment.request_id == req.id,
            Assignment.expert_id == first.id,  # type: ignore[attr-defined]
        )
    )
    assert old is not None and old.status == AssignmentStatus.expired and old.reason == "no_answer"
    nxt = _live(db, req.id)
    assert nxt is not None and nxt.expert_id == second.id  # type: ignore[attr-defined]
    assert "assignment_expired" in _history(db, req.id)
    # The second does not answer either: nobody is left, staff are alerted.
    create_user(db, role=Role.staff)
    clock.advance(minutes=16)
    assert assignments.expire_offers(db) == 1
    assert _live(db, req.id) is None
    last = db.scalars(
        select(RoutingDecision)
        .where(RoutingDecision.request_id == req.id)
        .order_by(RoutingDecision.id.desc())
    ).first()
    assert last is not None and last.rule == RoutingRule.none
    assert profile(db, first).open_assignments == 0  # type: ignore[arg-type]
    assert profile(db, second).open_assignments == 0  # type: ignore[arg-type]


def test_accepting_after_the_time_ran_out_is_refused(
    db: Session, client: object, clock: Clock
) -> None:
    expert, _ = _two_experts(db)
    req = submit(db)
    a = _live(db, req.id)
    assert a is not None
    clock.advance(minutes=16)
    resp = client.post(  # type: ignore[attr-defined]
        f"/api/v1/expert/assignments/{a.id}/accept",
        headers=login(client, expert),  # type: ignore[arg-type]
    )
    assert resp.status_code == 409


def test_the_worker_task_expires_offers(db: Session, clock: Clock) -> None:
    from workers.experts import expire_offers

    _two_experts(db)
    req = submit(db)
    clock.advance(minutes=16)
    assert expire_offers.run() == 1
    assert _live(db, req.id) is not None


# Staff ---------------------------------------------------------------------------------------


def test_staff_reassign_to_a_named_expert_with_history(
    db: Session, client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = create_user(db, role=Role.staff)
    first, second = _two_experts(db)
    third = create_expert(db, regions=[EE])
    req = submit(db)
    a = _live(db, req.id)
    assert a is not None
    c = client  # type: ignore[assignment]
    c.post(f"/api/v1/expert/assignments/{a.id}/accept", headers=login(c, first))  # type: ignore[arg-type]
    calls: list[tuple[object, object]] = []

    def moved(_s: Session, _r: object, old: object, new: object) -> None:
        calls.append((old, new))

    # The reassignment flow tells scheduling which expert the request left and for whom.
    monkeypatch.setattr(flows.scheduling, "on_request_reassigned", moved)
    resp = c.post(
        f"/api/v1/requests/{req.reference}/reassign",
        json={"expert_id": str(third.id), "reason": "workload"},  # type: ignore[attr-defined]
        headers=login(c, staff),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["assigned_expert_id"] == str(third.id)  # type: ignore[attr-defined]
    assert [x["status"] for x in body["assignments"]] == ["reassigned", "offered"]
    assert body["decisions"][-1]["rule"] == "staff"
    assert calls == [(first.id, third.id)]  # type: ignore[attr-defined]
    hist = db.scalars(
        select(RequestHistory)
        .where(RequestHistory.request_id == req.id)
        .order_by(RequestHistory.id)
    ).all()
    actions = [h.action for h in hist]
    assert actions[-2:] == ["assignment_reassigned", "assignment_offered"]
    assert hist[-1].actor == f"user:{staff.id}"
    assert profile(db, first).open_assignments == 0  # type: ignore[arg-type]
    assert second is not None


def test_staff_reassign_to_next_candidate_and_refusals(db: Session, client: object) -> None:
    staff = create_user(db, role=Role.staff)
    first, second = _two_experts(db)
    away = create_expert(db, countries=["KG"])
    add_absence(db, away)
    full = create_expert(db, countries=["KG"], max_open=0)
    req = submit(db)
    c = client  # type: ignore[assignment]
    h = login(c, staff)
    for target in (away, full):
        resp = c.post(
            f"/api/v1/requests/{req.reference}/reassign",
            json={"expert_id": str(target.id)},  # type: ignore[attr-defined]
            headers=h,
        )
        assert resp.status_code == 409, resp.text
    resp = c.post(f"/api/v1/requests/{req.reference}/reassign", json={}, headers=h)
    assert resp.status_code == 200
    assert resp.json()["assigned_expert_id"] == str(second.id)  # type: ignore[attr-defined]
    assert first is not None
    # Experts cannot reassign.
    resp = c.post(
        f"/api/v1/requests/{req.reference}/reassign",
        json={},
        headers=login(c, second),  # type: ignore[arg-type]
    )
    assert resp.status_code == 403


def test_staff_route_a_request_waiting_in_triage(db: Session, client: object) -> None:
    staff = create_user(db, role=Role.staff)
    req = make_request(db)
    assignments.route(db, req, trigger="submitted")
    assert req.assigned_expert_id is None
    expert = create_expert(db, countries=["KG"])
    resp = client.post(  # type: ignore[attr-defined]
        f"/api/v1/requests/{req.reference}/route", headers=login(client, staff)
    )
    assert resp.status_code == 200
    assert resp.json()["assigned_expert_id"] == str(expert.id)


def test_an_ended_request_frees_the_expert(db: Session) -> None:
    expert = create_expert(db, countries=["KG"])
    req = submit(db)
    assert profile(db, expert).open_assignments == 1
    flows.change_status(db, req, RequestStatus.spam, actor="system")
    assert profile(db, expert).open_assignments == 0
    assert _live(db, req.id) is None
    assert "assignment_released" in _history(db, req.id)


def test_deactivating_an_expert_passes_their_offers_on(db: Session, client: object) -> None:
    admin = create_user(db, role=Role.admin)
    first, second = _two_experts(db)
    req = submit(db)
    resp = client.post(  # type: ignore[attr-defined]
        f"/api/v1/admin/experts/{first.id}/deactivate",  # type: ignore[attr-defined]
        headers=login(client, admin),
    )
    assert resp.status_code == 200 and resp.json()["is_active"] is False
    a = _live(db, req.id)
    assert a is not None and a.expert_id == second.id  # type: ignore[attr-defined]


def test_offer_mail_is_skipped_when_the_offer_was_answered_first(
    db: Session, mail_dir: Path
) -> None:
    expert, _ = _two_experts(db)
    req = submit(db)
    a = _live(db, req.id)
    assert a is not None
    flows.answer_offer(db, a.id, expert, accept=True)  # type: ignore[arg-type]
    drain(db)
    assert not any("/experts/offers/" in p.read_text() for p in mail_dir.glob("*.eml"))
    assert now() is not None
