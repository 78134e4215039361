"""The escalation chain of a request whose first response is overdue.

When the request's ``sla.escalation`` row comes due (at ``received_at + sla_minutes``) and the
clock has not stopped, ``open_chain`` opens one ``Escalation`` and sends level 1. A level nobody
acknowledges within ``INTAKE_ESCALATION_ACK_MINUTES`` goes to the next:

1. the duty lead (roster; none while the roster is empty) and the lead expert of the request's
   region, if it has one (the region's fallback for escalations),
2. the supervisors (roster; an empty roster or nobody on that level: every active admin).

On-duty staff are not a level: they already had the reminders before the hour ran out, and an
escalation goes up, not back to them. With an empty roster the chain is the rule that held
before the roster existed: the admins at the target. A level with nobody in it is passed over
at once. Level 2 is the last. Each level sent, passed
over, and the acknowledgement are rows in the request's history. An acknowledgement (one click
from the e-mail's signed link, or ``POST /api/v1/cases/{reference}/escalation/ack``) or a
recorded first response stops the chain: every pending row of it shares the request's
``sla:{request_id}:`` de-duplication prefix, which both cancel.
"""

from __future__ import annotations

import datetime as dt
import uuid

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.intake import records as intake
from app.models import (
    Escalation,
    IntakeRequest,
    OutboxMessage,
    OutboxStatus,
    Region,
    User,
)
from app.outbox import service as outbox
from app.roster import links
from app.roster import service as roster
from app.roster.errors import AlreadyAcknowledged, InvalidAckLink, NoEscalation
from app.sla.scheduling import key_prefix
from app.sla.service import case_for, clock_stopped

log = structlog.get_logger(__name__)

MAIL_KIND = "roster.escalation_mail"
NEXT_KIND = "roster.escalation_next"
LEVELS = {1: "duty_lead", 2: "supervisors"}
LAST_LEVEL = 2


def chain_prefix(request_id: uuid.UUID) -> str:
    return f"{key_prefix(request_id)}escalation_"


def region_lead(session: Session, req: IntakeRequest) -> User | None:
    """The lead expert of the request's region (active), the region's fallback for escalations."""
    if req.region_code is None:
        return None
    lead = session.scalar(
        select(User)
        .join(Region, Region.lead_expert_id == User.id)
        .where(Region.code == req.region_code, User.is_active.is_(True))
    )
    return lead


def level_recipients(
    session: Session, level: int, at: dt.datetime, req: IntakeRequest
) -> list[User]:
    if level == 1:
        people = [p for p in (roster.duty_lead(session, at), region_lead(session, req)) if p]
        return list({p.id: p for p in people}.values())
    return roster.supervisors(session, at)


def _send_level(session: Session, esc: Escalation, req: IntakeRequest, level: int) -> None:
    current = now()
    while True:
        people = level_recipients(session, level, current, req)
        if people or level == LAST_LEVEL:
            break
        intake.add_history(
            session,
            req,
            actor="system",
            action="escalation_level_skipped",
            details={"level": level, "name": LEVELS[level], "reason": "nobody"},
        )
        level += 1
    esc.level = level
    esc.level_sent_at = current
    for user in people:
        outbox.enqueue(
            session,
            MAIL_KIND,
            {"escalation_id": esc.id, "level": level, "user_id": str(user.id)},
            dedup_key=f"{chain_prefix(req.id)}mail:{level}:{user.id}",
        )
    intake.add_history(
        session,
        req,
        actor="system",
        action="escalation_level_sent",
        details={"level": level, "name": LEVELS[level], "recipients": len(people)},
    )
    if not people:
        log.error("escalation_no_recipient", reference=req.reference, level=level)
    if level < LAST_LEVEL:
        outbox.enqueue(
            session,
            NEXT_KIND,
            {"escalation_id": esc.id, "level": level + 1},
            due_at=current + dt.timedelta(minutes=get_settings().escalation_ack_minutes),
            dedup_key=f"{chain_prefix(req.id)}level:{level + 1}",
        )
    session.flush()
    log.info("escalation_level_sent", reference=req.reference, level=level, recipients=len(people))


def open_chain(session: Session, req: IntakeRequest) -> Escalation:
    """Open the request's escalation and send level 1 (once: a second call returns it)."""
    esc = session.scalar(select(Escalation).where(Escalation.request_id == req.id))
    if esc is not None:
        return esc
    current = now()
    esc = Escalation(request_id=req.id, opened_at=current, level=0, level_sent_at=current)
    session.add(esc)
    session.flush()
    _send_level(session, esc, req, 1)
    return esc


def climb(session: Session, esc: Escalation, req: IntakeRequest, level: int) -> bool:
    """Send ``level`` unless acknowledged, answered, ended or already sent."""
    if esc.acknowledged_at is not None or clock_stopped(req) or esc.level >= level:
        return False
    _send_level(session, esc, req, level)
    return True


def for_request(session: Session, req: IntakeRequest) -> Escalation:
    esc = session.scalar(select(Escalation).where(Escalation.request_id == req.id))
    if esc is None:
        raise NoEscalation("This request has no escalation.")
    return esc


def acknowledge(
    session: Session, esc: Escalation, req: IntakeRequest, user: User, *, via: str
) -> Escalation:
    """Stop the chain: record who and how, and cancel the levels and e-mails not yet sent."""
    locked = session.scalar(select(Escalation).where(Escalation.id == esc.id).with_for_update())
    if locked is None:
        raise NoEscalation("This request has no escalation.")
    if locked.acknowledged_at is not None:
        raise AlreadyAcknowledged("This escalation was acknowledged already.")
    locked.acknowledged_at = now()
    locked.acknowledged_by = user.id
    locked.acknowledged_via = via
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.pending,
            OutboxMessage.dedup_key.startswith(chain_prefix(req.id), autoescape=True),
        )
        .values(status=OutboxStatus.cancelled, updated_at=now())
        .execution_options(synchronize_session=False)
    )
    intake.add_history(
        session,
        req,
        actor=f"user:{user.id}",
        action="escalation_acknowledged",
        details={"level": locked.level, "name": LEVELS.get(locked.level), "via": via},
    )
    session.flush()
    log.info("escalation_acknowledged", reference=req.reference, level=locked.level, via=via)
    return locked


def acknowledge_case(
    session: Session, reference: str, user: User
) -> tuple[IntakeRequest, Escalation]:
    """From the case (staff): 404 for an unknown case or one without an escalation, 409 when
    acknowledged already."""
    req = case_for(session, reference, user)
    esc = for_request(session, req)
    return req, acknowledge(session, esc, req, user, via="case")


def acknowledge_link(session: Session, token: str) -> tuple[IntakeRequest, Escalation]:
    """From the e-mail's signed link (``InvalidAckLink``, 404, for anything wrong)."""
    esc, req, user = link_target(session, token)
    return req, acknowledge(session, esc, req, user, via="link")


def link_target(session: Session, token: str) -> tuple[Escalation, IntakeRequest, User]:
    escalation_id, user_id = links.verify(token)
    esc = session.get(Escalation, escalation_id)
    req = session.get(IntakeRequest, esc.request_id) if esc is not None else None
    user = session.get(User, user_id)
    if esc is None or req is None or user is None or not user.is_active:
        raise InvalidAckLink("This link is not valid.")
    return esc, req, user
