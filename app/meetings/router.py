"""HTTP edges of meetings.

- ``POST /webhooks/zoom``: Zoom's event subscription endpoint. No session, no CSRF; the
  signature over the raw body is the authentication. The body is capped here (64 KB), the
  event stored and queued, and the answer (204) sent without calling Zoom.
- ``GET /api/v1/expert/consultations/{id}/host-link``: the expert's fresh link to start the
  meeting as host (Zoom's ``start_url`` expires, so it is read from Zoom each time and never
  stored).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.accounts.deps import RequireExpert
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.settings import get_settings
from app.core.time import now
from app.core.webhook_body import LimitedBody
from app.meetings import webhooks
from app.meetings.errors import MalformedZoomEvent
from app.meetings.events import record_webhook
from app.meetings.host import fresh_host_link

MAX_WEBHOOK_BODY = 64 * 1024

webhook_router = APIRouter(tags=["webhooks"])
host_link_router = APIRouter(prefix="/api/v1/expert", tags=["expert: my desk"])


# The exact bytes Zoom signed.
RawBody = Annotated[bytes, Depends(LimitedBody(MAX_WEBHOOK_BODY))]


@webhook_router.post(
    "/webhooks/zoom",
    status_code=204,
    summary="Zoom event subscription endpoint",
    description="Signed with `x-zm-signature` over the raw body and `x-zm-request-timestamp` "
    "(at most 5 minutes old). Answers `endpoint.url_validation` with 200 and the encrypted "
    "token; any other event is stored and processed later (204). A delivery seen before "
    "answers 200 and is ignored. Bad or stale signature: 401.",
    responses=error_responses(400, 401, 413),
)
def zoom_webhook(request: Request, body: RawBody, session: SessionDep) -> Response:
    token = get_settings().zoom_webhook_secret_token
    secret = token.get_secret_value() if token else ""
    webhooks.verify_signature(
        secret,
        request.headers.get(webhooks.TIMESTAMP_HEADER),
        request.headers.get(webhooks.SIGNATURE_HEADER),
        body,
        now(),
    )
    event = webhooks.parse_event(body)
    if event.is_url_validation:
        if event.plain_token is None:
            raise MalformedZoomEvent("endpoint.url_validation without payload.plainToken")
        return JSONResponse(webhooks.url_validation_response(secret, event.plain_token))
    if record_webhook(session, event) is None:
        return Response(status_code=200)  # delivered before: acknowledged, ignored
    return Response(status_code=204)


class HostLinkOut(BaseModel):
    provider: str
    url: str


@host_link_router.get(
    "/consultations/{consultation_id}/host-link",
    response_model=HostLinkOut,
    summary="A fresh link to start my consultation's meeting as host",
    description="Read from the provider now (Zoom's start link expires after about two hours, "
    "so it is never stored): open it shortly before the consultation. Only the consultation's "
    "expert; anyone else gets 404. `409 meeting_pending` while the link still follows, "
    "`409 meeting_gone` if the meeting was deleted in Zoom, `503` if Zoom does not answer.",
    responses=error_responses(401, 403, 404, 409, 503),
)
def host_link(
    consultation_id: uuid.UUID, session: SessionDep, expert: RequireExpert, response: Response
) -> HostLinkOut:
    response.headers["Cache-Control"] = "no-store"
    provider, url = fresh_host_link(session, consultation_id, expert)
    return HostLinkOut(provider=provider, url=url)
