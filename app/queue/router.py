"""``GET /api/v1/queue``: the staff queue (staff and admins; experts 403).

Non-personal items only; names and contact details are on the case view
(``/api/v1/cases/{reference}``).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.accounts.deps import RequireStaff
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.validation import SafeDateTime, SafeStr
from app.intake.schemas import Want
from app.intake.sla import SlaState
from app.models import RequesterType, RequestSource, RequestStatus
from app.queue import service
from app.queue.errors import InvalidQueueParameter
from app.queue.repository import QueueFilters, QueueSort, QueueView
from app.queue.schemas import QueuePage

router = APIRouter(prefix="/api/v1/queue", tags=["queue"])

Codes = Annotated[list[SafeStr] | None, Query(max_length=50)]


def _codes(name: str, values: list[str] | None, *, length: int | None = None) -> list[str]:
    out = []
    for v in values or []:
        text = v.strip()
        if not text or len(text) > 64 or (length is not None and len(text) != length):
            raise InvalidQueueParameter(name, f"'{v[:70]}' is not a valid code")
        out.append(text.upper() if length == 2 else text)
    return out


@router.get(
    "",
    response_model=QueuePage,
    responses=error_responses(401, 403, 422),
    summary="The staff queue: filters, views, search, keyset pages, counts over open requests",
)
def queue(
    session: SessionDep,
    user: RequireStaff,
    view: QueueView = QueueView.all_open,
    status: Annotated[list[RequestStatus] | None, Query()] = None,
    sla_state: Annotated[
        list[SlaState] | None,
        Query(
            description="first-response state; `ended` (ended before the deadline without a "
            "response) only appears with `view=all`"
        ),
    ] = None,
    region: Codes = None,
    country: Codes = None,
    expert_id: uuid.UUID | None = None,
    unassigned: bool = False,
    wants: Annotated[list[Want] | None, Query()] = None,
    source: Annotated[list[RequestSource] | None, Query()] = None,
    requester_type: Annotated[list[RequesterType] | None, Query()] = None,
    language: Codes = None,
    due_within_minutes: Annotated[int | None, Query(ge=0, le=60 * 24 * 30)] = None,
    received_from: SafeDateTime | None = None,
    received_to: SafeDateTime | None = None,
    q: Annotated[
        SafeStr | None, Query(max_length=320, description="reference or exact e-mail")
    ] = None,
    sort: QueueSort = QueueSort.due,
    cursor: Annotated[SafeStr | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = 50,
    counts: bool = True,
) -> QueuePage:
    for name, value in (("received_from", received_from), ("received_to", received_to)):
        if value is not None and value.tzinfo is None:
            raise InvalidQueueParameter(name, "needs a time zone (e.g. 2026-11-23T12:00:00Z)")
    if received_from and received_to and received_from >= received_to:
        raise InvalidQueueParameter("received_to", "must be after received_from")
    if unassigned and expert_id is not None:
        raise InvalidQueueParameter("unassigned", "cannot be combined with expert_id")
    filters = QueueFilters(
        statuses=list(status or []),
        sla_states=list(sla_state or []),
        regions=_codes("region", region),
        countries=_codes("country", country, length=2),
        expert_id=expert_id,
        unassigned=unassigned,
        wants=[w.value for w in wants or []],
        sources=list(source or []),
        requester_types=list(requester_type or []),
        languages=_codes("language", language),
        due_within_minutes=due_within_minutes,
        received_from=received_from,
        received_to=received_to,
    )
    service.apply_search(session, filters, q)
    return service.queue_page(
        session,
        user_id=user.id,
        filters=filters,
        view=view,
        sort=sort,
        cursor=cursor,
        limit=limit,
        with_counts=counts,
    )
