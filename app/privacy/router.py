"""Export and erasure: admins for any request, the requester for their own (link token)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import Response

from app.accounts.deps import RequireAdmin
from app.audit import service as audit
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.validation import SafeStr
from app.flows import request as flows
from app.intake.deps import RequesterRequest
from app.models import IntakeRequest, RequestStatus
from app.privacy import service
from app.privacy.schemas import ErasedOut, EraseIn
from app.privacy.service import ErasureReason

admin_router = APIRouter(prefix="/api/v1/admin/requests", tags=["admin: data rights"])
requester_router = APIRouter(prefix="/api/v1/requests", tags=["requests (public)"])

_JSON_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}}, "description": "the export file"}
}


def _download(req: IntakeRequest, data: dict[str, object]) -> Response:
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="request-{req.reference}.json"',
            "Cache-Control": "no-store",
        },
    )


def _erased(req: IntakeRequest, cleared: dict[str, int]) -> ErasedOut:
    assert req.erased_at is not None
    return ErasedOut(reference=req.reference, erased_at=req.erased_at, cleared=cleared)


@admin_router.get(
    "/{reference}/export",
    response_class=Response,
    summary="Export everything held about a request (JSON download, decrypted)",
    description="For a formal access request: request fields, personal data, the full history, "
    "contacts with their notes and who logged them, messages, internal notes, consultations and "
    "attachments (base64). Recorded in the audit trail.",
    responses={**_JSON_DOWNLOAD, **error_responses(401, 403, 404)},
)
def admin_export(reference: SafeStr, session: SessionDep, admin: RequireAdmin) -> Response:
    req = service.get_request(session, reference)
    actor, role = audit.user_actor(admin)
    data = service.export_request(session, req, for_admin=True, actor=actor, actor_role=role)
    return _download(req, data)


@admin_router.post(
    "/{reference}/erase",
    response_model=ErasedOut,
    summary="Erase a request's personal data",
    description="Destroys the request's data key and clears every copy of its personal data "
    "(database, outbox, documents, mail copies). Dates, status, country, region and SLA "
    "figures remain for statistics. Asking again is fine.",
    responses=error_responses(401, 403, 404, 422),
)
def admin_erase(
    reference: SafeStr,
    session: SessionDep,
    admin: RequireAdmin,
    body: Annotated[EraseIn | None, Body()] = None,
) -> ErasedOut:
    req = service.get_request(session, reference)
    reason = (body or EraseIn()).reason
    return _erased(req, flows.decline_and_erase(session, req, admin=admin, reason=reason))


@requester_router.get(
    "/{reference}/export",
    response_class=Response,
    summary="Download everything held about my request",
    description="My details, history, contacts with me, messages, consultations and "
    "attachments (base64). The organisation's internal notes, notes on contacts and staff ids "
    "are not in it (an admin's export for a formal access request holds them). Needs the link "
    "token (`Authorization: Bearer rl_...`); another request's token, or none, is `404`.",
    responses={**_JSON_DOWNLOAD, **error_responses(404)},
)
def requester_export(req: RequesterRequest, session: SessionDep) -> Response:
    return _download(req, service.export_request(session, req))


@requester_router.post(
    "/{reference}/erase",
    response_model=ErasedOut,
    summary="Withdraw my request and erase my data",
    description="Withdraws the request if it is still open, then erases its personal data. "
    "Afterwards the link shows only that the request was erased. Needs the link token.",
    responses=error_responses(404),
)
def requester_erase(req: RequesterRequest, session: SessionDep) -> ErasedOut:
    if req.status not in (RequestStatus.withdrawn, *service.ENDED, RequestStatus.closed):
        flows.withdraw(session, req)
    cleared = service.erase_request(
        session, req, by="requester", reason=ErasureReason.requester_asked, actor_role="requester"
    )
    return _erased(req, cleared)
