"""Request figures for ``/metrics``: counts by status and first-response SLA, from the database
(the same answer whichever API process is scraped)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.intake.sla import SlaState, sla_state_sql
from app.intake.status import FINAL
from app.models import IntakeRequest

Figure = tuple[str, str, list[str], list[tuple[list[str], float]]]


def request_figures(session: Session) -> list[Figure]:
    r = IntakeRequest
    current = now()
    by_status = session.execute(select(r.status, func.count()).group_by(r.status)).all()

    # Open as the staff queue counts it: not ended, not merged into another request.
    open_ = and_(r.status.not_in(list(FINAL)), r.merged_into_id.is_(None))
    state = sla_state_sql(
        r.first_response_due_at,
        r.first_responded_at,
        r.ended_at,
        current=current,
        due_soon=dt.timedelta(minutes=get_settings().sla_due_soon_minutes),
    )
    open_by_sla = session.execute(select(state, func.count()).where(open_).group_by(state)).all()
    # One grouped pass over every request, by the same rule as every other view.
    all_time = {
        str(s): int(n) for s, n in session.execute(select(state, func.count()).group_by(state))
    }
    return [
        (
            "intake_requests",
            "Requests by status",
            ["status"],
            [([str(s.value if hasattr(s, "value") else s)], float(n)) for s, n in by_status],
        ),
        (
            "intake_open_requests_by_sla",
            "Open requests by first-response SLA state",
            ["sla_state"],
            [([str(s)], float(n)) for s, n in open_by_sla],
        ),
        (
            "intake_sla_breaches",
            "Requests whose first response came late or is overdue, including those that ended "
            "at or after their deadline without one (all time)",
            [],
            [([], float(all_time.get(SlaState.breached.value, 0)))],
        ),
        (
            "intake_sla_ended",
            "Requests that ended before their deadline without a first response: no SLA "
            "outcome, left out of the breaches (all time)",
            [],
            [([], float(all_time.get(SlaState.ended.value, 0)))],
        ),
    ]
