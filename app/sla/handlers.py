"""Outbox handlers of the first-response clock.

``sla.reminder`` and ``sla.escalation`` rows come due at their minute (see ``scheduling``). When
one does, the handler looks again: a recorded first response or an ended request means nothing
is sent. Otherwise it decides the recipients *now* and writes one ``sla.mail`` row per person
(de-duplication key ``sla:{request_id}:{step}:{minute}:{user_id}``), so each person gets each
step once even if a row is delivered twice. ``sla.mail`` checks the clock once more and sends.

- reminder: the assigned expert (unassigned: the active experts of the request's region) and
  the on-duty staff at that minute, from the duty roster (``app/roster/service.py``; an empty
  roster: every active staff user);
- escalation: opens the escalation chain (``app/roster/escalation.py``): on-duty staff, then
  the duty lead, then the supervisors, one level per unacknowledged
  ``INTAKE_ESCALATION_ACK_MINUTES``.

The e-mails carry the reference, the country, what was asked and the deadline: never a name, a
contact detail or the summary.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.intake.records import current_sla
from app.models import ExpertProfile, ExpertRegion, IntakeRequest, OutboxMessage, Role, User
from app.notifications import mail
from app.notifications.facts import case_facts, recipient, when_for
from app.notifications.render import render_pair
from app.outbox import service as outbox
from app.outbox.registry import PermanentFailure, handler
from app.roster import escalation
from app.roster import service as roster
from app.routing.assignments import on_duty_staff
from app.sla.scheduling import ESCALATION_KIND, MAIL_KIND, REMINDER_KIND, minute_of, step_key
from app.sla.service import clock_stopped

log = structlog.get_logger(__name__)

STEP_OF_KIND = {REMINDER_KIND: "reminder", ESCALATION_KIND: "escalation"}


def _request(session: Session, row: OutboxMessage) -> IntakeRequest:
    req = session.get(IntakeRequest, uuid.UUID(str(row.params["request_id"])))
    if req is None:
        raise PermanentFailure("request is gone")
    return req


def _active_expert(session: Session, expert_id: uuid.UUID) -> bool:
    profile = session.get(ExpertProfile, expert_id)
    user = session.get(User, expert_id)
    return bool(profile and profile.is_active and user and user.is_active)


def expert_recipients(session: Session, req: IntakeRequest) -> list[uuid.UUID]:
    """The assigned expert; unassigned, the region's active experts; else nobody."""
    if req.assigned_expert_id is not None:
        expert_id = req.assigned_expert_id
        return [expert_id] if _active_expert(session, expert_id) else []
    if req.region_code is None:
        return []
    return list(
        session.scalars(
            select(ExpertRegion.expert_id)
            .join(ExpertProfile, ExpertProfile.user_id == ExpertRegion.expert_id)
            .join(User, User.id == ExpertRegion.expert_id)
            .where(
                ExpertRegion.region_code == req.region_code,
                ExpertProfile.is_active.is_(True),
                User.is_active.is_(True),
            )
            .order_by(ExpertRegion.expert_id)
        ).all()
    )


def supervisors(session: Session) -> Sequence[uuid.UUID]:
    """The supervisors on duty now (roster; an empty roster: every active admin)."""
    return [u.id for u in roster.supervisors(session, now())]


def recipients(session: Session, req: IntakeRequest, step: str) -> list[uuid.UUID]:
    if step == "escalation":
        found = list(supervisors(session))
    else:
        found = expert_recipients(session, req) + [u.id for u in on_duty_staff(session)]
    return list(dict.fromkeys(found))  # one each, order kept


def _fan_out(session: Session, row: OutboxMessage) -> None:
    step = STEP_OF_KIND[row.kind]
    minute = minute_of(row.dedup_key)
    req = _request(session, row)
    if clock_stopped(req):
        log.info("sla_step_skipped", reference=req.reference, step=step, reason="stopped")
        return
    if step == "reminder" and now() >= req.first_response_due_at:
        # Late (the worker was down): the escalation, due already, says more than a reminder.
        log.info("sla_step_skipped", reference=req.reference, step=step, reason="overtaken")
        return
    people = recipients(session, req, step)
    for user_id in people:
        outbox.enqueue(
            session,
            MAIL_KIND,
            {"request_id": str(req.id), "step": step, "minute": minute, "user_id": str(user_id)},
            dedup_key=f"{step_key(req.id, step, minute)}:{user_id}",
        )
    if not people:
        log.error("sla_no_recipient", reference=req.reference, step=step)
    log.info("sla_step_fanned_out", reference=req.reference, step=step, recipients=len(people))


@handler(REMINDER_KIND)
def send_reminder(session: Session, row: OutboxMessage) -> None:
    _fan_out(session, row)


@handler(ESCALATION_KIND)
def send_escalation(session: Session, row: OutboxMessage) -> None:
    req = _request(session, row)
    if clock_stopped(req):
        log.info("sla_step_skipped", reference=req.reference, step="escalation", reason="stopped")
        return
    escalation.open_chain(session, req)


def _address(session: Session, user: User) -> str:
    """An expert's working address is on their profile; everyone else's is the account's."""
    if user.role == Role.expert:
        profile = session.get(ExpertProfile, user.id)
        if profile is not None:
            return profile.email
    return user.email


@handler(MAIL_KIND)
def send_mail(session: Session, row: OutboxMessage) -> None:
    req = _request(session, row)
    if clock_stopped(req):
        return  # answered (or ended) after the step came due: nothing to remind of
    user = session.get(User, uuid.UUID(str(row.params["user_id"])))
    if user is None or not user.is_active:
        return  # no longer on duty
    step = str(row.params["step"])
    minute = int(row.params["minute"])
    current = now()
    left = int((req.first_response_due_at - current).total_seconds() // 60)
    reader = recipient(session, user.id)  # each person's own zone and language, in words
    context = case_facts(session, req, reader[1]) | {
        "minutes": minute,
        "sla_minutes": req.sla_minutes,
        "received_at": when_for(req.received_at, reader),
        "due_at": when_for(req.first_response_due_at, reader),
        "minutes_left": max(0, left),
        "sla_state": current_sla(req, current).value,
        "link": f"{get_settings().public_url}/api/v1/cases/{req.reference}/contacts",
    }
    if step == "escalation":
        subject = f"Breached: request {req.reference} had no first response in {minute} minutes"
    else:
        subject = f"Reminder: request {req.reference} has no first response after {minute} minutes"
    text, html = render_pair(f"sla/{step}", context)
    mail.send(
        mail.build_message(
            to=_address(session, user),
            subject=subject,
            text=text,
            html=html,
            message_id=mail.stable_message_id(f"outbox-{row.id}"),
        )
    )
