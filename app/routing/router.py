"""Staff's routing of a request (``/api/v1/requests/{reference}/...``): its decisions and
assignments, a reassignment, routing it now."""

from __future__ import annotations

from fastapi import APIRouter

from app.accounts.deps import RequireStaff
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.validation import SafeStr
from app.experts import queries as expert_queries
from app.experts.errors import CaseNotFound
from app.flows import request as flows
from app.models import IntakeRequest
from app.routing import assignments
from app.routing import queries as routing_queries
from app.routing.schemas import ReassignIn, RoutingOut

router = APIRouter(prefix="/api/v1/requests", tags=["staff: routing"])


def _request(session: SessionDep, reference: str) -> IntakeRequest:
    req = expert_queries.request_by_reference(session, reference)
    if req is None:
        raise CaseNotFound("No such request.")
    return req


@router.get(
    "/{reference}/routing",
    response_model=RoutingOut,
    summary="Routing of a request: every decision with its reasons, every assignment",
    responses=error_responses(401, 403, 404),
)
def routing(reference: SafeStr, session: SessionDep, _staff: RequireStaff) -> RoutingOut:
    return routing_queries.routing_out(session, _request(session, reference))


@router.post(
    "/{reference}/reassign",
    response_model=RoutingOut,
    summary="Reassign: to a named expert, or to the next candidate",
    responses=error_responses(401, 403, 404, 409, 422),
)
def reassign(
    reference: SafeStr, body: ReassignIn, session: SessionDep, staff: RequireStaff
) -> RoutingOut:
    req = _request(session, reference)
    flows.reassign(session, req, by=staff, expert_id=body.expert_id, reason=body.reason)
    return routing_queries.routing_out(session, req)


@router.post(
    "/{reference}/route",
    response_model=RoutingOut,
    summary="Route a request now (e.g. one completed from an e-mail, or waiting in triage)",
    responses=error_responses(401, 403, 404),
)
def route_now(reference: SafeStr, session: SessionDep, staff: RequireStaff) -> RoutingOut:
    req = _request(session, reference)
    flows.route_now(session, req, actor=assignments.actor_of(staff))
    return routing_queries.routing_out(session, req)
