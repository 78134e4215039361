"""``GET /api/v1/cases/{reference}``: the read-only case view.

Staff and admins see every case; an expert only the ones whose assignment they accepted (an
offer not yet accepted, or someone else's case, answers 404 like a request that does not exist).
Actions on a case come later (issue 10, second part).
"""

from __future__ import annotations

from fastapi import APIRouter

from app.accounts.deps import CurrentUser
from app.cases import service
from app.cases.schemas import CaseOut, CaseRequest, HistoryOut, MessageOut
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.experts.queries import routing_out
from app.intake import service as intake
from app.intake.schemas import SlaOut
from app.reference.schemas import CountryProfile
from app.scheduling.schemas import consultation_out
from app.sla.service import contact_out

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


@router.get(
    "/{reference}",
    response_model=CaseOut,
    responses=error_responses(401, 404),
    summary="One case: the decrypted request, SLA, routing, consultation, contacts, history",
)
def case(reference: str, session: SessionDep, user: CurrentUser) -> CaseOut:
    req = service.case_for(session, reference, user)
    pii = service.personal(req)
    country = service.country_of(session, req)
    routing = routing_out(session, req)
    return CaseOut(
        request=CaseRequest(
            reference=req.reference,
            status=req.status,
            source=req.source,
            requester_type=req.requester_type,
            preferred_channel=req.preferred_channel,
            country_of_origin=req.country_of_origin,
            country_of_residence=req.country_of_residence,
            region_code=req.region_code,
            case_stage=req.case_stage,
            deadline=req.deadline,
            topics=list(req.topics),
            wants=list(req.wants),
            consent_updates=list(req.consent_updates),
            language=req.language,
            timezone=req.timezone,
            discreet=req.discreet,
            received_at=req.received_at,
            withdrawn_at=req.withdrawn_at,
            assigned_expert_id=req.assigned_expert_id,
            linked_request_reference=service.linked_reference(session, req),
            personal=pii,
            erased=req.data_key_enc is None,
        ),
        sla=SlaOut(
            state=intake.current_sla(req),
            first_response_due_at=req.first_response_due_at,
            first_responded_at=req.first_responded_at,
        ),
        country_profile=CountryProfile.model_validate(country) if country else None,
        routing=routing,
        latest_decision=routing.decisions[-1] if routing.decisions else None,
        consultations=[
            consultation_out(session, req, c) for c in service.consultations(session, req)
        ],
        contacts=[contact_out(req, c) for c in service.contacts(session, req)],
        messages_sent=[
            MessageOut(
                id=m.id,
                kind=m.kind,
                status=m.status,
                due_at=m.due_at,
                sent_at=m.sent_at,
                attempts=m.attempts,
            )
            for m in service.messages(session, req)
        ],
        history=[
            HistoryOut(
                id=h.id,
                at=h.at,
                actor=h.actor,
                action=h.action,
                from_status=h.from_status,
                to_status=h.to_status,
                details=dict(h.details or {}),
                data=data,
            )
            for h, data in service.history(session, req)
        ],
    )
