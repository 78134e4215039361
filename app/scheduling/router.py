"""Consultations: an expert's availability (``/api/v1/experts/{id}/availability``), a request's
free slots and its consultation (``/api/v1/requests/{reference}/slots``, ``.../consultation``).

Who may call the request routes: its requester (``Authorization: Bearer rl_...``), staff and
admins (a user token), and the expert the request or the consultation belongs to. Anyone else,
and any wrong token, gets the same 404 as a request that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from app.accounts import service as accounts
from app.accounts.deps import SESSION_COOKIE, CurrentUser
from app.core.deps import SessionDep
from app.core.errors import Forbidden, error_responses
from app.core.security import REQUESTER_TOKEN_PREFIX, USER_TOKEN_PREFIX
from app.core.validation import SafeStr
from app.intake import records
from app.intake import service as intake
from app.intake.deps import requester_bearer
from app.intake.errors import RequestNotFound
from app.models import (
    AvailabilityOverride,
    ExpertAvailability,
    ExpertProfile,
    IntakeRequest,
    Role,
    SlotHold,
    User,
)
from app.scheduling import service
from app.scheduling.errors import ConsultationNotFound, ExpertNotFound, HoldNotFound
from app.scheduling.schemas import (
    AvailabilityIn,
    AvailabilityOut,
    BookIn,
    ConfirmHoldIn,
    ConsultationOut,
    ExpertNameOut,
    HoldOut,
    OverrideIn,
    SlotDayOut,
    SlotOut,
    SlotsOut,
    TimeRangeIn,
    WeeklyRangeIn,
    consultation_out,
)
from app.scheduling.service import Caller, holds
from app.scheduling.slots import zone as slot_zone

availability_router = APIRouter(prefix="/api/v1/experts", tags=["consultations: availability"])
requests_router = APIRouter(prefix="/api/v1/requests", tags=["consultations"])


# Who is calling ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCaller:
    req: IntakeRequest
    caller: Caller


def request_caller(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(requester_bearer)],
) -> RequestCaller:
    token = credentials.credentials if credentials is not None else None
    if token is not None and token.startswith(REQUESTER_TOKEN_PREFIX):
        req = intake.authenticate_requester(session, reference, token)
        return RequestCaller(req, Caller("requester"))
    token = token or request.cookies.get(SESSION_COOKIE)
    if token is None or not token.startswith(USER_TOKEN_PREFIX):
        raise RequestNotFound()
    user, _ = accounts.authenticate(session, token)
    found = records.get_by_reference(session, reference)
    if found is None:
        raise RequestNotFound()
    req = found
    if user.role in (Role.staff, Role.admin):
        return RequestCaller(req, Caller("staff", user))
    if user.role == Role.expert:
        try:
            service.check_expert_access(session, req, user)
        except ConsultationNotFound:
            raise RequestNotFound() from None
        return RequestCaller(req, Caller("expert", user))
    raise RequestNotFound()


RequestCallerDep = Annotated[RequestCaller, Depends(request_caller)]


def _requester_or_staff(rc: RequestCaller) -> None:
    """Slots and booking: the requester, or staff booking for them (not the expert)."""
    if rc.caller.kind == "expert":
        raise RequestNotFound()


# Availability --------------------------------------------------------------------------------


def _availability_out(
    expert_id: uuid.UUID,
    profile: ExpertProfile,
    row: ExpertAvailability | None,
    overrides: list[AvailabilityOverride],
) -> AvailabilityOut:
    if row is None:
        defaults = AvailabilityIn()
        return AvailabilityOut(
            expert_id=expert_id,
            configured=False,
            timezone=profile.timezone,
            weekly=[],
            overrides=[],
            **defaults.model_dump(
                include={
                    "slot_minutes",
                    "interval_minutes",
                    "buffer_before_minutes",
                    "buffer_after_minutes",
                    "min_notice_minutes",
                    "horizon_days",
                    "max_per_day",
                }
            ),
        )
    return AvailabilityOut(
        expert_id=expert_id,
        configured=True,
        timezone=row.timezone,
        weekly=[WeeklyRangeIn.model_validate(r) for r in row.weekly],
        overrides=[
            OverrideIn(date=o.date, ranges=[TimeRangeIn.model_validate(r) for r in o.ranges])
            for o in overrides
        ],
        slot_minutes=row.slot_minutes,
        interval_minutes=row.interval_minutes,
        buffer_before_minutes=row.buffer_before_minutes,
        buffer_after_minutes=row.buffer_after_minutes,
        min_notice_minutes=row.min_notice_minutes,
        horizon_days=row.horizon_days,
        max_per_day=row.max_per_day,
    )


def _may_see_availability(user: User, expert_id: uuid.UUID, *, write: bool) -> None:
    if user.role == Role.admin or (user.role == Role.staff and not write):
        return
    if user.role == Role.expert:
        if user.id != expert_id:
            # Another expert's availability: as if it did not exist.
            raise ExpertNotFound("No expert with this id.")
        return
    raise Forbidden(f"Your role ({user.role.value}) cannot change an expert's availability.")


@availability_router.get(
    "/{expert_id}/availability",
    response_model=AvailabilityOut,
    summary="An expert's availability (the expert's own; staff and admins any)",
    responses=error_responses(401, 403, 404),
)
def get_availability(
    expert_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> AvailabilityOut:
    _may_see_availability(user, expert_id, write=False)
    profile, row, overrides = service.get_availability(session, expert_id)
    return _availability_out(expert_id, profile, row, list(overrides))


@availability_router.put(
    "/{expert_id}/availability",
    response_model=AvailabilityOut,
    summary="Replace an expert's availability (the expert's own; admins any)",
    description="Weekly hours in the expert's zone (several ranges a day; an end not after the "
    "start runs past midnight), date overrides (other hours, or none: a day off), consultation "
    "length, grid interval, buffers, minimum notice, horizon, daily cap. Existing bookings "
    "are kept.",
    responses=error_responses(401, 403, 404, 422),
)
def put_availability(
    expert_id: uuid.UUID, body: AvailabilityIn, session: SessionDep, user: CurrentUser
) -> AvailabilityOut:
    _may_see_availability(user, expert_id, write=True)
    profile, row, overrides = service.put_availability(
        session, expert_id, body, actor=f"user:{user.id}"
    )
    return _availability_out(expert_id, profile, row, list(overrides))


# Slots ---------------------------------------------------------------------------------------


@requests_router.get(
    "/{reference}/slots",
    response_model=SlotsOut,
    summary="Free consultation slots of the request's expert (or of its region's pool)",
    description="`from` and `to` are dates (YYYY-MM-DD) in `timezone` (IANA, e.g. "
    "Europe/Berlin). Each slot has its start and end in UTC and in that zone with the offset, "
    "grouped by the local date. Every date in the range is listed, empty when nothing is free. "
    "A date before today or beyond the horizon, or an unknown zone: 422 naming the field.",
    responses=error_responses(401, 404, 422),
)
def get_slots(
    rc: RequestCallerDep,
    session: SessionDep,
    from_: Annotated[SafeStr | None, Query(alias="from")] = None,
    to: SafeStr | None = None,
    timezone: SafeStr | None = None,
) -> SlotsOut:
    _requester_or_staff(rc)
    found = service.list_slots(session, rc.req, from_raw=from_, to_raw=to, timezone_raw=timezone)
    return SlotsOut(
        reference=rc.req.reference,
        timezone=found.query.timezone,
        from_date=found.query.from_date,
        to_date=found.query.to_date,
        expert=ExpertNameOut(public_name=found.expert_name) if found.expert_name else None,
        pool=found.pool,
        days=[
            SlotDayOut(
                date=day.date,
                slots=[SlotOut(**service.local_slot_dict(s)) for s in day.slots],
            )
            for day in found.days
        ],
    )


# The consultation ----------------------------------------------------------------------------


@requests_router.post(
    "/{reference}/consultation",
    response_model=ConsultationOut,
    status_code=status.HTTP_201_CREATED,
    summary="Book a consultation at one of the offered slots",
    description="`start` is a slot's `start_utc`. The slot is checked again now; if it is no "
    "longer free (or never was offered) the answer is `409` with `details.alternatives`, the "
    "next free slots. Only a request that is `new` or `in_progress` can book (`409` otherwise). "
    "Confirmation e-mails with a calendar invite go to the requester and the expert.",
    responses=error_responses(401, 404, 409, 422),
)
def book(rc: RequestCallerDep, body: BookIn, session: SessionDep) -> ConsultationOut:
    _requester_or_staff(rc)
    c = service.book(session, rc.req, start=body.start, zone=body.timezone, caller=rc.caller)
    return consultation_out(session, rc.req, c, body.timezone)


@requests_router.get(
    "/{reference}/consultation",
    response_model=ConsultationOut,
    summary="The request's consultation (the booked one, else the latest)",
    responses=error_responses(401, 404),
)
def get_consultation(rc: RequestCallerDep, session: SessionDep) -> ConsultationOut:
    c = service.booked_consultation(session, rc.req) or service.latest_consultation(session, rc.req)
    if c is None or (
        rc.caller.kind == "expert"
        and rc.caller.user is not None
        and c.expert_id != rc.caller.user.id
    ):
        raise ConsultationNotFound("This request has no consultation.")
    return consultation_out(session, rc.req, c)


@requests_router.patch(
    "/{reference}/consultation",
    response_model=ConsultationOut,
    summary="Move the booked consultation to another free slot (same expert)",
    description="The updated invite (same UID, SEQUENCE + 1) goes to both sides. A slot that is "
    "not free: `409` with alternatives.",
    responses=error_responses(401, 404, 409, 422),
)
def reschedule(rc: RequestCallerDep, body: BookIn, session: SessionDep) -> ConsultationOut:
    c = service.reschedule(session, rc.req, start=body.start, zone=body.timezone, caller=rc.caller)
    return consultation_out(session, rc.req, c, body.timezone)


@requests_router.delete(
    "/{reference}/consultation",
    response_model=ConsultationOut,
    summary="Cancel the booked consultation",
    description="A cancellation (METHOD:CANCEL) goes to both sides; the request goes back to "
    "`in_progress`.",
    responses=error_responses(401, 404),
)
def cancel(rc: RequestCallerDep, session: SessionDep) -> ConsultationOut:
    c = service.cancel(session, rc.req, caller=rc.caller)
    return consultation_out(session, rc.req, c)


# Holding a time while the requester confirms -----------------------------------------------


def _hold_out(session: SessionDep, req: IntakeRequest, row: SlotHold) -> HoldOut:
    return HoldOut(
        id=row.id,
        reference=req.reference,
        start_utc=row.start_at,
        end_utc=row.end_at,
        minutes=int((row.end_at - row.start_at).total_seconds() // 60),
        timezone=row.timezone,
        start_local=row.start_at.astimezone(slot_zone(row.timezone)).isoformat(),
        expert=ExpertNameOut(public_name=holds.expert_name(session, row)),
        expires_at=row.expires_at,
    )


@requests_router.post(
    "/{reference}/consultation/hold",
    response_model=HoldOut,
    status_code=status.HTTP_201_CREATED,
    summary="Hold one of the offered slots while the requester confirms",
    description="`start` is a slot's `start_utc`; `timezone` the zone the slots were asked in. "
    "The time is held for this request until `expires_at` (`INTAKE_SLOT_HOLD_MINUTES`, default "
    "5): nobody else is offered it or can book or hold it meanwhile, and this request still "
    "sees it. A new hold replaces the request's earlier one. With a booked consultation the "
    "hold is a new time for it (same expert). A time that is not free: `409` "
    "(`slot_unavailable`) with `details.alternatives`, as for booking.",
    responses=error_responses(401, 404, 409, 422),
)
def hold(rc: RequestCallerDep, body: BookIn, session: SessionDep) -> HoldOut:
    _requester_or_staff(rc)
    row = holds.hold(session, rc.req, start=body.start, zone=body.timezone, caller=rc.caller)
    return _hold_out(session, rc.req, row)


@requests_router.get(
    "/{reference}/consultation/hold",
    response_model=HoldOut,
    summary="The time held for the request, while the hold lasts",
    description="`404` (`hold_not_found`) when nothing is held or the hold has expired.",
    responses=error_responses(401, 404),
)
def get_hold(rc: RequestCallerDep, session: SessionDep) -> HoldOut:
    _requester_or_staff(rc)
    row = holds.current_hold(session, rc.req)
    if row is None:
        raise HoldNotFound("No time is held for you: choose a time first.")
    return _hold_out(session, rc.req, row)


@requests_router.post(
    "/{reference}/consultation/hold/confirm",
    response_model=ConsultationOut,
    status_code=status.HTTP_201_CREATED,
    summary="Confirm the held time: book it (or move the booked consultation there)",
    description="Books the held slot with the expert it was held with, as `POST "
    "/consultation` does (invites to both sides), or moves the booked consultation there as "
    "`PATCH` does. `404` (`hold_not_found`) when no such hold exists; `409` (`hold_expired`) "
    "once it has expired: the time is released, `details.still_free` says whether it is "
    "still free (hold it again) and `details.alternatives` lists the next free slots.",
    responses=error_responses(401, 404, 409, 422),
)
def confirm_hold(rc: RequestCallerDep, body: ConfirmHoldIn, session: SessionDep) -> ConsultationOut:
    _requester_or_staff(rc)
    c = holds.confirm(session, rc.req, hold_id=body.hold_id, caller=rc.caller)
    return consultation_out(session, rc.req, c)


@requests_router.delete(
    "/{reference}/consultation/hold",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Release the held time",
    description="The time is offered to everyone again at once. Nothing held: `404`.",
    responses=error_responses(401, 404),
)
def release_hold(rc: RequestCallerDep, session: SessionDep) -> None:
    _requester_or_staff(rc)
    if not holds.release(session, rc.req):
        raise HoldNotFound("No time is held for you.")
