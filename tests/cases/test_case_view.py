"""The read-only case view: who may see it, and what it holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.service import HISTORY_KIND
from app.core.time import now
from app.flows import request as flows
from app.intake import keys, records
from app.models import Assignment, AssignmentStatus, ContactChannel, IntakeRequest, Role, User
from app.sla import service as sla
from tests.factories import MARKER, create_expert, create_user, login, submit


def _url(req: IntakeRequest) -> str:
    return f"/api/v1/cases/{req.reference}"


def _accept(db: Session, req: IntakeRequest, expert: User) -> None:
    a = db.scalar(
        select(Assignment).where(
            Assignment.request_id == req.id, Assignment.status == AssignmentStatus.offered
        )
    )
    assert a is not None and a.expert_id == expert.id
    flows.answer_offer(db, a.id, expert, accept=True)


def test_who_may_see_a_case(db: Session, client: object) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    admin = create_user(db, role=Role.admin)
    expert = create_expert(db, countries=["KG"], languages=["ru"])
    stranger = create_expert(db, countries=["AM"], languages=["ru"])
    req = submit(db, country_of_origin="KG")
    assert req.assigned_expert_id == expert.id
    assert c.get(_url(req)).status_code == 401
    # Offered but not accepted: 404, the same as someone else's case or no case at all.
    offered = c.get(_url(req), headers=login(c, expert))
    assert offered.status_code == 404
    missing = c.get("/api/v1/cases/ZZZZZZZZ", headers=login(c, expert))
    assert missing.status_code == 404 and missing.json()["error"] == offered.json()["error"]
    assert c.get(_url(req), headers=login(c, stranger)).status_code == 404
    assert c.get("/api/v1/cases/ZZZZZZZZ", headers=login(c, staff)).status_code == 404
    assert c.get(_url(req), headers=login(c, staff)).status_code == 200
    assert c.get(_url(req), headers=login(c, admin)).status_code == 200
    _accept(db, req, expert)
    resp = c.get(_url(req), headers=login(c, expert))
    assert resp.status_code == 200, resp.text
    assert resp.json()["request"]["reference"] == req.reference
    assert c.get(_url(req), headers=login(c, stranger)).status_code == 404


def test_the_case_holds_everything_staff_need(db: Session, client: object) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    expert = create_expert(db, countries=["KG"], languages=["ru"])
    req = submit(db, country_of_origin="KG")
    _accept(db, req, expert)
    sla.record_contact(
        db,
        req,
        channel=ContactChannel.phone,
        contacted_at=now(),
        note=f"Called {MARKER}",
        by_user=staff,
    )
    # A history row with an encrypted part (the case view decrypts it).
    dk = keys.data_key(req)
    assert dk is not None
    row = records.add_history(db, req, actor=f"user:{staff.id}", action="note_added")
    row.data_enc = keys.seal_json(dk, HISTORY_KIND, req.id, {"text": f"secret {MARKER}"})
    db.flush()

    resp = c.get(_url(req), headers=login(c, staff))
    assert resp.status_code == 200, resp.text
    case = resp.json()
    personal = case["request"]["personal"]
    assert MARKER in personal["full_name"] and personal["email"].endswith("@example.org")
    assert case["request"]["erased"] is False
    assert case["request"]["country_of_origin"] == "KG"
    assert case["sla"]["state"] == "met"
    assert case["country_profile"]["code"] == "KG"
    assert case["country_profile"]["region_code"] == req.region_code
    # Routing with reasons: the decision that chose the expert, its candidates.
    decision = case["latest_decision"]
    assert decision is not None and decision["chosen_expert_id"] == str(expert.id)
    assert any(cand["expert_id"] == str(expert.id) for cand in decision["candidates"])
    assert case["routing"]["assignments"][0]["status"] == "accepted"
    assert [x["channel"] for x in case["contacts"]] == ["phone"]
    assert case["contacts"][0]["note"] == f"Called {MARKER}"
    # Messages: the acknowledgement (and whatever else intake queued) by kind, ids only.
    kinds = {m["kind"] for m in case["messages_sent"]}
    assert "intake.ack" in kinds
    actions = [h["action"] for h in case["history"]]
    assert actions[0] == "submitted"
    assert "contact_recorded" in actions and actions[-1] == "note_added"
    assert case["history"][-1]["data"] == {"text": f"secret {MARKER}"}
    assert case["consultations"] == []


def test_another_requests_messages_are_not_listed(db: Session, client: object) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    one = submit(db, country_of_origin="AM")
    other = submit(db, country_of_origin="AM")
    h = login(c, staff)
    a = {m["id"] for m in c.get(_url(one), headers=h).json()["messages_sent"]}
    b = {m["id"] for m in c.get(_url(other), headers=h).json()["messages_sent"]}
    assert a and b and not (a & b)
