"""The one-hour promise: reminders at +30 and +45, escalation at +60, and only a
recorded contact with the requester stops them. Runs in-process with the controlled clock and
``drain`` (the worker's own service functions)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases import merging
from app.core.settings import get_settings
from app.core.time import now
from app.flows import request as flows
from app.intake import records
from app.intake import service as intake
from app.models import (
    Assignment,
    AssignmentStatus,
    ContactChannel,
    IntakeRequest,
    OutboxMessage,
    OutboxStatus,
    RequestContact,
    RequestHistory,
    RequestStatus,
    Role,
    User,
)
from app.sla import scheduling, service
from tests.conftest import Clock
from tests.factories import (
    MARKER,
    add_absence,
    bearer,
    create_expert,
    create_user,
    drain,
    field_problems,
    login,
    process_submissions,
    submission,
)
from tests.mail_reader import mails, take

EE = "eastern_europe_post_soviet"
REQUESTER_PHONE_DIGITS = "555123456"


def _drain_all(db: Session) -> int:
    """Deliver until nothing is due (a step's fan-out writes the per-person rows)."""
    total = 0
    for _ in range(10):
        n = drain(db)
        total += n
        if n == 0:
            return total
    raise AssertionError("the outbox never settled")


def _submit(db: Session, **overrides: Any) -> tuple[IntakeRequest, str]:
    reply = intake.submit(db, submission(**overrides))
    process_submissions(db)
    req = records.get_by_reference(db, reply["reference"])
    assert req is not None
    return req, str(reply["access_token"])


def _accept(db: Session, req: IntakeRequest, expert: User) -> None:
    a = db.scalar(
        select(Assignment).where(
            Assignment.request_id == req.id, Assignment.status == AssignmentStatus.offered
        )
    )
    assert a is not None and a.expert_id == expert.id
    flows.answer_offer(db, a.id, expert, accept=True)


def _sla_mails(mail_dir: Path) -> list[tuple[str, str, str]]:
    return [m for m in mails(mail_dir) if m[1].startswith(("Reminder:", "Breached:"))]


def _take(mail_dir: Path) -> list[tuple[str, str, str]]:
    """The SLA e-mails written since the last call (the folder is emptied)."""
    return take(mail_dir, ("Reminder:", "Breached:"))


def _assert_no_personal_data(found: list[tuple[str, str, str]]) -> None:
    for _to, subject, body in found:
        assert MARKER not in subject and MARKER not in body
        assert REQUESTER_PHONE_DIGITS not in body.replace(" ", "")
        assert "@example.org" not in body  # no requester address


def _contact(c: Any, reference: str, headers: dict[str, str], **body: Any) -> Any:
    payload = {"channel": "phone", "contacted_at": now().isoformat(), "note": "Called back"}
    payload.update(body)
    return c.post(f"/api/v1/cases/{reference}/contacts", json=payload, headers=headers)


class Team:
    def __init__(self, db: Session) -> None:
        self.admin = create_user(db, role=Role.admin)
        self.staff = create_user(db, role=Role.staff)
        self.other_staff = create_user(db, role=Role.staff)
        self.inactive_staff = create_user(db, role=Role.staff)
        self.inactive_staff.is_active = False
        self.expert = create_expert(db, countries=["KG"], languages=["ru"])
        db.flush()

    @property
    def on_duty(self) -> set[str]:
        return {self.staff.email, self.other_staff.email}


# The scenario ------------------------------------------------------------------------------


def test_reminders_at_30_and_45_a_contact_at_50_and_nothing_at_60(
    db: Session, client: object, clock: Clock, mail_dir: Path
) -> None:
    c: Any = client
    team = Team(db)
    req, token = _submit(db)  # 10:00
    _accept(db, req, team.expert)
    _drain_all(db)
    _take(mail_dir)  # the acknowledgement and the offer

    # 10:20: an internal action (the case moves to in_progress) stops nothing.
    clock.advance(minutes=20)
    flows.change_status(db, req, RequestStatus.in_progress, actor=f"user:{team.staff.id}")
    _drain_all(db)
    assert _take(mail_dir) == []
    assert req.first_responded_at is None

    # 10:30: the first reminder, to the assigned expert and every on-duty staff user.
    clock.advance(minutes=10)
    _drain_all(db)
    first = _take(mail_dir)
    assert {to for to, _, _ in first} == {team.expert.email} | team.on_duty
    assert len(first) == 3  # one each
    assert all(s.startswith("Reminder:") and req.reference in s for _, s, _ in first)
    body = first[0][2]
    assert req.reference in body and "Kyrgyzstan" in body and "consultation" in body
    _assert_no_personal_data(first)
    # Drained again: nothing twice.
    assert _drain_all(db) == 0 and _take(mail_dir) == []

    # 10:45: the second.
    clock.advance(minutes=15)
    _drain_all(db)
    second = _take(mail_dir)
    assert {to for to, _, _ in second} == {team.expert.email} | team.on_duty
    assert all("45 minutes" in s for _, s, _ in second)
    _assert_no_personal_data(second)

    # 10:50: staff log the phone call; the clock stops.
    clock.advance(minutes=5)
    resp = _contact(c, req.reference, login(c, team.staff), contacted_at=now().isoformat())
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["channel"] == "phone" and out["note"] == "Called back" and out["counts"] is True
    assert out["sla"]["state"] == "met" and out["sla"]["first_responded_at"]
    db.expire_all()
    escalation = db.scalar(
        select(OutboxMessage).where(OutboxMessage.kind == scheduling.ESCALATION_KIND)
    )
    assert escalation is not None and escalation.status == OutboxStatus.cancelled

    # 11:00 and later: nothing.
    clock.advance(minutes=10)
    _drain_all(db)
    clock.advance(minutes=30)
    _drain_all(db)
    assert _take(mail_dir) == []
    view = c.get(f"/api/v1/requests/{req.reference}", headers=bearer(token)).json()
    assert view["sla"]["state"] == "met"
    listed = c.get(f"/api/v1/cases/{req.reference}/contacts", headers=login(c, team.admin))
    assert listed.status_code == 200 and listed.json()["sla"]["state"] == "met"
    assert [x["note"] for x in listed.json()["contacts"]] == ["Called back"]


def test_without_a_contact_supervisors_get_the_escalation_at_60_and_it_shows_breached(
    db: Session, client: object, clock: Clock, mail_dir: Path
) -> None:
    c: Any = client
    team = Team(db)
    second_admin = create_user(db, role=Role.admin)
    req, token = _submit(db)
    _drain_all(db)
    _take(mail_dir)
    clock.advance(minutes=20)
    flows.change_status(db, req, RequestStatus.in_progress, actor=f"user:{team.staff.id}")
    clock.advance(minutes=25)  # 10:45: both reminders are due now, each goes once
    _drain_all(db)
    assert len(_take(mail_dir)) == 6
    clock.advance(minutes=14)  # 10:59: nothing yet
    _drain_all(db)
    assert _take(mail_dir) == []
    before = c.get(f"/api/v1/requests/{req.reference}", headers=bearer(token)).json()
    assert before["sla"]["state"] == "due_soon"

    clock.advance(minutes=1, seconds=1)  # 11:00
    _drain_all(db)
    # The escalation chain with an empty roster: no duty lead, so the supervisors
    # (every active admin) at once; the staff who had the reminders are not mailed again.
    escalated = _take(mail_dir)
    assert {to for to, _, _ in escalated} == {team.admin.email, second_admin.email}
    assert all(s.startswith("Breached:") and req.reference in s for _, s, _ in escalated)
    assert all("breached" in b for _, _, b in escalated)
    _assert_no_personal_data(escalated)
    assert _drain_all(db) == 0 and _take(mail_dir) == []
    clock.advance(minutes=get_settings().escalation_ack_minutes)
    _drain_all(db)
    assert _take(mail_dir) == []  # the last level: nothing more
    view = c.get(f"/api/v1/requests/{req.reference}", headers=bearer(token)).json()
    assert view["sla"]["state"] == "breached"
    staff_view = c.get(f"/api/v1/cases/{req.reference}/contacts", headers=login(c, team.staff))
    assert staff_view.json()["sla"]["state"] == "breached"

    # A late contact is recorded, and the promise stays breached.
    clock.advance(minutes=5)
    resp = _contact(c, req.reference, login(c, team.staff))
    assert resp.status_code == 201 and resp.json()["sla"]["state"] == "breached"


def test_an_unassigned_request_reminds_the_regions_experts(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    staff = create_user(db, role=Role.staff)
    away = create_expert(db, regions=[EE], languages=["ru"])
    add_absence(db, away, hours=48)
    elsewhere = create_expert(db, regions=["middle_east"], languages=["es"])
    req, _ = _submit(db)
    assert req.assigned_expert_id is None and req.region_code == EE
    _drain_all(db)
    _take(mail_dir)
    clock.advance(minutes=30)
    _drain_all(db)
    found = _take(mail_dir)
    assert {to for to, _, _ in found} == {away.email, staff.email}
    assert elsewhere.email not in {to for to, _, _ in found}
    _assert_no_personal_data(found)


def test_an_ended_request_gets_no_reminder(db: Session, clock: Clock, mail_dir: Path) -> None:
    create_user(db, role=Role.staff)
    req, _ = _submit(db)
    _drain_all(db)
    _take(mail_dir)
    flows.change_status(db, req, RequestStatus.spam, actor="system")
    clock.advance(minutes=61)
    _drain_all(db)
    assert _take(mail_dir) == []


def _end(db: Session, req: IntakeRequest, how: str, team: Team, into: IntakeRequest) -> None:
    if how == "withdrawn":
        flows.withdraw(db, req)
    elif how == "merged":
        merging.merge(db, req, team.staff, into.reference)
    else:
        flows.change_status(db, req, RequestStatus(how), actor=f"user:{team.staff.id}")


@pytest.mark.parametrize("how", ["withdrawn", "spam", "declined", "merged"])
def test_a_request_that_ended_before_30_gets_no_reminder_at_31_while_an_open_one_does(
    db: Session, clock: Clock, mail_dir: Path, how: str
) -> None:
    """Staff and admins are there to be mailed: the open request's reminder goes to them at
    +31, the ended one's does not (nor its escalation at +61)."""
    team = Team(db)
    ended, _ = _submit(db)
    still_open, _ = _submit(db)
    _drain_all(db)
    _take(mail_dir)
    clock.advance(minutes=5)
    _end(db, ended, how, team, still_open)
    assert ended.ended_at is not None and still_open.ended_at is None
    clock.advance(minutes=26)  # +31
    _drain_all(db)
    found = _take(mail_dir)
    assert found, "the open request's reminder went out"
    assert {to for to, _, _ in found} == {team.expert.email} | team.on_duty
    assert all(still_open.reference in s for _, s, _ in found)
    assert not [s for _, s, _ in found if ended.reference in s]
    fanned_out = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == scheduling.MAIL_KIND))
    assert {r.params["request_id"] for r in fanned_out} == {str(still_open.id)}
    clock.advance(minutes=30)  # +61: the escalation of the open one only
    _drain_all(db)
    escalated = _take(mail_dir)
    assert {to for to, _, _ in escalated} == {team.admin.email}
    assert not [s for _, s, _ in escalated if ended.reference in s]


