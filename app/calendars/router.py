"""Calendars' API: an expert's calendars (``/api/v1/experts/{id}/calendars``), their feed of
consultations (``.../calendar-feed``, read at ``/calendar-feeds/{token}.ics``), and why a time is
not offered (``/api/v1/experts/{id}/slot-explanation``, ``/api/v1/requests/{ref}/...``).

Who: an expert their own (another expert's: 404), admins any; staff may read an expert's
calendars' state and ask the explainer; the feed's address is its own key.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.accounts.deps import CurrentUser, RequireStaff
from app.calendars import feed, service
from app.calendars.errors import CalendarNotFound, FeedNotFound
from app.calendars.schemas import (
    CalendarIn,
    CalendarOut,
    ExpertExplanationOut,
    ExplanationOut,
    FeedOut,
    ReasonOut,
)
from app.core.deps import SessionDep
from app.core.errors import FieldProblem, Forbidden, Unprocessable, error_responses
from app.core.validation import SafeStr
from app.intake import records
from app.intake.errors import RequestNotFound
from app.models import CalendarConnection, ExpertProfile, Role, User
from app.scheduling import slots
from app.scheduling.service import explaining

router = APIRouter(prefix="/api/v1", tags=["calendars"])
feed_router = APIRouter(tags=["calendars"])

MESSAGES = {
    "outside_hours": "Outside the expert's working hours that day.",
    "override": "The date has other hours (a date override or a day off).",
    "off_grid": "Not one of the offered starts (they follow the consultation grid).",
    "minimum_notice": "Too soon: before the minimum notice.",
    "horizon": "Beyond the booking horizon.",
    "daily_cap": "The expert's day is full (daily cap).",
    "leave": "The expert is away (leave or a day off).",
    "booking": "Another consultation is booked then.",
    "booking_buffer": "Inside the buffer around another consultation.",
    "calendar_busy": "Busy in the expert's own calendar.",
    "other": "Not offered.",
}


def _may(user: User, expert_id: uuid.UUID, *, write: bool) -> None:
    if user.role == Role.admin or (user.role == Role.staff and not write):
        return
    if user.role == Role.expert:
        if user.id != expert_id:
            raise CalendarNotFound("No expert with this id.")
        return
    raise Forbidden(f"Your role ({user.role.value}) cannot change an expert's calendars.")


def _expert(session: SessionDep, expert_id: uuid.UUID) -> None:
    if session.get(ExpertProfile, expert_id) is None:
        raise CalendarNotFound("No expert with this id.")


def calendar_out(c: CalendarConnection) -> CalendarOut:
    return CalendarOut(
        id=c.id,
        kind=c.kind.value,
        label=c.label,
        address_hint=c.address_hint,
        username=c.username,
        created_at=c.created_at,
        last_success_at=c.last_success_at,
        last_error=c.last_error,
        failing_since=c.failing_since,
        next_refresh_at=c.next_refresh_at,
        busy_count=c.busy_count,
    )


@router.get(
    "/experts/{expert_id}/calendars",
    response_model=list[CalendarOut],
    summary="An expert's calendars and the state of their reads (own; staff and admins any)",
    responses=error_responses(401, 403, 404),
)
def list_calendars(
    expert_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> list[CalendarOut]:
    _may(user, expert_id, write=False)
    _expert(session, expert_id)
    return [calendar_out(c) for c in service.list_calendars(session, expert_id)]


@router.post(
    "/experts/{expert_id}/calendars",
    response_model=CalendarOut,
    status_code=status.HTTP_201_CREATED,
    summary="Connect a calendar: a private ICS address or a CalDAV account (own; admins any)",
    description="The address and the app password are stored encrypted and never shown again. "
    "The worker reads the calendar within a minute, then every few minutes; its busy times "
    "block slots.",
    responses=error_responses(401, 403, 404, 422),
)
def connect(
    expert_id: uuid.UUID, body: CalendarIn, session: SessionDep, user: CurrentUser
) -> CalendarOut:
    _may(user, expert_id, write=True)
    return calendar_out(service.connect(session, expert_id, body))


@router.delete(
    "/experts/{expert_id}/calendars/{calendar_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a calendar and its busy times (own; admins any)",
    responses=error_responses(401, 403, 404),
)
def remove(
    expert_id: uuid.UUID, calendar_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> Response:
    _may(user, expert_id, write=True)
    service.remove(session, expert_id, calendar_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/experts/{expert_id}/calendars/{calendar_id}/refresh",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Read a calendar again soon (own; admins any)",
    responses=error_responses(401, 403, 404),
)
def refresh_now(
    expert_id: uuid.UUID, calendar_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> Response:
    _may(user, expert_id, write=True)
    service.refresh_now(session, expert_id, calendar_id)
    return Response(status_code=status.HTTP_202_ACCEPTED)


def _feed_out(session: SessionDep, expert_id: uuid.UUID) -> FeedOut:
    row = feed.get_feed(session, expert_id)
    if row is None:
        return FeedOut(active=False)
    return FeedOut(active=True, url=feed.show(session, expert_id), created_at=row.created_at)


@router.get(
    "/experts/{expert_id}/calendar-feed",
    response_model=FeedOut,
    summary="The private feed address of an expert's consultations (own; admins any)",
    responses=error_responses(401, 403, 404),
)
def get_feed(expert_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> FeedOut:
    _may(user, expert_id, write=True)
    _expert(session, expert_id)
    return _feed_out(session, expert_id)


@router.post(
    "/experts/{expert_id}/calendar-feed/rotate",
    response_model=FeedOut,
    summary="A new feed address (made if none); the old one stops working (own; admins any)",
    responses=error_responses(401, 403, 404),
)
def rotate_feed(expert_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> FeedOut:
    _may(user, expert_id, write=True)
    _expert(session, expert_id)
    feed.rotate(session, expert_id)
    return _feed_out(session, expert_id)


@router.delete(
    "/experts/{expert_id}/calendar-feed",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke the feed address (own; admins any)",
    responses=error_responses(401, 403, 404),
)
def revoke_feed(expert_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    _may(user, expert_id, write=True)
    _expert(session, expert_id)
    feed.revoke(session, expert_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@feed_router.get(
    "/calendar-feeds/{token}.ics",
    summary="An expert's consultations as an iCalendar feed (the address is the key)",
    responses={200: {"content": {"text/calendar": {}}}, **error_responses(404)},
    response_class=Response,
)
def read_feed(token: SafeStr, request: Request, session: SessionDep) -> Response:
    expert_id = feed.expert_of(session, token)
    if expert_id is None:
        raise FeedNotFound("No calendar feed at this address.")
    built = feed.build(session, expert_id)
    headers = {"ETag": built.etag, "Cache-Control": "private, no-cache"}
    if request.headers.get("if-none-match") == built.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(built.body, media_type="text/calendar; charset=utf-8", headers=headers)


# Why is a time not offered? ------------------------------------------------------------------


def _at(raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise Unprocessable(
            "Invalid time",
            fields=[FieldProblem(field="at", message="an ISO 8601 time with its offset or Z")],
        )
    return value.astimezone(dt.UTC)


def _zone(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        slots.zone(raw)
    except ValueError:
        raise Unprocessable(
            "Invalid time zone",
            fields=[FieldProblem(field="timezone", message="not a known IANA zone")],
        ) from None
    return raw


def explanation_out(at: dt.datetime, answers: list[explaining.ExpertAnswer]) -> ExplanationOut:
    return ExplanationOut(
        at=at,
        experts=[
            ExpertExplanationOut(
                expert_id=a.expert_id,
                expert=a.expert_name,
                offered=a.explanation.offered,
                reasons=[
                    ReasonOut(
                        rule=r.rule.value,
                        message=MESSAGES[r.rule.value],
                        calendar_id=r.source if isinstance(r.source, uuid.UUID) else None,
                        calendar=a.calendars.get(r.source)
                        if isinstance(r.source, uuid.UUID)
                        else None,
                        starts_at=r.start,
                        ends_at=r.end,
                    )
                    for r in a.explanation.reasons
                ],
            )
            for a in answers
        ],
    )


_AT = Annotated[SafeStr, Query(description="the start asked about, ISO 8601 with offset")]
_TZ = Annotated[
    SafeStr | None, Query(description="the requester's zone for the horizon (default: expert's)")
]


@router.get(
    "/experts/{expert_id}/slot-explanation",
    response_model=ExplanationOut,
    summary="Why is this time not offered with this expert? Every rule that removes it",
    responses=error_responses(401, 403, 404, 422),
)
def explain_expert(
    expert_id: uuid.UUID,
    session: SessionDep,
    _user: RequireStaff,
    at: _AT,
    timezone: _TZ = None,
) -> ExplanationOut:
    _expert(session, expert_id)
    when = _at(at)
    answers = explaining.explain_time(session, [expert_id], when, zone=_zone(timezone))
    return explanation_out(when, answers)


@router.get(
    "/requests/{reference}/slot-explanation",
    response_model=ExplanationOut,
    summary="Why is this time not offered for this request? Its expert's (or pool's) rules",
    responses=error_responses(401, 403, 404, 422),
)
def explain_request(
    reference: SafeStr,
    session: SessionDep,
    _user: RequireStaff,
    at: _AT,
    timezone: _TZ = None,
) -> ExplanationOut:
    req = records.get_by_reference(session, reference)
    if req is None:
        raise RequestNotFound()
    when = _at(at)
    answers = explaining.explain_for_request(session, req, when, zone=_zone(timezone))
    return explanation_out(when, answers)
