"""``/api/v1/cases/{reference}``: the case view and the actions on a case.

Reading, notes, replies and presence: staff, admins, and the expert whose assignment is accepted
(an offer not yet accepted, or someone else's case, answers 404 like a request that does not
exist). Status, assignment, corrections, merging and resending: staff and admins (the accepted
expert gets 403). Access is checked in a dependency, before the body is validated, so a caller
who may not see the case learns nothing from a 422. Contacts: ``app/sla/router.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, status

from app.accounts.deps import CurrentUser
from app.cases import service
from app.cases.schemas import (
    AssignIn,
    CaseMessageOut,
    CaseOut,
    CaseRequest,
    CorrectionIn,
    HistoryOut,
    MergeIn,
    MergeOut,
    MessageOut,
    NoteIn,
    NoteOut,
    OwnerOut,
    PresenceIn,
    PresenceOut,
    PresentOut,
    ReplyIn,
    ReplyOut,
    ReplyPreviewOut,
    ResendOut,
    StatusIn,
    StatusOut,
    TakeOut,
)
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.validation import SafeStr
from app.flows import request as flows
from app.intake import service as intake
from app.intake.schemas import SlaOut
from app.intake.status import allowed_moves
from app.models import IntakeRequest, User
from app.reference.schemas import CountryProfile
from app.routing.queries import routing_out
from app.routing.schemas import RoutingOut
from app.scheduling.schemas import consultation_out
from app.sla.service import contact_out

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


@dataclass(frozen=True)
class Case:
    req: IntakeRequest
    user: User


def _worker_case(reference: SafeStr, session: SessionDep, user: CurrentUser) -> Case:
    return Case(service.case_for(session, reference, user), user)


def _staff_case(reference: SafeStr, session: SessionDep, user: CurrentUser) -> Case:
    return Case(service.staff_case_for(session, reference, user), user)


#: Staff, admins, or the expert who accepted the request (others 404).
WorkerCase = Annotated[Case, Depends(_worker_case)]
#: Staff and admins (the accepted expert 403, others 404).
StaffCase = Annotated[Case, Depends(_staff_case)]


def _sla(req: IntakeRequest) -> SlaOut:
    return intake.sla_out(req)


def _message_out(m: service.MessageView) -> CaseMessageOut:
    return CaseMessageOut(
        id=m.id,
        direction=m.direction,
        kind=m.kind,
        at=m.at,
        message_id=m.message_id,
        in_reply_to=m.in_reply_to,
        author_id=m.author_id,
        delivery=m.delivery,
        outbox_id=m.outbox_id,
        contact_id=m.contact_id,
        data=m.data,
    )


def _present_out(p: service.Present) -> PresentOut:
    return PresentOut(
        user_id=p.user_id, name=p.name, role=p.role, activity=p.activity, seen_at=p.seen_at
    )


def case_out(session: SessionDep, req: IntakeRequest, user: User) -> CaseOut:
    routing = routing_out(session, req)
    country = service.country_of(session, req)
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
            merged_into_reference=service.merged_into_reference(session, req),
            merged_from_references=service.merged_from_references(session, req),
            personal=service.personal(req),
            erased=req.data_key_enc is None,
        ),
        sla=_sla(req),
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
            for m in service.outbox_rows(session, req)
        ],
        messages=[_message_out(m) for m in service.messages(session, req)],
        notes=[NoteOut(**vars(n)) for n in service.notes(session, req)],
        others_present=[_present_out(p) for p in service.others(session, req, user)],
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
        owner=_owner_out(service.owner_of(session, req)),
    )


def _owner_out(owner: service.Owner | None) -> OwnerOut | None:
    if owner is None:
        return None
    return OwnerOut(user_id=owner.user_id, name=owner.name, taken_at=owner.taken_at)


@router.get(
    "/{reference}",
    response_model=CaseOut,
    responses=error_responses(401, 404),
    summary="One case: request, SLA, routing, consultation, contacts, messages, notes, history",
)
def case(case: WorkerCase, session: SessionDep) -> CaseOut:
    return case_out(session, case.req, case.user)


@router.patch(
    "/{reference}",
    response_model=CaseOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Correct the request's fields (countries, language, zone, contact) and re-route",
    description="Only the fields given change. Routing runs again when the country of origin or "
    "the language changed (or `reroute: true`). The history names the fields; old and new "
    "values are kept encrypted.",
)
def correct(body: CorrectionIn, case: StaffCase, session: SessionDep) -> CaseOut:
    changes = body.model_dump(exclude_unset=True, exclude={"reroute"}, mode="json")
    flows.correct(session, case.req, case.user, changes, reroute_wanted=body.reroute)
    return case_out(session, case.req, case.user)


@router.post(
    "/{reference}/status",
    response_model=StatusOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Change the status (an illegal move is 409 naming the allowed ones)",
)
def change_status(body: StatusIn, case: StaffCase, session: SessionDep) -> StatusOut:
    req = flows.change_status(session, case.req, body.status, actor=f"user:{case.user.id}")
    return StatusOut(
        reference=req.reference, status=req.status, allowed_next=allowed_moves(req.status)
    )


@router.post(
    "/{reference}/notes",
    response_model=NoteOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 404, 409, 422),
    summary="Add an internal note (never shown to the requester; kept encrypted)",
)
def add_note(body: NoteIn, case: WorkerCase, session: SessionDep) -> NoteOut:
    note = service.add_note(session, case.req, case.user, body.body)
    return NoteOut(
        id=note.id,
        created_at=note.created_at,
        author_id=note.author_id,
        author_name=case.user.display_name,
        body=body.body.strip(),
    )


@router.post(
    "/{reference}/assign",
    response_model=RoutingOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Assign or reassign: to a named expert, or (expert_id null) to the next candidate",
)
def assign(body: AssignIn, case: StaffCase, session: SessionDep) -> RoutingOut:
    flows.reassign(session, case.req, by=case.user, expert_id=body.expert_id, reason=body.reason)
    return routing_out(session, case.req)


@router.post(
    "/{reference}/replies",
    response_model=ReplyOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 404, 409, 422),
    summary="Reply to the requester by e-mail (threaded, in their language; a first response)",
    description="Queued at once and sent by the worker, rendered in the requester's language "
    "(neutral subject when they asked for discretion), threaded on their latest message. "
    "It counts as the first response when it is queued; a bounce makes it stop counting.",
)
def reply(body: ReplyIn, case: WorkerCase, session: SessionDep) -> ReplyOut:
    msg = service.reply(session, case.req, case.user, body.body, body.subject)
    view = next(m for m in service.messages(session, case.req) if m.id == msg.id)
    return ReplyOut(**_message_out(view).model_dump(), sla=_sla(case.req))


@router.post(
    "/{reference}/replies/preview",
    response_model=ReplyPreviewOut,
    responses=error_responses(401, 404, 409, 422),
    summary="Preview a reply: the exact e-mail the same body and subject would send",
    description="Nothing is stored or sent. The text is rendered by the same function that "
    "builds the e-mail at send time (greeting, signature, reference, private link with its "
    "token masked). `greeting` names a greeting the body opens with: the e-mail greets "
    "already, so it would greet the requester twice.",
)
def preview_reply(body: ReplyIn, case: WorkerCase, session: SessionDep) -> ReplyPreviewOut:
    composed = service.preview_reply(session, case.req, case.user, body.body, body.subject)
    return ReplyPreviewOut(
        to=composed.to,
        subject=composed.subject,
        text=composed.text,
        language=composed.language,
        digest=service.preview_digest(composed),
        greeting=service.leading_greeting(body.body),
    )


@router.post(
    "/{reference}/take",
    response_model=TakeOut,
    responses=error_responses(401, 403, 404),
    summary="Take the request (assign it to me): I answer the requester",
    description="Makes the caller the request's staff owner, shown on the queue and the case "
    "and counted in the queue's `mine` view; taking it from someone else moves it (the history "
    "names both). Not an offer to an expert: the expert assignment does not change.",
)
def take(case: StaffCase, session: SessionDep) -> TakeOut:
    owner = service.take(session, case.req, case.user)
    return TakeOut(
        reference=case.req.reference,
        owner=OwnerOut(user_id=owner.user_id, name=owner.name, taken_at=owner.taken_at),
    )


@router.post(
    "/{reference}/sample-report/resend",
    response_model=ResendOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 409),
    summary="Send the best-matching sample report to the requester again",
)
def resend_sample_report(case: StaffCase, session: SessionDep) -> ResendOut:
    row = service.resend_sample_report(session, case.req, case.user)
    return ResendOut(reference=case.req.reference, outbox_id=row.id, status=row.status)


@router.post(
    "/{reference}/merge",
    response_model=MergeOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Merge this request (a duplicate) into another one; it leaves the open queue",
)
def merge(body: MergeIn, case: StaffCase, session: SessionDep) -> MergeOut:
    target = service.merge(session, case.req, case.user, body.into)
    return MergeOut(reference=case.req.reference, merged_into_reference=target.reference)


@router.delete(
    "/{reference}/merge",
    response_model=MergeOut,
    responses=error_responses(401, 403, 404, 409),
    summary="Unlink a merged request: it stands on its own again",
)
def unlink(case: StaffCase, session: SessionDep) -> MergeOut:
    req = service.unlink(session, case.req, case.user)
    return MergeOut(reference=req.reference, merged_into_reference=None)


def _presence(req: IntakeRequest, others: list[service.Present]) -> PresenceOut:
    return PresenceOut(
        reference=req.reference,
        window_seconds=int(service.PRESENCE_WINDOW.total_seconds()),
        others=[_present_out(p) for p in others],
    )


@router.post(
    "/{reference}/presence",
    response_model=PresenceOut,
    responses=error_responses(401, 404, 422),
    summary="I have this case open (viewing or replying): a heartbeat; answers who else has",
)
def heartbeat(case: WorkerCase, session: SessionDep, body: PresenceIn | None = None) -> PresenceOut:
    activity = body.activity if body is not None else PresenceIn().activity
    return _presence(case.req, service.heartbeat(session, case.req, case.user, activity))


@router.get(
    "/{reference}/presence",
    response_model=PresenceOut,
    responses=error_responses(401, 404),
    summary="Who else has this case open now (names and activity only)",
)
def presence(case: WorkerCase, session: SessionDep) -> PresenceOut:
    return _presence(case.req, service.others(session, case.req, case.user))
