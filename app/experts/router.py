"""Experts: admin CRUD (``/api/v1/admin/experts``), the directory (``/api/v1/experts``) and an
expert's own desk (``/api/v1/expert``). Staff's routing view is ``app/routing/router.py``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, UploadFile, status

from app.accounts.deps import CurrentUser, RequireAdmin, RequireExpert
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.validation import DbId, SafeStr
from app.documents import service as documents
from app.documents.schemas import DocumentOut, document_out
from app.experts import queries, service
from app.experts.errors import CaseNotFound
from app.experts.schemas import (
    AbsenceIn,
    AbsenceOut,
    AssignmentOut,
    CaseContact,
    CaseForExpert,
    DeclineIn,
    ExpertIn,
    ExpertOut,
    ExpertPublicOut,
    ExpertUpdate,
    NotificationOut,
    RegionLeadIn,
    RegionLeadOut,
    assignment_out,
)
from app.flows import request as flows
from app.intake import keys
from app.intake.schemas import ReportTopic, Want
from app.models import (
    Assignment,
    AssignmentStatus,
    IntakeRequest,
    Role,
    UnavailablePeriod,
)
from app.notifications.facts import country_name
from app.scheduling.schemas import ConsultationOut, consultation_out

admin_router = APIRouter(prefix="/api/v1/admin/experts", tags=["admin: experts"])
directory_router = APIRouter(prefix="/api/v1/experts", tags=["experts"])
desk_router = APIRouter(prefix="/api/v1/expert", tags=["expert: my desk"])


def public_out(rec: service.ExpertRecord) -> ExpertPublicOut:
    p = rec.profile
    return ExpertPublicOut(
        id=p.user_id,
        public_name=p.public_name,
        languages=list(p.languages),
        regions=rec.regions,
        countries=rec.countries,
        topics=list(p.topics),
        has_cv=p.cv_document_id is not None,
    )


def full_out(rec: service.ExpertRecord) -> ExpertOut:
    p = rec.profile
    return ExpertOut(
        **public_out(rec).model_dump(),
        email=p.email,
        phone=p.phone,
        timezone=p.timezone,
        max_open_assignments=p.max_open_assignments,
        open_assignments=p.open_assignments,
        zoom_user=p.zoom_user,
        personal_meeting_link=p.personal_meeting_link,
        cv_document_id=p.cv_document_id,
        bio=p.bio,
        is_active=p.is_active,
        available_now=rec.available_now,
        last_assigned_at=p.last_assigned_at,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def absence_out(p: UnavailablePeriod) -> AbsenceOut:
    return AbsenceOut(id=p.id, starts_at=p.starts_at, ends_at=p.ends_at, kind=p.kind, note=p.note)


# Admin ---------------------------------------------------------------------------------------


@admin_router.get(
    "", response_model=list[ExpertOut], summary="List experts", responses=error_responses(401, 403)
)
def admin_list(session: SessionDep, _admin: RequireAdmin) -> list[ExpertOut]:
    return [full_out(r) for r in service.list_profiles(session)]


@admin_router.post(
    "",
    response_model=ExpertOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create an expert profile for a user account of role expert",
    responses=error_responses(401, 403, 404, 409, 422),
)
def admin_create(body: ExpertIn, session: SessionDep, _admin: RequireAdmin) -> ExpertOut:
    return full_out(service.create(session, body))


@admin_router.get(
    "/region-leads",
    response_model=list[RegionLeadOut],
    summary="Each region's lead expert (fallback for documents and escalations)",
    responses=error_responses(401, 403),
)
def region_leads(session: SessionDep, _admin: RequireAdmin) -> list[RegionLeadOut]:
    return [
        RegionLeadOut(
            region_code=r.code, name=r.name, lead_expert_id=r.lead_expert_id, lead_public_name=n
        )
        for r, n in service.region_leads(session)
    ]


@admin_router.put(
    "/region-leads/{region_code}",
    response_model=RegionLeadOut,
    summary="Name (or remove) a region's lead expert",
    responses=error_responses(401, 403, 404, 409, 422),
)
def set_region_lead(
    region_code: SafeStr, body: RegionLeadIn, session: SessionDep, _admin: RequireAdmin
) -> RegionLeadOut:
    region, name = service.set_region_lead(session, region_code, body.expert_id)
    return RegionLeadOut(
        region_code=region.code,
        name=region.name,
        lead_expert_id=region.lead_expert_id,
        lead_public_name=name,
    )


@admin_router.get(
    "/{expert_id}",
    response_model=ExpertOut,
    summary="One expert",
    responses=error_responses(401, 403, 404),
)
def admin_get(expert_id: uuid.UUID, session: SessionDep, _admin: RequireAdmin) -> ExpertOut:
    return full_out(service.get_record(session, expert_id))


@admin_router.patch(
    "/{expert_id}",
    response_model=ExpertOut,
    summary="Update an expert (lists given replace the old ones)",
    responses=error_responses(401, 403, 404, 422),
)
def admin_update(
    expert_id: uuid.UUID, body: ExpertUpdate, session: SessionDep, _admin: RequireAdmin
) -> ExpertOut:
    return full_out(service.update(session, expert_id, body))


@admin_router.post(
    "/{expert_id}/deactivate",
    response_model=ExpertOut,
    summary="Deactivate: no new offers; pending offers go to the next expert",
    responses=error_responses(401, 403, 404),
)
def admin_deactivate(expert_id: uuid.UUID, session: SessionDep, _a: RequireAdmin) -> ExpertOut:
    return full_out(service.set_active(session, expert_id, False))


@admin_router.post(
    "/{expert_id}/reactivate",
    response_model=ExpertOut,
    summary="Reactivate an expert",
    responses=error_responses(401, 403, 404),
)
def admin_reactivate(expert_id: uuid.UUID, session: SessionDep, _a: RequireAdmin) -> ExpertOut:
    return full_out(service.set_active(session, expert_id, True))


@admin_router.get(
    "/{expert_id}/unavailable",
    response_model=list[AbsenceOut],
    summary="An expert's unavailable periods (leave, days off)",
    responses=error_responses(401, 403, 404),
)
def admin_absences(expert_id: uuid.UUID, session: SessionDep, _a: RequireAdmin) -> list[AbsenceOut]:
    return [absence_out(p) for p in service.list_absences(session, expert_id)]


@admin_router.post(
    "/{expert_id}/unavailable",
    response_model=AbsenceOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add an unavailable period",
    responses=error_responses(401, 403, 404, 422),
)
def admin_add_absence(
    expert_id: uuid.UUID, body: AbsenceIn, session: SessionDep, _a: RequireAdmin
) -> AbsenceOut:
    return absence_out(service.add_absence(session, expert_id, body))


@admin_router.delete(
    "/{expert_id}/unavailable/{period_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an unavailable period",
    responses=error_responses(401, 403, 404),
)
def admin_delete_absence(
    expert_id: uuid.UUID, period_id: DbId, session: SessionDep, _a: RequireAdmin
) -> None:
    service.delete_absence(session, expert_id, period_id)


@admin_router.put(
    "/{expert_id}/cv",
    response_model=DocumentOut,
    summary="Upload the expert's CV (PDF only, checked by content, size-limited)",
    responses=error_responses(401, 403, 404, 413, 422),
)
def admin_set_cv(
    expert_id: uuid.UUID,
    session: SessionDep,
    admin: RequireAdmin,
    file: Annotated[UploadFile, File(description="a PDF")],
) -> DocumentOut:
    doc = service.set_cv(
        session, expert_id, data=documents.read_upload(file.file), filename=file.filename, by=admin
    )
    return document_out(doc)


# Directory -----------------------------------------------------------------------------------


@directory_router.get(
    "",
    response_model=list[ExpertOut] | list[ExpertPublicOut],
    summary="Active experts",
    description="Experts see the public fields of other experts only (name, languages, "
    "coverage, topics); staff and admins see contact, capacity and availability too.",
    responses=error_responses(401),
)
def directory(session: SessionDep, user: CurrentUser) -> list[ExpertOut] | list[ExpertPublicOut]:
    recs = service.list_profiles(session, active_only=True)
    if user.role == Role.expert:
        return [public_out(r) for r in recs]
    return [full_out(r) for r in recs]


@directory_router.get(
    "/{expert_id}",
    response_model=ExpertOut | ExpertPublicOut,
    summary="One expert (public fields for experts)",
    responses=error_responses(401, 404),
)
def directory_one(
    expert_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> ExpertOut | ExpertPublicOut:
    rec = service.get_record(session, expert_id)
    if user.role == Role.expert and user.id != expert_id:
        return public_out(rec)
    return full_out(rec)


# The expert's desk ---------------------------------------------------------------------------


@desk_router.get(
    "/me", response_model=ExpertOut, summary="My profile", responses=error_responses(401, 403, 404)
)
def my_profile(session: SessionDep, expert: RequireExpert) -> ExpertOut:
    return full_out(service.get_record(session, expert.id))


@desk_router.get(
    "/assignments",
    response_model=list[AssignmentOut],
    summary="My assignments (open ones; all=true for the past too)",
    responses=error_responses(401, 403),
)
def my_assignments(
    session: SessionDep, expert: RequireExpert, all: bool = False
) -> list[AssignmentOut]:
    rows = queries.expert_assignments(session, expert.id, live_only=not all)
    return [assignment_out(a, ref) for a, ref in rows]


def _reference(session: SessionDep, a: Assignment) -> str:
    req = session.get(IntakeRequest, a.request_id)
    return req.reference if req is not None else ""


@desk_router.post(
    "/assignments/{assignment_id}/accept",
    response_model=AssignmentOut,
    summary="Accept an offered request",
    responses=error_responses(401, 403, 404, 409),
)
def accept(assignment_id: DbId, session: SessionDep, expert: RequireExpert) -> AssignmentOut:
    a = flows.answer_offer(session, assignment_id, expert, accept=True)
    return assignment_out(a, _reference(session, a))


@desk_router.post(
    "/assignments/{assignment_id}/decline",
    response_model=AssignmentOut,
    summary="Decline an offered request (it goes to the next expert)",
    responses=error_responses(401, 403, 404, 409, 422),
)
def decline(
    assignment_id: DbId, session: SessionDep, expert: RequireExpert, body: DeclineIn | None = None
) -> AssignmentOut:
    a = flows.answer_offer(
        session, assignment_id, expert, accept=False, reason=body.reason if body else None
    )
    return assignment_out(a, _reference(session, a))


@desk_router.get(
    "/requests/{reference}",
    response_model=CaseForExpert,
    summary="A request offered to or accepted by me",
    description="Before accepting: country, stage, what was asked and the deadline. "
    "After accepting: the topics, language, contact details and the case summary too. "
    "A request not assigned to me answers 404.",
    responses=error_responses(401, 403, 404),
)
def my_case(reference: SafeStr, session: SessionDep, expert: RequireExpert) -> CaseForExpert:
    req, a = queries.case_assignment(session, reference, expert)
    out = CaseForExpert(
        reference=req.reference,
        country_of_origin=req.country_of_origin,
        country_name=country_name(session, req.country_of_origin),
        case_stage=req.case_stage,
        wants=[Want(w) for w in req.wants],
        deadline=req.deadline,
        assignment_id=a.id,
        assignment_status=a.status,
        respond_by=a.respond_by if a.status == AssignmentStatus.offered else None,
    )
    if a.status != AssignmentStatus.accepted:
        return out
    dk = keys.data_key(req)
    if dk is None or req.pii_enc is None:
        raise CaseNotFound("This request's personal data has been erased.")
    pii = keys.unseal_json(dk, "pii", req.id, req.pii_enc)
    out.topics = [ReportTopic(t) for t in req.topics]
    out.language = req.language
    out.case_summary = pii.get("case_summary")
    out.contact = CaseContact(
        full_name=pii.get("full_name"),
        contact_name=pii.get("contact_name"),
        law_firm_name=pii.get("law_firm_name"),
        email=pii.get("email"),
        phone=pii.get("phone"),
        whatsapp=pii.get("whatsapp"),
        preferred_channel=req.preferred_channel.value,
    )
    return out


@desk_router.get(
    "/consultations",
    response_model=list[ConsultationOut],
    summary="My consultations (booked and not yet over; all=true for past and cancelled too)",
    description="Times in my zone. Cancel or reschedule one with "
    "`DELETE`/`PATCH /api/v1/requests/{reference}/consultation`.",
    responses=error_responses(401, 403),
)
def my_consultations(
    session: SessionDep, expert: RequireExpert, all: bool = False
) -> list[ConsultationOut]:
    zone = queries.expert_zone(session, expert.id)
    return [
        consultation_out(session, req, c, zone)
        for c, req in queries.expert_consultations(session, expert.id, upcoming_only=not all)
    ]


@desk_router.get(
    "/notifications",
    response_model=list[NotificationOut],
    summary="My notifications, newest first",
    responses=error_responses(401, 403),
)
def my_notifications(
    session: SessionDep, expert: RequireExpert, unread: bool = False
) -> list[NotificationOut]:
    return [
        NotificationOut(
            id=n.id,
            kind=n.kind,
            request_reference=ref,
            assignment_id=n.assignment_id,
            created_at=n.created_at,
            read_at=n.read_at,
        )
        for n, ref in queries.notifications(session, expert.id, unread_only=unread)
    ]


@desk_router.post(
    "/notifications/{notification_id}/read",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Mark a notification read",
    responses=error_responses(401, 403, 404),
)
def read_notification(notification_id: DbId, session: SessionDep, expert: RequireExpert) -> None:
    queries.mark_read(session, expert.id, notification_id)


@desk_router.get(
    "/unavailable",
    response_model=list[AbsenceOut],
    summary="My unavailable periods",
    responses=error_responses(401, 403, 404),
)
def my_absences(session: SessionDep, expert: RequireExpert) -> list[AbsenceOut]:
    return [absence_out(p) for p in service.list_absences(session, expert.id)]


@desk_router.post(
    "/unavailable",
    response_model=AbsenceOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add leave or a day off (no offers and no consultation slots then)",
    responses=error_responses(401, 403, 404, 422),
)
def my_add_absence(body: AbsenceIn, session: SessionDep, expert: RequireExpert) -> AbsenceOut:
    return absence_out(service.add_absence(session, expert.id, body))


@desk_router.delete(
    "/unavailable/{period_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove one of my unavailable periods",
    responses=error_responses(401, 403, 404),
)
def my_delete_absence(period_id: DbId, session: SessionDep, expert: RequireExpert) -> None:
    service.delete_absence(session, expert.id, period_id)
