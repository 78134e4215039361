"""The escalation chain: a breached request is escalated to on-duty staff, then the
duty lead, then the supervisors, one level per INTAKE_ESCALATION_ACK_MINUTES nobody
acknowledges; one click from the e-mail (GET shows, POST acknowledges) or the case's endpoint
stops it; every level and the acknowledgement are in the history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.models import (
    ContactChannel,
    DutyLevel,
    Escalation,
    IntakeRequest,
    OutboxMessage,
    OutboxStatus,
    RequestHistory,
    Role,
    User,
)
from app.roster import escalation, links
from app.sla import scheduling
from app.sla import service as sla
from tests.conftest import Clock
from tests.factories import (
    MARKER,
    around_the_clock,
    create_user,
    drain_all,
    login,
    make_request,
    set_time,
)
from tests.mail_reader import ack_token, recipients, take

START = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # Tuesday


class Roster:
    def __init__(self, db: Session) -> None:
        self.staff = create_user(db, role=Role.staff)
        self.off_duty = create_user(db, role=Role.staff)  # on no shift
        self.lead = create_user(db, role=Role.staff)
        self.supervisor = create_user(db, role=Role.admin)
        self.other_admin = create_user(db, role=Role.admin)  # not on a supervisor shift
        around_the_clock(db, self.staff)
        around_the_clock(db, self.lead, level=DutyLevel.lead)
        around_the_clock(db, self.supervisor, level=DutyLevel.supervisor)


def _breached_request(db: Session, clock: Clock, mail_dir: Path) -> IntakeRequest:
    """A request (in a region nobody covers, so no expert reminders) with its reminders and
    escalation scheduled at 10:00; the reminders are drained and dropped."""
    set_time(clock, START)
    req = make_request(db, country="CN", region="east_asia")
    scheduling.schedule(db, req)
    clock.advance(minutes=46)
    drain_all(db)
    take(mail_dir)
    return req


def _history(db: Session, req: IntakeRequest, prefix: str = "escalation_") -> list[RequestHistory]:
    return list(
        db.scalars(
            select(RequestHistory)
            .where(RequestHistory.request_id == req.id, RequestHistory.action.startswith(prefix))
            .order_by(RequestHistory.id)
        ).all()
    )


def test_an_escalation_nobody_acknowledges_climbs_from_the_duty_lead_to_the_supervisors(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    team = Roster(db)
    req = _breached_request(db, clock, mail_dir)

    clock.advance(minutes=15)  # 11:01: breached, level 1: the duty lead, not the staff again
    drain_all(db)
    first = take(mail_dir, "Breached:")
    assert recipients(first) == {team.lead.email}
    assert all("level 1" in s and req.reference in s for _, s, _ in first)
    body = first[0][2]
    assert "/escalations/ack/" in body and MARKER not in body

    clock.advance(minutes=14)  # 11:15: not yet
    drain_all(db)
    assert take(mail_dir, "Breached:") == []
    clock.advance(minutes=1)  # 11:16: level 2, the supervisors on duty
    drain_all(db)
    second = take(mail_dir, "Breached:")
    assert recipients(second) == {team.supervisor.email}
    assert "level 2" in second[0][1]

    clock.advance(minutes=60)  # the last level: nothing more
    drain_all(db)
    assert take(mail_dir, "Breached:") == []

    sent = [(h.action, h.details["level"], h.details["recipients"]) for h in _history(db, req)]
    assert sent == [("escalation_level_sent", 1, 1), ("escalation_level_sent", 2, 1)]
    esc = db.scalar(select(Escalation).where(Escalation.request_id == req.id))
    assert esc is not None and esc.level == 2 and esc.acknowledged_at is None


def test_an_acknowledged_escalation_stops_and_the_link_works_once(
    db: Session, client: Any, clock: Clock, mail_dir: Path
) -> None:
    team = Roster(db)
    req = _breached_request(db, clock, mail_dir)
    clock.advance(minutes=15)
    drain_all(db)
    (mail,) = take(mail_dir, "Breached:")
    token = ack_token(mail[2])

    # GET only shows the page (mail scanners follow links): nothing is acknowledged.
    shown = client.get(f"/escalations/ack/{token}")
    assert shown.status_code == 200 and req.reference in shown.text and "<form" in shown.text
    db.expire_all()
    esc = db.scalar(select(Escalation).where(Escalation.request_id == req.id))
    assert esc is not None and esc.acknowledged_at is None

    done = client.post(f"/escalations/ack/{token}")
    assert done.status_code == 200 and "Acknowledged" in done.text
    db.expire_all()
    esc = db.scalar(select(Escalation).where(Escalation.request_id == req.id))
    assert esc is not None
    assert esc.acknowledged_by == team.lead.id and esc.acknowledged_via == "link"
    acked = _history(db, req, "escalation_acknowledged")
    assert len(acked) == 1 and acked[0].actor == f"user:{team.lead.id}"
    assert acked[0].details == {"level": 1, "name": "duty_lead", "via": "link"}

    # Works once.
    again = client.post(f"/escalations/ack/{token}")
    assert again.status_code == 409
    assert client.get(f"/escalations/ack/{token}").status_code == 409
    # A wrong signature, a tampered payload, garbage: 404.
    payload, sig = token.split(".")
    wrong_sig = f"{payload}.{('A' if sig[0] != 'A' else 'B')}{sig[1:]}"
    assert client.get(f"/escalations/ack/{wrong_sig}").status_code == 404
    assert client.post(f"/escalations/ack/{wrong_sig}").status_code == 404
    other = links.sign(esc.id + 1000, team.lead.id)
    forged = f"{other.split('.')[0]}.{sig}"
    assert client.post(f"/escalations/ack/{forged}").status_code == 404
    assert client.get("/escalations/ack/not-a-link").status_code == 404
    # An expired link: 404.
    expired = links.sign(esc.id, team.lead.id, now() - dt.timedelta(minutes=1))
    assert client.get(f"/escalations/ack/{expired}").status_code == 404

    # The chain stopped: no supervisors.
    clock.advance(minutes=60)
    drain_all(db)
    assert take(mail_dir, "Breached:") == []
    assert [h.details["level"] for h in _history(db, req, "escalation_level_sent")] == [1]


def test_acknowledging_from_the_case_stops_the_chain(
    db: Session, client: Any, clock: Clock, mail_dir: Path
) -> None:
    team = Roster(db)
    req = _breached_request(db, clock, mail_dir)
    url = f"/api/v1/cases/{req.reference}/escalation/ack"
    staff_h = login(client, team.off_duty)
    # No escalation yet: 404.
    assert client.post(url, headers=staff_h).status_code == 404
    clock.advance(minutes=15)  # level 1 sent
    drain_all(db)
    assert recipients(take(mail_dir, "Breached:")) == {team.lead.email}

    resp = client.post(url, headers=staff_h)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["level"] == 1 and out["acknowledged_via"] == "case"
    assert out["acknowledged_by"] == str(team.off_duty.id)
    assert client.post(url, headers=staff_h).status_code == 409
    clock.advance(minutes=30)
    drain_all(db)
    assert take(mail_dir, "Breached:") == []  # the supervisors are not alerted

    # Anonymous: 401; an unknown case: 404.
    assert client.post(url).status_code == 401
    assert client.post("/api/v1/cases/NOPE0000/escalation/ack", headers=staff_h).status_code == 404
    expert = create_user(db, role=Role.expert)
    assert client.post(url, headers=login(client, expert)).status_code == 403


def test_a_first_response_after_the_breach_stops_the_chain(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    team = Roster(db)
    req = _breached_request(db, clock, mail_dir)
    clock.advance(minutes=15)
    drain_all(db)
    assert recipients(take(mail_dir, "Breached:")) == {team.lead.email}
    sla.record_contact(
        db, req, channel=ContactChannel.phone, contacted_at=now(), note=None, by_user=team.staff
    )
    clock.advance(minutes=40)
    drain_all(db)
    assert take(mail_dir, "Breached:") == []


def test_with_an_empty_roster_the_admins_get_it_at_the_target(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    staff = create_user(db, role=Role.staff)
    admin = create_user(db, role=Role.admin)
    everyone_staff = {
        u.email
        for u in db.scalars(select(User).where(User.role == Role.staff, User.is_active.is_(True)))
    }
    everyone_admin = {
        u.email
        for u in db.scalars(select(User).where(User.role == Role.admin, User.is_active.is_(True)))
    }
    assert staff.email in everyone_staff and admin.email in everyone_admin
    req = _breached_request(db, clock, mail_dir)
    clock.advance(minutes=15)  # no duty lead in an empty roster: passed over to the admins
    drain_all(db)
    got = recipients(take(mail_dir, "Breached:"))
    assert got == everyone_admin and not got & everyone_staff
    actions = [(h.action, h.details["level"]) for h in _history(db, req)]
    assert actions == [("escalation_level_skipped", 1), ("escalation_level_sent", 2)]


@pytest.mark.sqlite
def test_on_sqlite_the_chain_climbs_and_an_acknowledgement_cancels_the_rest(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    team = Roster(db)
    req = _breached_request(db, clock, mail_dir)
    clock.advance(minutes=15)
    drain_all(db)
    assert recipients(take(mail_dir, "Breached:")) == {team.lead.email}
    esc = escalation.for_request(db, req)
    escalation.acknowledge(db, esc, req, team.lead, via="case")
    pending = db.scalars(
        select(OutboxMessage).where(
            OutboxMessage.dedup_key.startswith(escalation.chain_prefix(req.id), autoescape=True),
            OutboxMessage.status == OutboxStatus.pending,
        )
    ).all()
    assert pending == []
    clock.advance(minutes=30)
    drain_all(db)
    assert take(mail_dir, "Breached:") == []


def test_the_region_lead_expert_gets_the_first_level_with_the_duty_lead(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    """A region's lead expert is its fallback for escalations: level 1 goes to them too."""
    from app.models import Region
    from tests.factories import create_expert

    team = Roster(db)
    lead_expert = create_expert(db, regions=["east_asia"], languages=["en"])
    region = db.get(Region, "east_asia")
    assert region is not None
    region.lead_expert_id = lead_expert.id
    db.flush()
    req = _breached_request(db, clock, mail_dir)
    clock.advance(minutes=15)
    drain_all(db)
    first = take(mail_dir, "Breached:")
    assert recipients(first) == {team.lead.email, lead_expert.email}
    assert all(req.reference in s and MARKER not in b for _, s, b in first)
