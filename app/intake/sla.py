"""The first-response SLA state, computed (never stored) from four instants: the deadline
(``first_response_due_at``), the first response (``first_responded_at``), the end of the request
(``ended_at``) and the clock.

- ``met``: a person responded at or before the deadline (whatever happened to the request).
- ``ended``: not met, and the request ended (withdrawn, spam, declined, closed, or merged into
  another) strictly before the deadline: the promise never fell due, so there is no outcome;
  it is left out of breach counts, shares and gauges, and reports count it apart.
- ``breached``: not met and not ``ended``, and a response came late, or the request ended at or
  after the deadline, or the clock is at or past the deadline.
- ``due_soon``: none of the above, and less than ``due_soon`` left.
- ``awaiting``: on track.

A request that ends exactly at its deadline is ``breached``: at that instant an unanswered request
already is (``current >= due_at``), and ending it cannot undo that.

The rule is written twice, in Python (``sla_state``, for one request in hand) and as a SQL
``CASE`` (``sla_state_sql``, for filters, counts and figures over many rows);
``tests/sla/test_sla_rule.py`` proves the two agree on PostgreSQL and SQLite over generated cases,
boundaries included.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ColumnElement, case
from sqlalchemy.orm import QueryableAttribute


class SlaState(enum.StrEnum):
    """The first-response state: ``awaiting`` (on track), ``due_soon`` (less than the due-soon
    margin left), ``breached`` (answered late, or unanswered at or past the deadline, including
    a request that ended at or after it), ``met`` (answered at or before the deadline),
    ``ended`` (the request ended before its deadline without a response: no outcome)."""

    awaiting = "awaiting"
    due_soon = "due_soon"
    breached = "breached"
    met = "met"
    ended = "ended"


#: The states an open (not ended) request can be in: ``ended`` needs an end.
OPEN_STATES: tuple[SlaState, ...] = (
    SlaState.awaiting,
    SlaState.due_soon,
    SlaState.breached,
    SlaState.met,
)


def sla_state(
    *,
    due_at: dt.datetime,
    responded_at: dt.datetime | None,
    ended_at: dt.datetime | None,
    current: dt.datetime,
    due_soon: dt.timedelta,
) -> SlaState:
    if responded_at is not None and responded_at <= due_at:
        return SlaState.met
    if ended_at is not None and ended_at < due_at:
        return SlaState.ended
    if responded_at is not None or ended_at is not None:
        # Answered late, or ended at or after the deadline without a response: the clock of
        # an ended request stopped at its end, so ``current`` no longer matters.
        return SlaState.breached
    if current >= due_at:
        return SlaState.breached
    if due_at - current < due_soon:
        return SlaState.due_soon
    return SlaState.awaiting


def sla_state_sql(
    due_at: ColumnElement[dt.datetime] | QueryableAttribute[dt.datetime],
    responded_at: ColumnElement[dt.datetime | None] | QueryableAttribute[dt.datetime | None],
    ended_at: ColumnElement[dt.datetime | None] | QueryableAttribute[dt.datetime | None],
    *,
    current: dt.datetime,
    due_soon: dt.timedelta,
) -> ColumnElement[str]:
    """The same rule as ``sla_state`` as a SQL ``CASE``. ``current + due_soon`` is computed
    here, in Python: no interval arithmetic in SQL, which SQLite lacks for stored text."""
    return case(
        (responded_at.is_not(None) & (responded_at <= due_at), SlaState.met.value),
        (ended_at.is_not(None) & (ended_at < due_at), SlaState.ended.value),
        (responded_at.is_not(None) | ended_at.is_not(None), SlaState.breached.value),
        (due_at <= current, SlaState.breached.value),
        (due_at < current + due_soon, SlaState.due_soon.value),
        else_=SlaState.awaiting.value,
    )
