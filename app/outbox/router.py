"""Dead letters for staff (``/api/v1/outbox``): what could not be delivered, with its error, and
a retry once the cause is fixed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.accounts.deps import RequireStaff
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.validation import DbId
from app.outbox import service
from app.outbox.schemas import DeadLetterOut, DeadLettersOut, RetryOut

router = APIRouter(prefix="/api/v1/outbox", tags=["staff: outbox"])


@router.get(
    "/dead-letters",
    response_model=DeadLettersOut,
    summary="Messages that could not be delivered",
    description="Outbox rows that used up their attempts or failed permanently (e.g. `550 no "
    "such user`), newest first, with the last error. Rows hold ids only.",
    responses=error_responses(401, 403),
)
def list_dead_letters(
    _user: RequireStaff,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeadLettersOut:
    rows = service.dead_letters(session, limit=limit)
    return DeadLettersOut(items=[DeadLetterOut.model_validate(r) for r in rows])


@router.post(
    "/{message_id}/retry",
    response_model=RetryOut,
    summary="Retry a dead-lettered message",
    description="Due again now, with its attempts starting over. `404` if there is no such row, "
    "`409` if it is not dead-lettered (pending, in flight or sent).",
    responses=error_responses(401, 403, 404, 409),
)
def retry_dead_letter(message_id: DbId, _user: RequireStaff, session: SessionDep) -> RetryOut:
    return RetryOut.model_validate(service.retry_dead_letter(session, message_id))
