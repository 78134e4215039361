"""The stored busy times of experts' calendars as the slot engine's input: a leaf over the
models (scheduling reads it; it reads nothing of scheduling but the engine's value type)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import CalendarBusy, CalendarConnection
from app.scheduling.slots import BusyTime


def busy_for(
    session: Session, expert_ids: Sequence[uuid.UUID], low: dt.datetime, high: dt.datetime
) -> dict[uuid.UUID, list[BusyTime]]:
    """Each expert's calendar busy times overlapping ``[low, high)``, by start; ``source`` is
    the calendar connection's id."""
    found: dict[uuid.UUID, list[BusyTime]] = {i: [] for i in expert_ids}
    if not expert_ids:
        return found
    rows = session.execute(
        select(
            CalendarBusy.expert_id,
            CalendarBusy.starts_at,
            CalendarBusy.ends_at,
            CalendarBusy.connection_id,
        )
        .where(
            CalendarBusy.expert_id.in_(list(expert_ids)),
            CalendarBusy.starts_at < high,
            CalendarBusy.ends_at > low,
        )
        .order_by(CalendarBusy.starts_at)
    )
    for expert_id, start, end, connection_id in rows:
        found.setdefault(expert_id, []).append(BusyTime(start, end, connection_id))
    return found


def labels(session: Session, expert_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Connection id -> the calendar's label, for these experts."""
    rows = session.execute(
        select(CalendarConnection.id, CalendarConnection.label).where(
            CalendarConnection.expert_id.in_(list(expert_ids))
        )
    )
    return {i: label for i, label in rows}
