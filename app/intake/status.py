"""The one table of allowed status moves of a request (every issue that moves a status uses it).

    new -> in_progress -> consultation_scheduled -> consultation_held -> report_ordered -> closed

- A consultation may be booked from ``new`` or ``in_progress``; a cancelled consultation goes
  back to ``in_progress``.
- ``in_progress`` and ``consultation_held`` may close without a report (e.g. only a sample
  report or a CV was asked for).
- Exits from every open status: ``declined`` and ``spam`` (staff), ``withdrawn`` (the requester).
- ``closed``, ``declined``, ``spam`` and ``withdrawn`` are final.

A request **ends** when it reaches a final status or is merged into another request, whichever
comes first: ``ended_at`` holds that instant (the SLA rule reads it). No move leaves a final
status, so the only way back is undoing a merge: ``ended_at`` is then cleared, or set back to
the instant of the final status the request reached meanwhile (``reopened_end``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import Conflict
from app.models import IntakeRequest, RequestHistory
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


def mark_ended(req: IntakeRequest, at: dt.datetime) -> None:
    """The request ended at ``at`` unless it had ended already (the earlier end stands)."""
    if req.ended_at is None or at < req.ended_at:
        req.ended_at = at


def final_status_at(session: Session, req: IntakeRequest) -> dt.datetime | None:
    """When the request reached its current status, if that is final (from its history)."""
    if req.status not in FINAL:
        return None
    return session.scalar(
        select(func.max(RequestHistory.at)).where(
            RequestHistory.request_id == req.id,
            RequestHistory.action == "status_changed",
            RequestHistory.to_status == req.status.value,
        )
    )


def reopened_end(session: Session, req: IntakeRequest) -> dt.datetime | None:
    """``ended_at`` after a merge is undone: the final status's instant, or None (open again).
    A final request without that history row (not written by this service) keeps its end."""
    if req.status not in FINAL:
        return None
    return final_status_at(session, req) or req.ended_at
