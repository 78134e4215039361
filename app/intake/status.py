"""The one table of allowed status moves of a request (every issue that moves a status uses it).

    new -> in_progress -> consultation_scheduled -> consultation_held -> report_ordered -> closed

- A consultation may be booked from ``new`` or ``in_progress``; a cancelled consultation goes
  back to ``in_progress``.
- ``in_progress`` and ``consultation_held`` may close without a report (e.g. only a sample
  report or a CV was asked for).
- Exits from every open status: ``declined`` and ``spam`` (staff), ``withdrawn`` (the requester).
- ``closed``, ``declined``, ``spam`` and ``withdrawn`` are final.
"""

from __future__ import annotations

from app.core.errors import Conflict
from app.models import RequestStatus as S

EXITS: frozenset[S] = frozenset({S.declined, S.spam, S.withdrawn})
FINAL: frozenset[S] = frozenset({S.closed, S.declined, S.spam, S.withdrawn})

TRANSITIONS: dict[S, frozenset[S]] = {
    S.new: frozenset({S.in_progress, S.consultation_scheduled}) | EXITS,
    S.in_progress: frozenset({S.consultation_scheduled, S.report_ordered, S.closed}) | EXITS,
    S.consultation_scheduled: frozenset({S.consultation_held, S.in_progress}) | EXITS,
    S.consultation_held: frozenset({S.report_ordered, S.closed}) | EXITS,
    S.report_ordered: frozenset({S.closed}) | EXITS,
    S.closed: frozenset(),
    S.declined: frozenset(),
    S.spam: frozenset(),
    S.withdrawn: frozenset(),
}


class IllegalTransition(Conflict):
    code = "illegal_status_change"


def allowed_moves(current: S) -> list[S]:
    order = list(S)
    return sorted(TRANSITIONS[current], key=order.index)


def can_move(current: S, target: S) -> bool:
    return target in TRANSITIONS[current]


def check_move(current: S, target: S) -> None:
    """Raise 409 naming the allowed moves when ``current -> target`` is not allowed."""
    if can_move(current, target):
        return
    allowed = [s.value for s in allowed_moves(current)]
    text = ", ".join(allowed) if allowed else "none (this status is final)"
    raise IllegalTransition(
        f"A request that is '{current.value}' cannot become '{target.value}'. "
        f"Allowed from here: {text}.",
        details={"from": current.value, "to": target.value, "allowed": allowed},
    )
