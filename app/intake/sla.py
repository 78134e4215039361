"""The first-response SLA state, computed (never stored) from three instants.

- ``met``: a person responded by the due time.
- ``breached``: the due time passed without a response, or the response came late.
- ``due_soon``: no response yet, and less than ``due_soon`` left.
- ``awaiting``: no response yet, on track.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ColumnElement, case
from sqlalchemy.orm import QueryableAttribute


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


def sla_state_sql(
    due_at: ColumnElement[dt.datetime] | QueryableAttribute[dt.datetime],
    responded_at: ColumnElement[dt.datetime | None] | QueryableAttribute[dt.datetime | None],
    *,
    current: dt.datetime,
    due_soon: dt.timedelta,
) -> ColumnElement[str]:
    """The same rule as ``sla_state`` as a SQL ``CASE`` (for filters, counts and figures)."""
    return case(
        (responded_at.is_not(None) & (responded_at <= due_at), SlaState.met.value),
        (responded_at.is_not(None), SlaState.breached.value),
        (due_at <= current, SlaState.breached.value),
        (due_at < current + due_soon, SlaState.due_soon.value),
        else_=SlaState.awaiting.value,
    )
