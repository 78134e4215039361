"""Where other domains' flows reach routing (kept small so intake can call it without pulling
the experts domain into its imports)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from app.experts import assignments
from app.intake.status import FINAL
from app.models import IntakeRequest, RequestSource
from app.roster import alerts as roster_alerts
from app.sendouts import service as sendouts

# Filled by the booking issue (app/scheduling/service/): called when a request ends (closed,
# declined, spam, withdrawn), so that a booked consultation is cancelled with it.
EndedHook = Callable[[Session, IntakeRequest], None]
ENDED_HOOKS: list[EndedHook] = []


def request_submitted(session: Session, req: IntakeRequest) -> None:
    """A new request from the form is routed by the worker within seconds of its submission
    (the ``intake.submitted`` outbox row, ``app/intake/service.py::process_submitted``).
    Requests that arrive by e-mail are routed when staff complete them (``route_now``)."""
    sendouts.request_submitted(session, req)  # documents after the wait (issue 8)
    roster_alerts.alert_if_uncovered(session, req)  # nobody on duty for the region (issue 13)
    if req.source == RequestSource.email:
        return
    assignments.route_safely(session, req, trigger="submitted")


def route_now(session: Session, req: IntakeRequest, *, actor: str) -> None:
    assignments.route_safely(session, req, trigger="staff_route", actor=actor)


def status_changed(session: Session, req: IntakeRequest) -> None:
    """A request that ended no longer holds a unit of its expert's capacity."""
    if req.status in FINAL:
        assignments.release(session, req, reason=f"request_{req.status.value}")
        for hook in ENDED_HOOKS:
            hook(session, req)
