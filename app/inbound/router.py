"""HTTP edges of inbound e-mail.

- ``POST /webhooks/inbound-email``: a raw RFC 822 message as the body (any content type, e.g.
  ``message/rfc822``), authenticated by the shared secret ``INTAKE_INBOUND_WEBHOOK_SECRET`` in
  the ``X-Inbound-Secret`` header (compared in constant time; missing, wrong or not configured:
  401). Garbage answers 422 naming ``body``. The same message posted twice is taken once.
- ``PATCH /api/v1/cases/{reference}/triage`` (staff, admin): complete an e-mailed request's
  countries and language; it is routed then.
- ``GET /api/v1/cases/{reference}/attachments/{document_id}``: an attachment that arrived by
  e-mail, decrypted (staff, admins, the expert who accepted the request; others 404).
- ``GET /api/v1/inbound/set-aside`` (staff, admin): the mail set aside (auto-replies, list mail,
  bounces, read receipts, ...), newest first, with why; ``POST .../{set_aside_id}/open`` takes
  one as a person's message after all (a request, or a reply on its request).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from app.accounts.deps import CurrentUser, RequireStaff
from app.core.deps import SessionDep
from app.core.errors import AppError, error_responses
from app.core.security import constant_time_equals
from app.core.settings import get_settings
from app.core.validation import SafeStr
from app.flows import request as flows
from app.inbound import service, set_aside
from app.inbound.errors import WebhookUnauthorized
from app.inbound.schemas import (
    OpenedOut,
    SetAsideListOut,
    SetAsideOut,
    TakenOut,
    TriageIn,
    TriageOut,
)
from app.intake import records as intake
from app.models import SetAsideReason
from app.sla import service as sla
from app.sla.errors import CaseNotFound

#: Far above any message a mail provider forwards; the size limit proper is applied inside.
MAX_WEBHOOK_BODY = 128 * 1024 * 1024

DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "the file"},
    **error_responses(401, 404),
}

webhook_router = APIRouter(tags=["webhooks"])
triage_router = APIRouter(prefix="/api/v1/cases", tags=["inbound e-mail"])
set_aside_router = APIRouter(prefix="/api/v1/inbound", tags=["inbound e-mail"])


class MessageTooLarge(AppError):
    status_code = 413
    code = "too_large"


def _authorised(
    x_inbound_secret: Annotated[str | None, Header(include_in_schema=True)] = None,
) -> None:
    secret = get_settings().inbound_webhook_secret
    expected = secret.get_secret_value() if secret is not None else ""
    given = x_inbound_secret or ""
    # Compare even when unset or missing, so timing says nothing; an empty secret never passes.
    same = constant_time_equals(given.encode(), (expected or "\x00unset").encode())
    if not expected or not given or not same:
        raise WebhookUnauthorized()


async def _raw_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_WEBHOOK_BODY:
            raise MessageTooLarge(f"The message is larger than {MAX_WEBHOOK_BODY} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


@webhook_router.post(
    "/webhooks/inbound-email",
    response_model=TakenOut,
    responses=error_responses(401, 413, 422),
    summary="Take one e-mail (raw RFC 822 body), authenticated by the shared secret",
    dependencies=[Depends(_authorised)],
)
def inbound_email(session: SessionDep, raw: Annotated[bytes, Depends(_raw_body)]) -> TakenOut:
    outcome = flows.inbound_message(session, raw, via="webhook")
    return TakenOut(action=outcome.action, reason=outcome.reason)


@triage_router.patch(
    "/{reference}/triage",
    response_model=TriageOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Complete an e-mailed request's countries and language; it is routed then",
)
def complete_triage(
    reference: SafeStr, body: TriageIn, session: SessionDep, user: RequireStaff
) -> TriageOut:
    req = intake.get_by_reference(session, reference)
    if req is None:
        raise CaseNotFound()
    flows.complete_email_request(
        session,
        req,
        country_of_origin=body.country_of_origin,
        country_of_residence=body.country_of_residence,
        language=body.language,
        by_user=user,
    )
    return TriageOut(
        reference=req.reference,
        country_of_origin=req.country_of_origin,
        country_of_residence=req.country_of_residence,
        language=req.language,
        region_code=req.region_code,
        assigned_expert_id=str(req.assigned_expert_id) if req.assigned_expert_id else None,
        sla_state=intake.current_sla(req),
    )


@triage_router.get(
    "/{reference}/attachments/{document_id}",
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
    summary="Download an attachment that arrived by e-mail (decrypted)",
)
def download_attachment(
    reference: SafeStr, document_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> Response:
    req = sla.case_for(session, reference, user)
    found = service.attachment(session, req, document_id)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in found.filename)[-120:]
    return Response(
        content=found.data,
        media_type=found.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{safe or "attachment"}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@set_aside_router.get(
    "/set-aside",
    response_model=SetAsideListOut,
    responses=error_responses(401, 403, 422),
    summary="Mail set aside (auto-replies, list mail, bounces, read receipts, ...), with why",
    description="Newest first. The sender is masked (first letter and domain); each entry is "
    "deleted `INTAKE_INBOUND_SET_ASIDE_DAYS` after it arrived.",
)
def list_set_aside(
    _user: RequireStaff,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    reason: SetAsideReason | None = None,
    cursor: Annotated[SafeStr | None, Query(max_length=200)] = None,
) -> SetAsideListOut:
    found = set_aside.listing(session, limit=limit, reason=reason, cursor=cursor)
    return SetAsideListOut(
        items=[SetAsideOut.model_validate(item, from_attributes=True) for item in found.items],
        next_cursor=found.next_cursor,
        retention_days=found.retention_days,
    )


@set_aside_router.post(
    "/set-aside/{set_aside_id}/open",
    response_model=OpenedOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Take a set-aside message as a person's mail: a new request, or a reply on its own",
    description="From its encrypted copy. A new request's clock runs from when the mailbox "
    "received the message; no acknowledgement is sent. `409` when it was opened already, is "
    "our own mail, or no copy was kept.",
)
def open_set_aside(set_aside_id: uuid.UUID, user: RequireStaff, session: SessionDep) -> OpenedOut:
    outcome = flows.open_set_aside(session, set_aside_id, user)
    return OpenedOut(action=outcome.action, reference=outcome.reference or "")
