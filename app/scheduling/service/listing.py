"""The free slots of a request, as the requester sees them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.models import (
    ExpertAvailability,
    ExpertProfile,
    IntakeRequest,
)
from app.scheduling import slots
from app.scheduling.service.common import (
    _AROUND,
    DEFAULT_HORIZON_DAYS,
    _Expert,
    _free,
    _load_experts,
    _target,
    booked_consultation,
)


@dataclass
class SlotList:
    query: slots.SlotQuery
    expert_name: str | None
    pool: bool
    days: list[slots.LocalDay]


def _horizon_days(experts: Sequence[_Expert]) -> int:
    return max((e.row.horizon_days for e in experts), default=DEFAULT_HORIZON_DAYS)


def list_slots(
    session: Session,
    req: IntakeRequest,
    *,
    from_raw: str | None,
    to_raw: str | None,
    timezone_raw: str | None,
) -> SlotList:
    current = now()
    ids, pool = _target(session, req)
    # The horizon check needs the experts' horizons first; read their rows over a wide span.
    rows = session.scalars(
        select(ExpertAvailability.horizon_days).where(ExpertAvailability.expert_id.in_(ids))
    ).all()
    horizon = max(rows, default=DEFAULT_HORIZON_DAYS)
    query = slots.parse_slot_query(
        from_raw, to_raw, timezone_raw, now_utc=current, horizon_days=horizon
    )
    # The request's own booking does not hide the slots it could be moved to.
    own = booked_consultation(session, req)
    experts = _load_experts(
        session,
        ids,
        query.window_start_utc - _AROUND,
        query.window_end_utc + _AROUND,
        skip_consultation=own.id if own is not None else None,
        hold_of=req.id,  # the request's own hold does not hide its slot from it
        now_utc=current,
    )
    found = (
        _free(
            experts,
            current=current,
            window_start=query.window_start_utc,
            window_end=query.window_end_utc,
            zone=query.timezone,
        )
        if experts
        else []
    )
    name = experts[0].profile.public_name if experts and not pool else None
    if not pool and name is None and req.assigned_expert_id is not None:
        profile = session.get(ExpertProfile, req.assigned_expert_id)
        name = profile.public_name if profile else None
    days = slots.requester_view(found, query.timezone, query.from_date, query.to_date)
    return SlotList(query=query, expert_name=name, pool=pool, days=days)
