"""Outbox handlers of the roster: the escalation chain's levels and e-mails, the alert about a
region nobody covers, and the daily gap e-mail. Staff e-mails carry the reference, country, what
was asked and the deadline only. Each e-mail goes to one person, so its times are in that
person's own zone, named beside them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.models import Escalation, ExpertProfile, IntakeRequest, OutboxMessage, Role, User
from app.notifications import mail
from app.notifications.facts import (
    case_facts,
    local_time,
    recipient,
    recipient_zone,
    when_for,
    zone_label,
)
from app.notifications.render import render_pair
from app.outbox.registry import PermanentFailure, handler
from app.roster import escalation, links
from app.roster import service as roster
from app.roster.alerts import GAPS_KIND, UNCOVERED_KIND
from app.sla.service import clock_stopped


def _span(start: dt.datetime, end: dt.datetime, zone: str) -> str:
    """A gap in the reader's zone, named once: "Sun 28 Mar 2027, 02:00 to 03:00 (Europe/Berlin,
    UTC+02:00)"; the end's date only when it is another day, and each end named on its own when
    the clocks change in between."""
    same_day = local_time(end, zone, form="date") == local_time(start, zone, form="date")
    to = local_time(end, zone, form="time" if same_day else "datetime")
    shown = local_time(start, zone)
    first, last = zone_label(zone, start), zone_label(zone, end)
    if first == last:
        return f"{shown} to {to} ({first})"
    return f"{shown} ({first}) to {to} ({last})"


def _address(session: Session, user: User) -> str:
    if user.role == Role.expert:
        profile = session.get(ExpertProfile, user.id)
        if profile is not None:
            return profile.email
    return user.email


def _send(
    session: Session,
    user: User,
    subject: str,
    template: str,
    ctx: dict[str, Any],
    row: OutboxMessage,
) -> None:
    text, html = render_pair(template, ctx)
    mail.send(
        mail.build_message(
            to=_address(session, user),
            subject=subject,
            text=text,
            html=html,
            message_id=mail.stable_message_id(f"outbox-{row.id}"),
        )
    )


def _chain(session: Session, row: OutboxMessage) -> tuple[Escalation, IntakeRequest]:
    esc = session.get(Escalation, int(row.params["escalation_id"]))
    req = session.get(IntakeRequest, esc.request_id) if esc is not None else None
    if esc is None or req is None:
        raise PermanentFailure("escalation is gone")
    return esc, req


def _user(session: Session, row: OutboxMessage) -> User | None:
    user = session.get(User, uuid.UUID(str(row.params["user_id"])))
    return user if user is not None and user.is_active else None


@handler(escalation.NEXT_KIND)
def next_level(session: Session, row: OutboxMessage) -> None:
    esc, req = _chain(session, row)
    escalation.climb(session, esc, req, int(row.params["level"]))


@handler(escalation.MAIL_KIND)
def escalation_mail(session: Session, row: OutboxMessage) -> None:
    esc, req = _chain(session, row)
    if esc.acknowledged_at is not None or clock_stopped(req):
        return
    user = _user(session, row)
    if user is None:
        return
    level = int(row.params["level"])
    base = get_settings().public_url
    reader = recipient(session, user.id)
    ctx = case_facts(session, req, reader[1]) | {
        "level": level,
        "level_name": escalation.LEVELS[level].replace("_", " "),
        "last_level": level >= escalation.LAST_LEVEL,
        "ack_minutes": get_settings().escalation_ack_minutes,
        "minutes": req.sla_minutes,
        "received_at": when_for(req.received_at, reader),
        "due_at": when_for(req.first_response_due_at, reader),
        "ack_link": links.ack_url(links.sign(esc.id, user.id)),
        "case_ack": f"{base}/api/v1/cases/{req.reference}/escalation/ack",
        "contacts": f"{base}/api/v1/cases/{req.reference}/contacts",
    }
    subject = (
        f"Breached: request {req.reference} had no first response in {req.sla_minutes} "
        f"minutes (escalation level {level})"
    )
    _send(session, user, subject, "roster/escalation", ctx, row)


@handler(UNCOVERED_KIND)
def uncovered_alert(session: Session, row: OutboxMessage) -> None:
    req = session.get(IntakeRequest, uuid.UUID(str(row.params["request_id"])))
    if req is None:
        raise PermanentFailure("request is gone")
    if clock_stopped(req):
        return
    user = _user(session, row)
    if user is None:
        return
    reader = recipient(session, user.id)
    ctx = case_facts(session, req, reader[1]) | {
        "region": req.region_code,
        "due_at": when_for(req.first_response_due_at, reader),
        "link": f"{get_settings().public_url}/api/v1/cases/{req.reference}",
    }
    subject = f"Nobody on duty for request {req.reference}: please take it"
    _send(session, user, subject, "roster/uncovered", ctx, row)


@handler(GAPS_KIND)
def gaps_mail(session: Session, row: OutboxMessage) -> None:
    user = _user(session, row)
    if user is None or user.role != Role.admin:
        return
    found = roster.upcoming_gaps(session, 7)
    if not found:
        return  # fixed since the row was written
    zone = recipient_zone(session, user.id)
    lines = [
        {
            "what": "no staff on duty" if g.kind == "staff" else f"region {g.region_code}: nobody",
            "when": _span(g.start, g.end, zone),
        }
        for g in found[:100]
    ]
    ctx = {
        "count": len(found),
        "gaps": lines,
        "more": max(0, len(found) - len(lines)),
        "link": f"{get_settings().public_url}/api/v1/admin/roster/gaps?days=7",
        "checked_at": when_for(now(), recipient(session, user.id)),
    }
    _send(
        session,
        user,
        f"Duty roster: {len(found)} gap(s) in the next 7 days",
        "roster/gaps",
        ctx,
        row,
    )
