"""The roster's admin API (``/api/v1/admin/roster/...``) and acknowledging a case's escalation
(``POST /api/v1/cases/{reference}/escalation/ack``, staff)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.accounts.deps import RequireAdmin, RequireStaff
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.time import now
from app.core.validation import DbId, SafeDateTime, SafeStr
from app.models import Escalation, IntakeRequest, User
from app.roster import admin, escalation
from app.roster import service as roster
from app.roster.schemas import (
    EscalationOut,
    GapOut,
    GapsOut,
    OnDutyOut,
    OverrideIn,
    OverrideOut,
    PersonOut,
    ShiftIn,
    ShiftOut,
    ShiftPatch,
)

admin_router = APIRouter(prefix="/api/v1/admin/roster", tags=["duty roster"])
case_router = APIRouter(prefix="/api/v1/cases", tags=["duty roster"])


def _person(u: User) -> PersonOut:
    return PersonOut(id=u.id, role=u.role.value, display_name=u.display_name)


@admin_router.get("/shifts", response_model=list[ShiftOut], responses=error_responses(401, 403))
def list_shifts(
    session: SessionDep, _admin: RequireAdmin, user_id: uuid.UUID | None = None
) -> list[ShiftOut]:
    return [ShiftOut.model_validate(s) for s in admin.list_shifts(session, user_id)]


@admin_router.post(
    "/shifts",
    status_code=status.HTTP_201_CREATED,
    response_model=ShiftOut,
    responses=error_responses(401, 403, 422),
    summary="Add a weekly shift (local wall-clock times in the person's zone)",
)
def create_shift(body: ShiftIn, session: SessionDep, _admin: RequireAdmin) -> ShiftOut:
    return ShiftOut.model_validate(admin.create_shift(session, body))


@admin_router.patch(
    "/shifts/{shift_id}", response_model=ShiftOut, responses=error_responses(401, 403, 404, 422)
)
def update_shift(
    shift_id: DbId, body: ShiftPatch, session: SessionDep, _admin: RequireAdmin
) -> ShiftOut:
    return ShiftOut.model_validate(admin.update_shift(session, shift_id, body))


@admin_router.delete(
    "/shifts/{shift_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404),
)
def delete_shift(shift_id: DbId, session: SessionDep, _admin: RequireAdmin) -> None:
    admin.delete_shift(session, shift_id)


@admin_router.get(
    "/overrides", response_model=list[OverrideOut], responses=error_responses(401, 403)
)
def list_overrides(
    session: SessionDep,
    _admin: RequireAdmin,
    since: SafeDateTime | None = None,
    user_id: uuid.UUID | None = None,
) -> list[OverrideOut]:
    rows = admin.list_overrides(session, since=since, user_id=user_id)
    return [OverrideOut.model_validate(o) for o in rows]


@admin_router.post(
    "/overrides",
    status_code=status.HTTP_201_CREATED,
    response_model=OverrideOut,
    responses=error_responses(401, 403, 422),
    summary="Add a one-off change: an extra shift or a cancelled period",
)
def create_override(body: OverrideIn, session: SessionDep, _admin: RequireAdmin) -> OverrideOut:
    return OverrideOut.model_validate(admin.create_override(session, body))


@admin_router.delete(
    "/overrides/{override_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404),
)
def delete_override(override_id: DbId, session: SessionDep, _admin: RequireAdmin) -> None:
    admin.delete_override(session, override_id)


@admin_router.get(
    "/gaps",
    response_model=GapsOut,
    responses=error_responses(401, 403, 422),
    summary="Periods with no staff on duty, or a region with no expert nor lead on duty",
)
def list_gaps(
    session: SessionDep,
    _admin: RequireAdmin,
    days: Annotated[int, Query(ge=1, le=31)] = 7,
) -> GapsOut:
    start = now()
    end = start + dt.timedelta(days=days)
    found = roster.gaps(session, start, end)
    return GapsOut(
        roster_empty=roster.roster_is_empty(session),
        start=start,
        end=end,
        gaps=[
            GapOut(kind=g.kind, region_code=g.region_code, start=g.start, end=g.end) for g in found
        ],
    )


@admin_router.get(
    "/on-duty",
    response_model=OnDutyOut,
    responses=error_responses(401, 403),
    summary="Who is on duty at an instant (default: now)",
)
def on_duty(session: SessionDep, _admin: RequireAdmin, at: SafeDateTime | None = None) -> OnDutyOut:
    when = (at or now()).astimezone(dt.UTC)
    lead = roster.duty_lead(session, when)
    return OnDutyOut(
        at=when,
        roster_empty=roster.roster_is_empty(session),
        on_duty=[_person(u) for u in roster.on_duty(session, when)],
        on_duty_staff=[_person(u) for u in roster.on_duty_staff(session, when)],
        duty_lead=_person(lead) if lead is not None else None,
        supervisors=[_person(u) for u in roster.supervisors(session, when)],
    )


def _escalation_out(req: IntakeRequest, esc: Escalation) -> EscalationOut:
    return EscalationOut(
        reference=req.reference,
        level=esc.level,
        opened_at=esc.opened_at,
        level_sent_at=esc.level_sent_at,
        acknowledged_at=esc.acknowledged_at,
        acknowledged_by=esc.acknowledged_by,
        acknowledged_via=esc.acknowledged_via,
    )


@case_router.post(
    "/{reference}/escalation/ack",
    response_model=EscalationOut,
    responses=error_responses(401, 403, 404, 409),
    summary="Acknowledge the case's escalation: the chain stops climbing",
)
def acknowledge(reference: SafeStr, session: SessionDep, user: RequireStaff) -> EscalationOut:
    req, esc = escalation.acknowledge_case(session, reference, user)
    return _escalation_out(req, esc)
