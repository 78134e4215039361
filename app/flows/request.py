"""What happens when a request is submitted, accepted by an expert, reassigned or ends: each
is one function below that calls intake, routing, scheduling, sendouts, roster and sla in
order; what the requester is told on their preferred channel (the acknowledgement and the
consultation reminders on WhatsApp, the e-mail as the fallback) is here too. The edges
(routers, pages, the worker's handlers, commands) call these; a domain never does (it sits
below), so no step depends on which modules a process happened to import.

One transaction: every function takes the caller's session and only flushes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.cases import corrections
from app.inbound import service as inbound
from app.intake import records
from app.intake import service as intake
from app.intake.status import FINAL
from app.models import (
    Assignment,
    AssignmentStatus,
    ContactChannel,
    IntakeRequest,
    OutboxMessage,
    RequestSource,
    RequestStatus,
    User,
)
from app.notifications import dates
from app.outbox import service as outbox
from app.privacy import service as privacy
from app.roster import alerts as roster_alerts
from app.routing import assignments
from app.routing import repository as routing_repository
from app.scheduling import service as scheduling
from app.sendouts import handlers as sendout_mails
from app.sendouts import service as sendouts
from app.sla import scheduling as sla_scheduling
from app.whatsapp import service as whatsapp
from app.whatsapp import templates as whatsapp_templates

# Submitted -----------------------------------------------------------------------------------


def submitted(session: Session, req: IntakeRequest) -> None:
    """After a request from the form is stored (``intake.service.submit``), in the worker
    within seconds (the ``intake.submitted`` outbox row, ``app/flows/handlers.py``). The
    one-hour clock already runs from ``received_at``; a request that ended meanwhile
    (withdrawn in the first seconds) is left alone. Requests that arrive by e-mail take the
    same steps (``inbound_message``, ``open_set_aside``) without routing: staff route them when
    they complete them (``complete_email_request``)."""
    if req.status in FINAL:
        return
    acknowledge(session, req)  # on WhatsApp for those who prefer it (others had the e-mail)
    sendouts.request_submitted(session, req)  # the documents after the wait
    roster_alerts.alert_if_uncovered(session, req)  # nobody on duty for the region
    if req.source not in (RequestSource.email, RequestSource.whatsapp):  # triage first
        assignments.route_safely(session, req, trigger="submitted")  # offer to an expert
    sla_scheduling.schedule(session, req)  # the reminders and the escalation


def inbound_message(
    session: Session, raw: bytes, *, received_at: dt.datetime | None = None, via: str = "webhook"
) -> inbound.Outcome:
    """An e-mail arrives (the IMAP poller's task, the inbound webhook): inbound takes it as a
    reply, a delivery report, mail set aside or a new request (``take_message``); a new one
    then goes through ``submitted``."""
    outcome = inbound.take_message(session, raw, received_at=received_at, via=via)
    _submitted_if_new(session, outcome)
    return outcome


def open_set_aside(session: Session, set_aside_id: uuid.UUID, by_user: User) -> inbound.Outcome:
    """Staff open a message set aside as a person's: it becomes a reply or a new request, and a
    new one goes through ``submitted``."""
    outcome = inbound.open_set_aside(session, set_aside_id, by_user)
    _submitted_if_new(session, outcome)
    return outcome


def _submitted_if_new(session: Session, outcome: inbound.Outcome) -> None:
    if outcome.action in ("created", "follow_up") and outcome.reference is not None:
        req = records.get_by_reference(session, outcome.reference)
        assert req is not None
        submitted(session, req)


def complete_email_request(
    session: Session,
    req: IntakeRequest,
    *,
    country_of_origin: str,
    country_of_residence: str,
    language: str,
    by_user: User,
) -> IntakeRequest:
    """Staff fill in what an e-mail did not say (``inbound.complete_email_request``); an open
    request nobody has yet is then routed like one from the form."""
    inbound.complete_email_request(
        session,
        req,
        country_of_origin=country_of_origin,
        country_of_residence=country_of_residence,
        language=language,
        by_user=by_user,
    )
    if req.assigned_expert_id is None and req.status not in FINAL:
        route_now(session, req, actor=f"user:{by_user.id}")
        session.flush()
    return req


def submitted_by_id(session: Session, request_id: uuid.UUID) -> None:
    req = session.get(IntakeRequest, request_id)
    if req is not None:
        submitted(session, req)


def route_now(session: Session, req: IntakeRequest, *, actor: str) -> None:
    """Staff ask for routing (a request from e-mail once completed, or one left in triage)."""
    assignments.route_safely(session, req, trigger="staff_route", actor=actor)


# Telling the requester on their channel ------------------------------------------------------


def _prefers_whatsapp(req: IntakeRequest) -> bool:
    return req.source == RequestSource.form and req.preferred_channel == ContactChannel.whatsapp


def acknowledge(session: Session, req: IntakeRequest) -> None:
    """A requester who chose WhatsApp on the form gets the acknowledgement there (the approved
    template in their language, neutral when discreet); the e-mail instead when WhatsApp is not
    connected or the number is unusable, and as the template's fallback when it fails for good
    (queued once by ``whatsapp.service``). Everyone else had the e-mail at submission
    (``intake.service.submit``), and requests from e-mail or WhatsApp are answered there."""
    if not _prefers_whatsapp(req):
        return
    by_email = outbox.Queued(intake.ACK_KIND, {"request_id": str(req.id)})
    sent = whatsapp.queue_template(
        session, req, "acknowledgement", [req.reference], fallback=by_email
    )
    if sent is None:
        intake.queue_acknowledgement(session, req)
        return
    records.add_history(
        session, req, actor="system", action="ack_queued", details={"via": "whatsapp"}
    )


def consultation_reminder(session: Session, row: OutboxMessage) -> None:
    """A consultation reminder falls due (``sendouts.service.sync_reminders`` queued it). The
    requester who chose WhatsApp gets the template (reference, time in their language and
    zone); the e-mail otherwise, or as its fallback (the same row marked ``channel: email``).
    The expert's reminder is always an e-mail."""
    if row.params["to"] == "requester" and row.params.get("channel") != "email":
        found = sendout_mails.due_reminder(session, row)
        if found is None:
            return  # moved or cancelled since
        c, req = found
        wants_whatsapp = req.preferred_channel == ContactChannel.whatsapp  # form or WhatsApp
        if wants_whatsapp and req.status != RequestStatus.spam:
            lang = whatsapp_templates.language_for(req.language)
            when = dates.when_in_words(c.start_at, req.timezone, lang)
            by_email = outbox.Queued(row.kind, {**row.params, "channel": "email"})
            params = [req.reference, when]
            if whatsapp.queue_template(session, req, "reminder", params, fallback=by_email):
                return
    sendout_mails.send_reminder(session, row)


# Accepted ------------------------------------------------------------------------------------


def answer_offer(
    session: Session,
    assignment_id: int,
    expert: User,
    *,
    accept: bool,
    reason: str | None = None,
    via: str = "api",
) -> Assignment:
    """The expert accepts or declines an offer (API, their desk, the e-mailed link). Routing
    records the answer, and a declined request goes to the next candidate at once
    (``assignments.respond``); an accepted one gets its documents now."""
    a = assignments.respond(session, assignment_id, expert, accept=accept, reason=reason, via=via)
    if a.status == AssignmentStatus.accepted:
        accepted(session, a)
    return a


def accepted(session: Session, a: Assignment) -> None:
    req = session.get(IntakeRequest, a.request_id)
    assert req is not None
    sendouts.expert_assigned(session, req, a.expert_id)  # the documents now, if not sent


# Reassigned ----------------------------------------------------------------------------------


def reassign(
    session: Session,
    req: IntakeRequest,
    *,
    by: User,
    expert_id: uuid.UUID | None,
    reason: str | None,
) -> Assignment | None:
    """Staff take the request from its expert and offer it to ``expert_id`` (None: the next
    candidate). Routing moves the assignment; a booked consultation then moves to the new
    expert if they are free at its time, or is cancelled and the requester asked to rebook."""
    moved = assignments.reassign(session, req, by=by, expert_id=expert_id, reason=reason)
    if moved.from_expert is not None:
        to_expert = moved.assignment.expert_id if moved.assignment is not None else None
        scheduling.on_request_reassigned(session, req, moved.from_expert, to_expert)
    return moved.assignment


def reroute(session: Session, req: IntakeRequest, user: User) -> None:
    """Route again after a correction: away from the current expert (as a reassignment, so a
    booked consultation follows), or route a request that has none."""
    if routing_repository.live_assignment(session, req.id) is not None:
        reassign(session, req, by=user, expert_id=None, reason="request_corrected")
    else:
        route_now(session, req, actor=assignments.actor_of(user))
    session.flush()


def correct(
    session: Session,
    req: IntakeRequest,
    user: User,
    changes: dict[str, Any],
    *,
    reroute_wanted: bool | None = None,
) -> list[str]:
    """Staff correct a request's fields (``cases.corrections``); it is routed again when the
    country of origin or the language changed, or when asked."""
    changed = corrections.correct(session, req, user, changes)
    if corrections.wants_reroute(req, changed, reroute_wanted):
        reroute(session, req, user)
    return changed


# Ended ---------------------------------------------------------------------------------------


def change_status(
    session: Session, req: IntakeRequest, target: RequestStatus, *, actor: str
) -> IntakeRequest:
    """Move a request along the status table (409 naming the allowed moves otherwise); a move
    to a final status (closed, declined, spam, withdrawn) ends it."""
    intake.change_status(session, req, target, actor=actor)
    if target in FINAL:
        ended(session, req)
    return req


def withdraw(session: Session, req: IntakeRequest) -> IntakeRequest:
    """The requester withdraws (asking twice is not an error)."""
    if req.status == RequestStatus.withdrawn:
        return req
    return change_status(session, req, RequestStatus.withdrawn, actor="requester")


def ended(session: Session, req: IntakeRequest) -> None:
    """A request reached a final status: its expert's unit of capacity is freed, and a booked
    consultation is cancelled (the requester told, unless it was spam). The first-response
    clock already stopped at ``ended_at``; reminders check it when they are due."""
    assignments.release(session, req, reason=f"request_{req.status.value}")
    scheduling.on_request_ended(session, req)


def decline_and_erase(
    session: Session, req: IntakeRequest, *, admin: User, reason: str
) -> dict[str, int]:
    """An admin's erasure. An open request is declined first, so it ends like any other (its
    expert freed, a booked consultation cancelled) instead of staying open with no way to reach
    the requester; then every trace of its personal data goes."""
    if req.status not in FINAL:
        change_status(session, req, RequestStatus.declined, actor=f"user:{admin.id}")
    return privacy.erase_request(
        session, req, by=str(admin.id), reason=reason, actor_role=admin.role.value
    )
