"""Outbox handlers of routing: the offer to an expert and the triage alert to on-duty staff.

Both carry only the reference, the country, what was asked, the deadline and a link: never a
name, a contact detail or the case summary (the domain's rule for staff and expert mail).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.models import (
    Assignment,
    AssignmentStatus,
    ExpertProfile,
    IntakeRequest,
    OutboxMessage,
    User,
)
from app.notifications import mail
from app.notifications.facts import case_facts, recipient, when_for
from app.notifications.render import render_pair
from app.outbox.registry import PermanentFailure, handler
from app.routing import links
from app.routing.assignments import OFFER_KIND, TRIAGE_ALERT_KIND


def _send(to: str, subject: str, template: str, context: dict[str, Any], row_id: int) -> None:
    text, html = render_pair(template, context)
    mail.send(
        mail.build_message(
            to=to,
            subject=subject,
            text=text,
            html=html,
            message_id=mail.stable_message_id(f"outbox-{row_id}"),
        )
    )


@handler(OFFER_KIND)
def send_offer(session: Session, row: OutboxMessage) -> None:
    a = session.get(Assignment, int(row.params["assignment_id"]))
    if a is None:
        raise PermanentFailure("assignment is gone")
    if a.status != AssignmentStatus.offered:
        return  # answered, expired or reassigned before the mail went out: nothing to offer
    req = session.get(IntakeRequest, a.request_id)
    profile = session.get(ExpertProfile, a.expert_id)
    if req is None or profile is None:
        raise PermanentFailure("request or expert is gone")
    reader = recipient(session, a.expert_id)
    context = case_facts(session, req, reader[1]) | {
        "link": links.offer_url(links.sign(a.id, a.respond_by)),
        # In words in the expert's own language and zone: "Sunday 28 March 2027 at 06:45
        # (Bishkek time)".
        "respond_by": when_for(a.respond_by, reader),
        "minutes": get_settings().offer_response_minutes,
    }
    _send(
        profile.email,
        f"New request offered to you [{req.reference}]",
        "experts/offer",
        context,
        row.id,
    )


@handler(TRIAGE_ALERT_KIND)
def send_triage_alert(session: Session, row: OutboxMessage) -> None:
    req = session.get(IntakeRequest, uuid.UUID(row.params["request_id"]))
    user = session.get(User, uuid.UUID(row.params["user_id"]))
    if req is None:
        raise PermanentFailure("request is gone")
    if user is None or not user.is_active:
        return  # no longer on duty
    if req.assigned_expert_id is not None:
        return  # someone took it meanwhile
    base = get_settings().public_url
    context = case_facts(session, req) | {
        "link": f"{base}/api/v1/requests/{req.reference}/routing",
    }
    _send(
        user.email,
        f"Request {req.reference} needs an expert",
        "experts/triage_alert",
        context,
        row.id,
    )
