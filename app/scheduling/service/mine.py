"""An expert's own consultations, for their desk (newest first within upcoming, then past)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Consultation, IntakeRequest


def expert_consultations(
    session: Session, expert_id: uuid.UUID, *, ending_after: dt.datetime, limit: int = 200
) -> Sequence[tuple[Consultation, str]]:
    """This expert's consultations that end after ``ending_after``, soonest first, with the
    request's reference. Nobody else's: the expert id is the filter."""
    rows = session.execute(
        select(Consultation, IntakeRequest.reference)
        .join(IntakeRequest, IntakeRequest.id == Consultation.request_id)
        .where(Consultation.expert_id == expert_id, Consultation.end_at > ending_after)
        .order_by(Consultation.start_at, Consultation.id)
        .limit(limit)
    ).all()
    return [(c, ref) for c, ref in rows]
