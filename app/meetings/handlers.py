"""Outbox handlers of meetings: a stored Zoom webhook event applied to its consultation, the
staff alert when Zoom says a booked consultation's meeting was deleted outside the service, and
the admins' alert when a host nears Zoom's daily cap on meeting creates/updates.

Alerts carry a reference, a time, a count: never a requester's name or address.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.meetings.events import DELETED_ALERT_KIND, WEBHOOK_EVENT_KIND, apply_event
from app.meetings.usage import CAP_ALERT_KIND
from app.models import (
    Consultation,
    IntakeRequest,
    OutboxMessage,
    Role,
    User,
    ZoomWebhookEvent,
)
from app.notifications import dates, mail
from app.notifications.facts import when_for
from app.outbox.registry import PermanentFailure, handler


@handler(WEBHOOK_EVENT_KIND)
def process_webhook_event(session: Session, row: OutboxMessage) -> None:
    event = session.get(ZoomWebhookEvent, int(row.params["event_id"]), populate_existing=True)
    if event is None:
        raise PermanentFailure("webhook event is gone")
    apply_event(session, event)


def _people(session: Session, roles: list[Role]) -> list[tuple[str, tuple[str, str]]]:
    """(address, (zone, language)) of each active user with one of ``roles``, by address."""
    found = session.execute(
        select(User.email, User.timezone, User.language)
        .where(User.is_active.is_(True), User.role.in_(roles))
        .order_by(User.email)
    )
    return [(email, (zone, dates.language(lang.value))) for email, zone, lang in found]


def _send_each(
    row: OutboxMessage,
    to: list[tuple[str, tuple[str, str]]],
    subject: str,
    text: Callable[[tuple[str, str]], str],
) -> None:
    """One e-mail per person (Message-ID by position, as before), its times in words in their
    zone and language."""
    for n, (address, reader) in enumerate(to):
        mail.send(
            mail.build_message(
                to=address,
                subject=subject,
                text=text(reader),
                message_id=mail.stable_message_id(f"outbox-{row.id}-{n}"),
            )
        )


@handler(DELETED_ALERT_KIND)
def send_deleted_alert(session: Session, row: OutboxMessage) -> None:
    c = session.get(Consultation, uuid.UUID(row.params["consultation_id"]))
    if c is None:
        return
    req = session.get(IntakeRequest, c.request_id)
    reference = req.reference if req is not None else "?"

    def text(reader: tuple[str, str]) -> str:
        return (
            f"Zoom reports that the meeting of consultation {reference} "
            f"({when_for(c.start_at, reader)}) was deleted outside this service, while "
            "the consultation is still booked.\n\n"
            "The join link the requester and the expert received no longer works. Please "
            "arrange a new meeting with the expert, or cancel and rebook the consultation.\n\n"
            f"{get_settings().public_url}\n"
        )

    _send_each(
        row,
        _people(session, [Role.staff, Role.admin]),
        f"Zoom meeting deleted outside the service [{reference}]",
        text,
    )


@handler(CAP_ALERT_KIND)
def send_cap_alert(session: Session, row: OutboxMessage) -> None:
    p = row.params
    # Zoom counts per UTC day: the day and its reset are Zoom's, in UTC for everyone.
    text = (
        f"The Zoom user {p['host']} has had {p['count']} meeting creates/updates today "
        f"({p['day']}, UTC); Zoom allows {p['limit']} a day per user and refuses the rest "
        "until 00:00 UTC (the outbox then waits and retries).\n\n"
        "If this expert has many consultations to book or move today, consider spreading them "
        "over another Zoom user.\n"
    )
    _send_each(
        row,
        _people(session, [Role.admin]),
        f"Zoom daily meeting cap nearly reached ({p['count']}/{p['limit']})",
        lambda _reader: text,
    )
