"""Pages of experts' own calendars, their consultation feed, and the slot explainer.

- ``/expert/calendars``: the expert connects a calendar (a private ICS address, or a CalDAV
  account with an app password), sees each one's last successful read and last error, reads
  it again or removes it; shows, rotates (a new address) or revokes their consultation feed.
  Admins do the same for any expert on ``/admin/experts/{id}`` (``app/web/admin_experts.py``,
  with the helpers here).
- ``/staff/slot-explanation?reference=...&at=...`` (or ``expert=``): why a time is not offered,
  every rule (staff and admins). The panel ``staff/_slot_explainer.html`` is a GET form to it
  that the admin's expert page and the case page include.

Every change is a POST form with the CSRF token, through ``app/calendars`` (the same service
functions as ``/api/v1/experts/{id}/calendars``). A refused one re-renders with the message
beside its field.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.calendars import feed, service
from app.calendars.errors import CalendarInvalid, CalendarNotFound
from app.calendars.schemas import CalendarIn
from app.core.deps import SessionDep
from app.core.validation import SafeStr
from app.intake import records
from app.models import ExpertProfile, User
from app.scheduling.explain import Rule
from app.scheduling.service import explaining
from app.web.auth import (
    CsrfForm,
    ExpertPageUser,
    StaffPageUser,
    not_found,
    page,
    redirect,
    viewer_zone,
)

router = APIRouter(include_in_schema=False)
PATH = "/expert/calendars"


def N_(text: str) -> str:
    return text


DONE: dict[str, str] = {
    "calendar": N_(
        "The calendar is connected: it is read within a minute, then every few minutes."
    ),
    "calendar_removed": N_("The calendar is removed; its busy times no longer block slots."),
    "calendar_refresh": N_("The calendar will be read again within a minute."),
    "feed": N_("A new feed address is made: the old one no longer works."),
    "feed_revoked": N_("The feed address is revoked: it no longer works."),
}
MESSAGES: dict[str, str] = {
    "calendar_kind": N_("Choose a private ICS address or a CalDAV account."),
    "calendar_address": N_("Enter the calendar's https:// or webcal:// address."),
    "calendar_label": N_("At most 100 characters."),
    "calendar_username": N_("Enter the CalDAV user name (often your e-mail address)."),
    "calendar_password": N_("Enter an app password made for this service."),
}
RULES: dict[str, str] = {
    Rule.OUTSIDE_HOURS.value: N_("Outside the expert's working hours that day."),
    Rule.OVERRIDE.value: N_("The date has other hours (a date override or a day off)."),
    Rule.OFF_GRID.value: N_("Not one of the offered starts (they follow the consultation grid)."),
    Rule.MINIMUM_NOTICE.value: N_("Too soon: before the minimum notice."),
    Rule.HORIZON.value: N_("Beyond the booking horizon."),
    Rule.DAILY_CAP.value: N_("The expert's day is full (daily cap)."),
    Rule.LEAVE.value: N_("The expert is away (leave or a day off)."),
    Rule.BOOKING.value: N_("Another consultation is booked then."),
    Rule.BOOKING_BUFFER.value: N_("Inside the buffer around another consultation."),
    Rule.CALENDAR_BUSY.value: N_("Busy in the expert's own calendar:"),
    Rule.OTHER.value: N_("Not offered."),
}
KINDS: dict[str, str] = {
    "ics": N_("Private ICS address (Google, Outlook, Apple iCloud)"),
    "caldav": N_("CalDAV account (Apple iCloud, Fastmail, Nextcloud...)"),
}
FIELDS = ("calendar_kind", "calendar_address", "calendar_label", "calendar_username")


def _field(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def connect_from_form(
    db: Session, expert_id: uuid.UUID, form: FormData
) -> tuple[dict[str, str], dict[str, str]]:
    """Connect what the form names; (errors by field, values to show again)."""
    values = {name: _field(form, name) for name in FIELDS}
    password = _field(form, "calendar_password", 500)
    if values["calendar_kind"] not in KINDS:
        return {"calendar_kind": MESSAGES["calendar_kind"]}, values
    try:
        body = CalendarIn.model_validate(
            {
                "kind": values["calendar_kind"],
                "address": values["calendar_address"],
                "label": values["calendar_label"] or None,
                "username": values["calendar_username"] or None,
                "password": password or None,
            }
        )
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for problem in exc.errors():
            name = f"calendar_{problem['loc'][0]}" if problem["loc"] else "calendar_address"
            errors.setdefault(name, MESSAGES.get(name, MESSAGES["calendar_address"]))
        return errors, values
    try:
        service.connect(db, expert_id, body)
    except CalendarInvalid as exc:
        return {
            f"calendar_{f.field}": MESSAGES.get(f"calendar_{f.field}", f.message)
            for f in exc.fields
        }, values
    return {}, values


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def calendar_context(db: Session, expert_id: uuid.UUID, zone: str) -> dict[str, Any]:
    """What ``staff/_calendars.html`` shows: the calendars with their state, the feed."""
    tz = _zone(zone)
    row = feed.get_feed(db, expert_id)
    return {
        "calendars": service.list_calendars(db, expert_id),
        "calendar_kinds": KINDS,
        "feed_url": feed.show(db, expert_id) if row is not None else None,
        "feed_created": row.created_at if row is not None else None,
        "cal_local": lambda v: v.astimezone(tz).strftime("%a %d %b %Y %H:%M") if v else "",
    }


def calendar_action(db: Session, expert_id: uuid.UUID, action: str, calendar_id: str) -> str:
    """Remove, refresh; the done key (raises CalendarNotFound)."""
    try:
        found = uuid.UUID(calendar_id)
    except ValueError:
        raise CalendarNotFound("No such calendar.") from None
    if action == "remove":
        service.remove(db, expert_id, found)
        return "calendar_removed"
    service.refresh_now(db, expert_id, found)
    return "calendar_refresh"


# The expert's own page -----------------------------------------------------------------------


def _own_page(
    request: Request,
    db: Session,
    user: User,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str = "",
) -> Response:
    ctx: dict[str, Any] = {
        "title": N_("My calendars"),
        "base_path": PATH,
        "errors": errors or {},
        "v": {"calendar_kind": "ics", **(values or {})},
        "done_message": DONE.get(done),
        "own_messages": frozenset(MESSAGES.values()),
        **calendar_context(db, user.id, viewer_zone(user)),
    }
    return page(request, "staff/expert_calendars.html", ctx, user=user, status=status)


@router.get(PATH)
def my_calendars(
    request: Request,
    db: SessionDep,
    user: ExpertPageUser,
    done: Annotated[SafeStr, Query(max_length=20)] = "",
) -> Response:
    if db.get(ExpertProfile, user.id) is None:
        return not_found(request, user)
    return _own_page(request, db, user, done=done)


@router.post(PATH)
def connect_mine(
    request: Request, db: SessionDep, user: ExpertPageUser, form: CsrfForm
) -> Response:
    if db.get(ExpertProfile, user.id) is None:
        return not_found(request, user)
    errors, values = connect_from_form(db, user.id, form)
    if errors:
        return _own_page(request, db, user, status=422, errors=errors, values=values)
    return redirect(f"{PATH}?done=calendar#calendars")


@router.post(PATH + "/feed/{action}")
def my_feed(
    action: SafeStr, request: Request, db: SessionDep, user: ExpertPageUser, _f: CsrfForm
) -> Response:
    if action not in ("rotate", "revoke") or db.get(ExpertProfile, user.id) is None:
        return not_found(request, user)
    if action == "rotate":
        feed.rotate(db, user.id)
    else:
        feed.revoke(db, user.id)
    return redirect(f"{PATH}?done={'feed' if action == 'rotate' else 'feed_revoked'}#feed")


@router.post(PATH + "/{calendar_id}/{action}")
def my_calendar_action(
    calendar_id: SafeStr,
    action: SafeStr,
    request: Request,
    db: SessionDep,
    user: ExpertPageUser,
    _f: CsrfForm,
) -> Response:
    if action not in ("remove", "refresh"):
        return not_found(request, user)
    try:
        done = calendar_action(db, user.id, action, calendar_id)
    except CalendarNotFound:
        return not_found(request, user)
    return redirect(f"{PATH}?done={done}#calendars")


# The slot explainer --------------------------------------------------------------------------


def explanation_context(
    db: Session,
    user: User,
    *,
    reference: str = "",
    expert: str = "",
    at_text: str = "",
) -> dict[str, Any]:
    """The panel's values, and its answer when a time was asked."""
    zone = viewer_zone(user)
    ctx: dict[str, Any] = {
        "explain_reference": reference,
        "explain_expert": expert,
        "explain_at": at_text,
        "explain_zone": zone,
        "explain_rules": RULES,
        "explain_answers": None,
        "explain_error": None,
        "cal_local": calendar_context_local(zone),
    }
    if not at_text:
        return ctx
    try:
        at = dt.datetime.fromisoformat(at_text).replace(tzinfo=_zone(zone)).astimezone(dt.UTC)
    except ValueError:
        ctx["explain_error"] = N_("Enter a date and time.")
        return ctx
    if reference:
        req = records.get_by_reference(db, reference)
        if req is None:
            return ctx
        ctx["explain_answers"] = explaining.explain_for_request(db, req, at)
    elif expert:
        try:
            expert_id = uuid.UUID(expert)
        except ValueError:
            return ctx
        ctx["explain_answers"] = explaining.explain_time(db, [expert_id], at)
    return ctx


def calendar_context_local(zone: str) -> Any:
    tz = _zone(zone)
    return lambda v: v.astimezone(tz).strftime("%a %d %b %Y %H:%M") if v else ""


@router.get("/staff/slot-explanation")
def slot_explanation(
    request: Request,
    db: SessionDep,
    user: StaffPageUser,
    reference: Annotated[SafeStr, Query(max_length=40)] = "",
    expert: Annotated[SafeStr, Query(max_length=40)] = "",
    at: Annotated[SafeStr, Query(max_length=40)] = "",
) -> Response:
    ctx = explanation_context(db, user, reference=reference, expert=expert, at_text=at)
    status = 422 if ctx["explain_error"] else 200
    ctx["title"] = N_("Why is a time not offered?")
    return page(request, "staff/slot_explanation.html", ctx, user=user, status=status)