def test_a_reminder_already_claimed_when_the_request_ends_sends_nothing(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    """The send-time check, not only the cancelled rows: the e-mail rows were fanned out at +30
    and the request was marked spam before they were delivered."""
    team = Team(db)
    req, _ = _submit(db)
    _drain_all(db)
    _take(mail_dir)
    clock.advance(minutes=30)
    drain(db)  # the +30 step fans out one ``sla.mail`` row per person, not yet sent
    pending = db.scalars(
        select(OutboxMessage).where(
            OutboxMessage.kind == scheduling.MAIL_KIND, OutboxMessage.status == OutboxStatus.pending
        )
    ).all()
    assert len(pending) == 3
    flows.change_status(db, req, RequestStatus.spam, actor=f"user:{team.staff.id}")
    clock.advance(minutes=1)
    _drain_all(db)
    assert _take(mail_dir) == []


def test_scheduling_twice_writes_nothing_new_and_rows_hold_ids_only(db: Session) -> None:
    req, _ = _submit(db)
    rows = db.scalars(
        select(OutboxMessage).where(OutboxMessage.kind.in_(scheduling.STEP_KINDS))
    ).all()
    got = sorted(
        (r.kind, scheduling.minute_of(r.dedup_key), r.due_at - req.received_at) for r in rows
    )
    assert got == [
        ("sla.escalation", 60, dt.timedelta(minutes=60)),
        ("sla.reminder", 30, dt.timedelta(minutes=30)),
        ("sla.reminder", 45, dt.timedelta(minutes=45)),
    ]
    assert {r.dedup_key for r in rows} == {
        f"sla:{req.id}:reminder:30",
        f"sla:{req.id}:reminder:45",
        f"sla:{req.id}:escalation:60",
    }
    assert scheduling.schedule(db, req) == 0
    assert all(r.params == {"request_id": str(req.id)} for r in rows)


# The contacts endpoint ----------------------------------------------------------------------


def test_who_may_record_a_contact(db: Session, client: object) -> None:
    c: Any = client
    team = Team(db)
    stranger = create_expert(db, countries=["KG"], languages=["en"])
    req, token = _submit(db)
    url = f"/api/v1/cases/{req.reference}/contacts"
    # The expert it is offered to, before accepting: 404, like anyone not assigned.
    assert _contact(c, req.reference, login(c, team.expert)).status_code == 404
    assert _contact(c, req.reference, login(c, stranger)).status_code == 404
    assert c.get(url, headers=login(c, stranger)).status_code == 404
    # The requester's link is not a user token; no token at all is 401.
    assert _contact(c, req.reference, bearer(token)).status_code in (401, 404)
    assert c.post(url, json={}).status_code == 401
    assert _contact(c, "ZZZZZZZZ", login(c, team.staff)).status_code == 404
    assert db.scalars(select(RequestContact)).all() == []

    _accept(db, req, team.expert)
    resp = _contact(c, req.reference, login(c, team.expert), channel="whatsapp", note=None)
    assert resp.status_code == 201, resp.text
    assert resp.json()["recorded_by"] == str(team.expert.id)
    assert c.get(url, headers=login(c, team.expert)).status_code == 200
    staff = _contact(c, req.reference, login(c, team.staff), channel="email")
    assert staff.status_code == 201
    listed = c.get(url, headers=login(c, team.staff)).json()
    assert [x["channel"] for x in listed["contacts"]] == ["whatsapp", "email"]
    # Only the first one set the clock; the note is stored encrypted.
    db.expire_all()
    first = db.get(IntakeRequest, req.id)
    assert first is not None and first.first_responded_at is not None
    row = db.scalars(select(RequestContact).where(RequestContact.note_enc.is_not(None))).one()
    assert b"Called back" not in (row.note_enc or b"")
    actions = db.scalars(
        select(RequestHistory.action).where(RequestHistory.request_id == req.id)
    ).all()
    assert actions.count("contact_recorded") == 2


def test_contact_problems_are_422_naming_the_field(
    db: Session, client: object, clock: Clock
) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    headers = login(c, staff)
    req, _ = _submit(db)
    future = _contact(
        c, req.reference, headers, contacted_at=(now() + dt.timedelta(hours=1)).isoformat()
    )
    assert future.status_code == 422 and "contacted_at" in field_problems(future)
    early = (req.received_at - dt.timedelta(minutes=5)).isoformat()
    before = _contact(c, req.reference, headers, contacted_at=early)
    assert before.status_code == 422 and "contacted_at" in field_problems(before)
    fax = _contact(c, req.reference, headers, channel="fax")
    assert fax.status_code == 422 and "channel" in field_problems(fax)
    naive = _contact(c, req.reference, headers, contacted_at="2026-11-23T10:00:00")
    assert naive.status_code == 422 and "contacted_at" in field_problems(naive)
    long_note = _contact(c, req.reference, headers, note="x" * 1001)
    assert long_note.status_code == 422 and "note" in field_problems(long_note)
    missing = c.post(
        f"/api/v1/cases/{req.reference}/contacts", json={"channel": "phone"}, headers=headers
    )
    assert missing.status_code == 422 and "contacted_at" in field_problems(missing)
    db.expire_all()
    fresh = db.get(IntakeRequest, req.id)
    assert fresh is not None and fresh.first_responded_at is None


def test_a_bounced_contact_does_not_count(db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    req, _ = _submit(db)
    contact = service.record_contact(
        db, req, channel=ContactChannel.email, contacted_at=now(), note=None, by_user=staff
    )
    assert req.first_responded_at is not None
    contact.bounced_at = now()
    db.flush()
    assert service.counting_contacts_first_at(db, req) is None


@pytest.mark.sqlite
def test_on_sqlite_a_contact_stops_the_clock_and_cancels_the_rows(db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    req, _ = _submit(db)
    service.record_contact(
        db, req, channel=ContactChannel.phone, contacted_at=now(), note="Rang", by_user=staff
    )
    steps = db.scalars(
        select(OutboxMessage).where(OutboxMessage.kind.in_(scheduling.STEP_KINDS))
    ).all()
    assert len(steps) == 3 and {r.status for r in steps} == {OutboxStatus.cancelled}
    assert req.first_responded_at is not None
    contact = db.scalars(select(RequestContact)).one()
    assert service.reveal_note(req, contact) == "Rang"
