"""The first-response SLA state, computed (never stored) from three instants.

- ``met``: a person responded by the due time.
- ``breached``: the due time passed without a response, or the response came late.
- ``due_soon``: no response yet, and less than ``due_soon`` left.
- ``awaiting``: no response yet, on track.
"""

from __future__ import annotations

import datetime as dt
import enum


class SlaState(enum.StrEnum):
    awaiting = "awaiting"
    due_soon = "due_soon"
    breached = "breached"
    met = "met"


def sla_state(
    *,
    due_at: dt.datetime,
    responded_at: dt.datetime | None,
    current: dt.datetime,
    due_soon: dt.timedelta,
) -> SlaState:
    if responded_at is not None:
        return SlaState.met if responded_at <= due_at else SlaState.breached
    if current >= due_at:
        return SlaState.breached
    if due_at - current < due_soon:
        return SlaState.due_soon
    return SlaState.awaiting
