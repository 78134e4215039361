"""The public form (``POST /api/v1/requests``) and the requester's own request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, status
from fastapi.responses import JSONResponse

from app.core.database import session_scope
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.flows import request as flows
from app.intake import service
from app.intake.deps import RequesterRequest
from app.intake.errors import IdempotencyKeyInvalid
from app.intake.schemas import Accepted, RecoverIn, RequestView, SubmitIn, SubmitOut
from app.intake.throttle import limit_submissions

router = APIRouter(prefix="/api/v1/requests", tags=["requests (public)"])

# Routes whose body is limited to INTAKE_MAX_REQUEST_BODY_BYTES (see app/main.py).
LIMITED_ROUTES = {("POST", "/api/v1/requests"), ("POST", "/api/v1/requests/recover")}


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not (1 <= len(value) <= 200) or not value.isascii() or not value.isprintable():
        raise IdempotencyKeyInvalid()
    return value


@router.post(
    "",
    response_model=SubmitOut,
    status_code=status.HTTP_201_CREATED,
    summary="Submit the request form",
    description="Stores the request, queues the acknowledgement e-mail and starts the "
    "first-response clock. `access_token` is shown only in this reply. With an "
    "`Idempotency-Key` header, sending the same form again returns the first reply; the same "
    "key with a different form is `422`. Bodies over 64 KB are `413`; malformed JSON `400`. "
    "Too many submissions from one address (`INTAKE_SUBMIT_RATE_LIMIT` per "
    "`INTAKE_SUBMIT_RATE_WINDOW_MINUTES`, shared with the /apply page) are `429` with "
    "`Retry-After`.",
    responses=error_responses(400, 413, 422, 429),
    dependencies=[Depends(limit_submissions)],
)
def submit(
    body: SubmitIn,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = _idempotency_key(idempotency_key)
    # The busiest route opens its transaction itself (session_scope commits, as get_session
    # does): a session dependency costs two more hops between the event loop and a thread.
    with session_scope() as session:
        reply = service.submit(session, body, idempotency_key=key)
    return JSONResponse(reply, status_code=status.HTTP_201_CREATED)


@router.post(
    "/recover",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask for the link again",
    description="Always the same `202`, whether or not reference and address match; the link "
    "goes only to the address stored with the request.",
    responses=error_responses(413, 422),
)
def recover(body: RecoverIn, session: SessionDep) -> Accepted:
    service.recover_link(session, body.reference, body.email)
    return Accepted(
        detail="If the reference and the address match a request, the link is on its way to "
        "that address."
    )


@router.get(
    "/{reference}",
    response_model=RequestView,
    summary="The requester's own request",
    description="Needs the link token (`Authorization: Bearer rl_...`); a wrong or missing "
    "token is `404`, as is an unknown reference.",
    responses=error_responses(404),
)
def get_own(req: RequesterRequest, session: SessionDep) -> RequestView:
    return service.requester_view(session, req)


@router.post(
    "/{reference}/withdraw",
    response_model=RequestView,
    summary="Withdraw my request",
    description="Sets the status to `withdrawn` (asking twice is fine). A request that is "
    "closed, declined or marked spam answers `409` naming the allowed moves.",
    responses=error_responses(404, 409),
)
def withdraw(req: RequesterRequest, session: SessionDep) -> RequestView:
    return service.requester_view(session, flows.withdraw(session, req))
