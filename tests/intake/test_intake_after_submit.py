"""A submission is a few cheap statements; what follows it (routing to an expert, the
reminders and escalation, the documents' timer) is one ``intake.submitted`` outbox row that the
worker runs within seconds. The one-hour clock runs from ``received_at`` either way."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.flows import request as flows
from app.intake import records
from app.intake import service as intake
from app.intake.service import SUBMITTED_KIND
from app.models import Assignment, IntakeRequest, OutboxMessage, OutboxStatus, RequestStatus
from app.sla.scheduling import ESCALATION_KIND, REMINDER_KIND
from tests.factories import create_expert, drain, submission

EE = "eastern_europe_post_soviet"


def _rows(db: Session, req: IntakeRequest) -> dict[str, OutboxMessage]:
    rows = db.scalars(select(OutboxMessage)).all()
    mine = [r for r in rows if r.params.get("request_id") == str(req.id)]
    return {r.kind: r for r in mine}


def test_the_submission_queues_its_follow_up_and_the_worker_routes_and_schedules(
    db: Session,
) -> None:
    expert = create_expert(db, regions=[EE], languages=["ru"])
    reply = intake.submit(db, submission())
    req = records.get_by_reference(db, reply["reference"])
    assert req is not None
    rows = _rows(db, req)
    assert rows[SUBMITTED_KIND].status == OutboxStatus.pending
    assert REMINDER_KIND not in rows and ESCALATION_KIND not in rows
    assert db.scalar(select(Assignment).where(Assignment.request_id == req.id)) is None

    drain(db)  # the worker's pump

    offer = db.scalar(select(Assignment).where(Assignment.request_id == req.id))
    assert offer is not None and offer.expert_id == expert.id
    rows = _rows(db, req)
    assert rows[SUBMITTED_KIND].status == OutboxStatus.sent
    escalation = rows[ESCALATION_KIND]
    # Due from the time the request arrived, not from when the worker ran.
    assert escalation.due_at == req.received_at + dt.timedelta(minutes=req.sla_minutes)


def test_a_request_withdrawn_before_the_worker_ran_is_not_routed(db: Session) -> None:
    create_expert(db, regions=[EE], languages=["ru"])
    reply = intake.submit(db, submission())
    req = records.get_by_reference(db, reply["reference"])
    assert req is not None
    flows.withdraw(db, req)
    drain(db)
    assert req.status == RequestStatus.withdrawn
    assert db.scalar(select(Assignment).where(Assignment.request_id == req.id)) is None
    assert REMINDER_KIND not in _rows(db, req)
