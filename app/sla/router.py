"""``/api/v1/cases/{reference}/contacts``: log an outbound contact with the requester (the first
one stops the one-hour clock) and list them.

Staff and admins, and the expert who accepted the request; anyone else gets the same 404 as a
request that does not exist. Access is decided in a dependency, before the body is validated,
so a caller who may not see the case learns nothing from a 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from app.accounts.deps import CurrentUser
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.validation import SafeStr
from app.intake import service as intake
from app.intake.schemas import SlaOut
from app.models import IntakeRequest
from app.sla import service
from app.sla.schemas import ContactIn, ContactRecordedOut, ContactsOut

router = APIRouter(prefix="/api/v1/cases", tags=["first response"])


def _case(reference: SafeStr, session: SessionDep, user: CurrentUser) -> IntakeRequest:
    return service.case_for(session, reference, user)


#: The request, for staff, admins and the expert who accepted it (anyone else: 404).
CaseDep = Annotated[IntakeRequest, Depends(_case)]


def _sla(req: IntakeRequest) -> SlaOut:
    return intake.sla_out(req)


@router.post(
    "/{reference}/contacts",
    status_code=status.HTTP_201_CREATED,
    response_model=ContactRecordedOut,
    responses=error_responses(401, 404, 409, 422),
    summary="Record a contact with the requester (the first one stops the clock)",
)
def record_contact(
    req: CaseDep, body: ContactIn, session: SessionDep, user: CurrentUser
) -> ContactRecordedOut:
    contact = service.record_contact(
        session,
        req,
        channel=body.channel,
        contacted_at=body.contacted_at,
        note=body.note,
        by_user=user,
    )
    return ContactRecordedOut(**service.contact_out(req, contact).model_dump(), sla=_sla(req))


@router.get(
    "/{reference}/contacts",
    response_model=ContactsOut,
    responses=error_responses(401, 404),
    summary="Contacts with the requester, and the first-response state",
)
def list_contacts(req: CaseDep, session: SessionDep) -> ContactsOut:
    return ContactsOut(
        reference=req.reference,
        sla=_sla(req),
        contacts=[service.contact_out(req, c) for c in service.contacts(session, req)],
    )
