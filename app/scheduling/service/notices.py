"""The invites to both sides, as outbox rows (rendered at send time by the handlers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.models import (
    Consultation,
)
from app.outbox import service as outbox
from app.scheduling.service.common import INVITE_KIND, Event
from app.sendouts import service as sendouts


def send_invites(
    session: Session,
    c: Consultation,
    event: Event,
    *,
    experts: Iterable[uuid.UUID] | None = None,
    requester: bool = True,
) -> None:
    """Queue the invite to the requester and to the expert(s); rendered at send time from the
    consultation as it then is (an expert no longer on it gets a cancellation). The reminders
    follow every change (queued, moved, dropped).

    Every change raises ``ical_sequence``, so (consultation, sequence, person) names one
    notice: its dedup key keeps a change from being queued twice for anyone."""
    sendouts.sync_reminders(session, c)
    prefix = f"{INVITE_KIND}:{c.id}:{c.ical_sequence}"
    if requester:
        outbox.enqueue(
            session,
            INVITE_KIND,
            {"consultation_id": str(c.id), "to": "requester", "event": event},
            dedup_key=f"{prefix}:requester",
        )
    for expert_id in experts if experts is not None else [c.expert_id]:
        outbox.enqueue(
            session,
            INVITE_KIND,
            {
                "consultation_id": str(c.id),
                "to": "expert",
                "expert_id": str(expert_id),
                "event": event,
            },
            dedup_key=f"{prefix}:expert:{expert_id}",
        )
