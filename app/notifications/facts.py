"""The facts of a request that staff and expert e-mails may carry, for every domain that
builds one (routing's offer and triage alert, the SLA reminders, the escalation chain, the
roster's alerts, their pages): the reference, the country, what was asked and the deadline,
never a name, a contact detail or the case summary (the domain's rule for staff and expert
mail)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import Country, IntakeRequest
from app.reference.service import iso_countries

WANTS = {
    "sample_report": "a sample report",
    "expert_cv": "an expert's CV",
    "consultation": "a free consultation",
}


def country_name(session: Session, code: str | None) -> str:
    if code is None:
        return "not known yet"  # an e-mailed request before staff complete it
    row = session.get(Country, code)
    return row.name if row is not None else iso_countries().get(code, code)


def case_facts(session: Session, req: IntakeRequest) -> dict[str, Any]:
    """The only facts of a request that staff and expert e-mails may carry."""
    return {
        "reference": req.reference,
        "country": f"{country_name(session, req.country_of_origin)} ({req.country_of_origin})",
        "wants": [WANTS.get(w, w) for w in req.wants],
        "deadline": req.deadline.isoformat() if req.deadline else "none given",
    }
