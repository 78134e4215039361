"""Outbox handlers of calendars: "a calendar cannot be read" and "a calendar event overlaps a
booked consultation", each to the expert and to staff (every active staff user and admin).

They carry the calendar's label, a reference and a time: never the event's title, nor anything
of the requester.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calendars.refresh import CONFLICT_KIND, UNREADABLE_KIND
from app.core.settings import get_settings
from app.models import (
    CalendarConflictAlert,
    CalendarConnection,
    Consultation,
    ExpertProfile,
    IntakeRequest,
    OutboxMessage,
    Role,
    User,
)
from app.notifications import mail
from app.notifications.facts import local_time_named
from app.outbox.registry import handler


def _recipients(session: Session, expert_id: uuid.UUID) -> list[tuple[str, str]]:
    """(address, zone): the expert first, then active staff and admins, each once."""
    found: list[tuple[str, str]] = []
    profile = session.get(ExpertProfile, expert_id)
    if profile is not None:
        found.append((profile.email, profile.timezone))
    for email, zone in session.execute(
        select(User.email, User.timezone)
        .where(User.is_active.is_(True), User.role.in_([Role.staff, Role.admin]))
        .order_by(User.email)
    ):
        if email not in {a for a, _ in found}:
            found.append((email, zone))
    return found


def _send_each(
    row: OutboxMessage, to: list[tuple[str, str]], subject: str, text: Callable[[str], str]
) -> None:
    for n, (address, zone) in enumerate(to):
        mail.send(
            mail.build_message(
                to=address,
                subject=subject,
                text=text(zone),
                message_id=mail.stable_message_id(f"outbox-{row.id}-{n}"),
            )
        )


@handler(UNREADABLE_KIND)
def send_unreadable(session: Session, row: OutboxMessage) -> None:
    connection = session.get(CalendarConnection, uuid.UUID(row.params["connection_id"]))
    if connection is None or connection.failing_since is None:
        return  # removed, or readable again: nothing to say
    profile = session.get(ExpertProfile, connection.expert_id)
    name = profile.public_name if profile else "an expert"
    base = get_settings().public_url.rstrip("/")

    def text(zone: str) -> str:
        since = local_time_named(connection.failing_since, zone)  # type: ignore[arg-type]
        last = (
            local_time_named(connection.last_success_at, zone)
            if connection.last_success_at
            else "never"
        )
        return (
            f'The calendar "{connection.label}" of {name} cannot be read since {since}.\n'
            f"Last error: {connection.last_error or '-'}\n"
            f"Last successful read: {last}\n\n"
            "Until it can be read again, slots keep the busy times of its last good read; "
            "events added since then are not seen, so a consultation may be booked over them.\n"
            "Check the address (a reset secret address stops working) or the app password, "
            f"then connect it again: {base}/expert/calendars\n"
        )

    _send_each(
        row,
        _recipients(session, connection.expert_id),
        f'Calendar cannot be read: "{connection.label}"',
        text,
    )


@handler(CONFLICT_KIND)
def send_conflict(session: Session, row: OutboxMessage) -> None:
    alert = session.get(CalendarConflictAlert, int(row.params["alert_id"]))
    if alert is None:
        return
    c = session.get(Consultation, alert.consultation_id)
    connection = session.get(CalendarConnection, alert.connection_id)
    if c is None or connection is None:
        return
    req = session.get(IntakeRequest, c.request_id)
    reference = req.reference if req is not None else "?"
    base = get_settings().public_url.rstrip("/")

    def text(zone: str) -> str:
        return (
            f'A new event in the calendar "{connection.label}" overlaps consultation '
            f"{reference} ({local_time_named(c.start_at, zone)}).\n\n"
            "Please check with the expert whether the consultation can still be held, and "
            f"move or cancel it if not: {base}/staff/cases/{reference}\n"
        )

    _send_each(
        row,
        _recipients(session, c.expert_id),
        f"Calendar conflict with consultation {reference}",
        text,
    )
