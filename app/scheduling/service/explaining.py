"""Why is a time not offered? The explainer (``app/scheduling/explain.py``) over the inputs the
listing loads (``_load_experts``: availability, bookings, absences, calendar busy times), for a
request's expert or its pool, or for one expert."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.calendars import busy as calendar_busy
from app.core.time import now
from app.models import IntakeRequest
from app.scheduling import explain
from app.scheduling.service.common import _AROUND, _load_experts, _target


@dataclass(frozen=True)
class ExpertAnswer:
    expert_id: uuid.UUID
    expert_name: str
    explanation: explain.Explanation
    calendars: dict[uuid.UUID, str]  # calendar_busy reasons' source -> label


def explain_time(
    session: Session,
    expert_ids: list[uuid.UUID],
    at: dt.datetime,
    *,
    zone: str | None = None,
) -> list[ExpertAnswer]:
    current = now()
    experts = _load_experts(session, expert_ids, at - _AROUND, at + _AROUND)
    labels = calendar_busy.labels(session, [e.row.expert_id for e in experts])
    answers = []
    for e in experts:
        member = e.member()
        answers.append(
            ExpertAnswer(
                expert_id=e.row.expert_id,
                expert_name=e.profile.public_name,
                explanation=explain.explain(
                    member.availability,
                    member.bookings,
                    member.unavailable,
                    member.busy,
                    now_utc=current,
                    expert_id=e.row.expert_id,
                    start_utc=at,
                    horizon_timezone=zone,
                ),
                calendars=labels,
            )
        )
    return answers


def explain_for_request(
    session: Session, req: IntakeRequest, at: dt.datetime, *, zone: str | None = None
) -> list[ExpertAnswer]:
    """For the request's expert, or every expert of its pool."""
    ids, _pool = _target(session, req)
    return explain_time(session, ids, at, zone=zone)
