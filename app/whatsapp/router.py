"""HTTP edges of the WhatsApp channel.

- ``GET /webhooks/whatsapp``: Meta's verification handshake (``hub.mode=subscribe``,
  ``hub.verify_token`` equal to ``INTAKE_WHATSAPP_VERIFY_TOKEN``): the challenge as plain text,
  else 403.
- ``POST /webhooks/whatsapp``: every event. No session, no CSRF: ``X-Hub-Signature-256`` over the
  raw body with the app secret is the authentication (401 otherwise). The delivery is stored
  and acknowledged (200) at once; the worker does the work. A repeated delivery answers 200 too.
- ``POST /api/v1/cases/{reference}/whatsapp``: write to the requester on WhatsApp (staff,
  admins, the expert who accepted it): counts as the first response.
- ``GET /api/v1/cases/{reference}/whatsapp``: which may be sent now and why (the window).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse

from app.accounts.deps import CurrentUser
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.settings import get_settings
from app.core.validation import SafeStr
from app.core.webhook_body import LimitedBody
from app.sla import service as sla
from app.whatsapp import service, templates, webhooks
from app.whatsapp.schemas import WhatsAppReplyIn, WhatsAppReplyOut, WhatsAppWindowOut

MAX_WEBHOOK_BODY = 512 * 1024

webhook_router = APIRouter(tags=["webhooks"])
case_router = APIRouter(prefix="/api/v1/cases", tags=["whatsapp"])


# The exact bytes Meta signed.
RawBody = Annotated[bytes, Depends(LimitedBody(MAX_WEBHOOK_BODY))]


@webhook_router.get(
    "/webhooks/whatsapp",
    # Response, not PlainTextResponse: the challenge is text, a refusal the usual JSON error.
    response_class=Response,
    summary="Meta's webhook verification handshake",
    description="Answers `hub.challenge` when `hub.mode` is `subscribe` and `hub.verify_token` "
    "is ours (compared in constant time); else 403.",
    responses={
        200: {
            "description": "The challenge, as sent",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **error_responses(403),
    },
)
def verify(
    mode: Annotated[SafeStr | None, Query(alias="hub.mode", max_length=32)] = None,
    token: Annotated[SafeStr | None, Query(alias="hub.verify_token", max_length=256)] = None,
    challenge: Annotated[SafeStr | None, Query(alias="hub.challenge", max_length=256)] = None,
) -> PlainTextResponse:
    expected = get_settings().whatsapp_verify_token
    answer = webhooks.verify_subscription(
        expected.get_secret_value() if expected else "", mode, token, challenge
    )
    return PlainTextResponse(answer)


@webhook_router.post(
    "/webhooks/whatsapp",
    summary="WhatsApp Business events (messages and statuses)",
    description="Signed with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app "
    "secret). Stored and acknowledged at once (200); the worker takes the messages and "
    "statuses. Bad signature: 401; not a WhatsApp Business event: 400.",
    responses=error_responses(400, 401, 413),
)
def receive(request: Request, body: RawBody, session: SessionDep) -> Response:
    secret = get_settings().whatsapp_app_secret
    webhooks.verify_signature(
        secret.get_secret_value() if secret else "",
        request.headers.get(webhooks.SIGNATURE_HEADER),
        body,
    )
    webhooks.parse(body)  # refuse what is not a WhatsApp Business event (400), before storing
    service.receive(session, body)
    return Response(status_code=200)


@case_router.post(
    "/{reference}/whatsapp",
    response_model=WhatsAppReplyOut,
    status_code=201,
    summary="Write to the requester on WhatsApp",
    description="Free text (`text`) only inside the 24-hour window after the requester's last "
    "WhatsApp message (else 409 `whatsapp_window_closed`, naming `text` and why); a "
    "`template` at any time, in the requester's language (neutral for discreet requests). "
    "Sent through the outbox once; counts as the first response.",
    responses=error_responses(401, 404, 409, 422),
)
def reply(
    reference: SafeStr, payload: WhatsAppReplyIn, session: SessionDep, user: CurrentUser
) -> WhatsAppReplyOut:
    req = sla.case_for(session, reference, user)
    first = req.first_responded_at is None
    wm = service.reply(session, req, user, text=payload.text, template=payload.template)
    return WhatsAppReplyOut(
        id=wm.id,
        status=wm.status.value,
        template=wm.template,
        language=wm.language,
        queued_at=wm.at,
        counts_as_first_response=first,
    )


def _clock(value: dt.datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%H:%M") if value is not None else "-"


@case_router.get(
    "/{reference}/whatsapp",
    response_model=WhatsAppWindowOut,
    summary="What may be sent on WhatsApp now, and why",
    responses=error_responses(401, 404),
)
def window_state(reference: SafeStr, session: SessionDep, user: CurrentUser) -> WhatsAppWindowOut:
    req = sla.case_for(session, reference, user)
    w = service.window(session, req)
    try:
        zone = zoneinfo.ZoneInfo(user.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    if w.mode == "free_text":
        head = f"Free text until {_clock(w.until, zone)} ({zone.key})."
    elif w.mode == "templates_only":
        head = "Templates only."
    else:
        head = "WhatsApp is not available."
    return WhatsAppWindowOut(
        mode=w.mode,
        free_text_until=w.until if w.free_text else None,
        last_inbound_at=w.last_inbound_at,
        templates=list(templates.STAFF_CHOICES) if w.number else [],
        reason=w.reason_code,
        explanation=f"{head} {w.reason()}",
    )
