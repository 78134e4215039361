"""Request figures for ``/metrics``: counts by status and first-response SLA, from the database
(the same answer whichever API process is scraped)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.intake.sla import sla_state_sql
from app.intake.status import FINAL
from app.models import IntakeRequest

Figure = tuple[str, str, list[str], list[tuple[list[str], float]]]


def request_figures(session: Session) -> list[Figure]:
    r = IntakeRequest
    current = now()
    by_status = session.execute(select(r.status, func.count()).group_by(r.status)).all()

    open_ = r.status.not_in(list(FINAL))
    waiting = r.first_responded_at.is_(None)
    state = sla_state_sql(
        r.first_response_due_at,
        r.first_responded_at,
        current=current,
        due_soon=dt.timedelta(minutes=get_settings().sla_due_soon_minutes),
    )
    open_by_sla = session.execute(select(state, func.count()).where(open_).group_by(state)).all()
    breached_total = session.scalar(
        select(func.count()).where(
            or_(
                and_(waiting, r.first_response_due_at <= current),
                r.first_responded_at > r.first_response_due_at,
            )
        )
    )
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
            "Requests whose first response came late or is overdue (all time)",
            [],
            [([], float(breached_total or 0))],
        ),
    ]
