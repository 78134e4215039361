"""An expert's availability: read and replace."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import (
    AvailabilityOverride,
    ExpertAvailability,
    ExpertProfile,
)
from app.scheduling.errors import (
    ExpertNotFound,
)
from app.scheduling.schemas import AvailabilityIn
from app.scheduling.service.common import engine_availability

log = structlog.get_logger(__name__)


def _profile(session: Session, expert_id: uuid.UUID) -> ExpertProfile:
    profile = session.get(ExpertProfile, expert_id)
    if profile is None:
        raise ExpertNotFound("No expert with this id.")
    return profile


def get_availability(
    session: Session, expert_id: uuid.UUID
) -> tuple[ExpertProfile, ExpertAvailability | None, Sequence[AvailabilityOverride]]:
    profile = _profile(session, expert_id)
    row = session.get(ExpertAvailability, expert_id)
    overrides = session.scalars(
        select(AvailabilityOverride)
        .where(AvailabilityOverride.expert_id == expert_id)
        .order_by(AvailabilityOverride.date)
    ).all()
    return profile, row, overrides


def put_availability(
    session: Session, expert_id: uuid.UUID, data: AvailabilityIn, *, actor: str
) -> tuple[ExpertProfile, ExpertAvailability, Sequence[AvailabilityOverride]]:
    """Replace the expert's availability. Existing bookings stay as they are (a booking outside
    the new hours is kept; staff or the expert reschedule it if they want)."""
    profile = _profile(session, expert_id)
    row = session.get(ExpertAvailability, expert_id, with_for_update=True)
    if row is None:
        row = ExpertAvailability(expert_id=expert_id)
        session.add(row)
    row.timezone = data.timezone or profile.timezone
    row.weekly = [r.model_dump() for r in data.weekly]
    row.slot_minutes = data.slot_minutes
    row.interval_minutes = data.interval_minutes
    row.buffer_before_minutes = data.buffer_before_minutes
    row.buffer_after_minutes = data.buffer_after_minutes
    row.min_notice_minutes = data.min_notice_minutes
    row.horizon_days = data.horizon_days
    row.max_per_day = data.max_per_day
    existing = {
        o.date: o
        for o in session.scalars(
            select(AvailabilityOverride).where(AvailabilityOverride.expert_id == expert_id)
        )
    }
    wanted = {o.date: o for o in data.overrides}
    for date, old in existing.items():
        if date not in wanted:
            session.delete(old)
    for date, new in wanted.items():
        ranges = [r.model_dump() for r in new.ranges]
        if date in existing:
            existing[date].ranges = ranges
        else:
            session.add(AvailabilityOverride(expert_id=expert_id, date=date, ranges=ranges))
    session.flush()
    # The engine validates what the schema cannot (e.g. the zone); fail before commit.
    _, stored, overrides = get_availability(session, expert_id)
    assert stored is not None
    engine_availability(stored, overrides)
    log.info("availability_saved", expert_id=str(expert_id), actor=actor)
    return profile, stored, overrides
