"""``/admin/experts``: the admin console's Experts (admins only).

- ``/admin/experts``: every expert profile (active and not) with coverage, languages, load at a
  glance (open assignments against capacity, offers pending), CV on file, weekly hours set and
  a warning for an expert who has no way to hold a consultation's meeting;
  "Add an expert": an account of role expert without a profile, or someone new invited as an
  expert, with their profile made in the same transaction (``accounts.invite_user`` and
  ``experts.create``, the functions ``/api/v1/admin/users`` and ``/api/v1/admin/experts`` call).
- ``/admin/experts/{id}``: one expert: profile (``experts.update``, as ``PATCH``), deactivate
  and reactivate, lead of a region, the CV (a PDF checked by content), weekly hours, date
  overrides and consultation settings (``scheduling.put_availability``, as ``PUT
  /api/v1/experts/{id}/availability``; the availability is replaced whole, so each form sends
  the stored rest unchanged), unavailable periods, current assignments and upcoming
  consultations.

Every action is a plain POST form with the CSRF token (the CV is multipart); the audit
middleware records each one as it records the API's admin changes. A refused action
re-renders the page with an error summary and the message beside the field (nothing of it is
committed); a done one redirects (POST-redirect-GET) with a message.

Times are shown in the viewer's zone with its name (``viewer_zone``) and unavailable periods are
entered in it; weekly hours and date overrides are wall-clock times in the expert's own zone,
as the availability stores them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
import zoneinfo
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from app.accounts import service as accounts
from app.accounts.errors import EmailTaken
from app.accounts.schemas import InviteIn
from app.calendars import feed as calendar_feeds
from app.calendars.errors import CalendarNotFound
from app.core.deps import SessionDep
from app.core.errors import AppError
from app.core.time import now
from app.core.validation import DbId, SafeDate, SafeStr
from app.documents import service as documents
from app.documents.errors import DocumentTooLarge, NotAPdf
from app.experts import queries as expert_queries
from app.experts import service as experts
from app.experts.errors import ExpertNotFound, NotAnExpertAccount
from app.experts.schemas import AbsenceIn, ExpertIn, ExpertUpdate
from app.intake.schemas import ReportTopic
from app.meetings.factory import can_hold_meeting
from app.models import (
    AbsenceKind,
    AssignmentStatus,
    Document,
    ExpertProfile,
    Role,
    User,
)
from app.scheduling import service as scheduling
from app.scheduling.schemas import AvailabilityIn
from app.web import calendars as calendar_pages
from app.web.auth import AdminPageUser, CsrfForm, not_found, page, redirect, viewer_zone
from app.web.expert import WEEKDAYS, _parse_ranges, _ranges_text
from app.web.i18n import filled
from app.web.staff import undo

router = APIRouter(include_in_schema=False)
PATH = "/admin/experts"
NEW = "new"  # the "Add an expert" choice that invites someone new


def N_(text: str) -> str:
    return text


DONE: dict[str, str] = {
    "added": N_("The expert is added. Set their weekly hours so that requesters see slots."),
    "invited": N_(
        "The expert is invited (they get an e-mail to set their password) and their profile "
        "is made. Set their weekly hours so that requesters see slots."
    ),
    "profile": N_("The profile is saved."),
    "deactivated": N_("The expert is deactivated: no new offers; pending offers moved on."),
    "reactivated": N_("The expert is active again."),
    "lead": N_("They lead the region now."),
    "lead_removed": N_("They no longer lead the region."),
    "cv": N_("The CV is saved."),
    "hours": N_("The weekly hours are saved."),
    "settings": N_("The consultation settings are saved."),
    "override": N_("The date override is saved."),
    "override_removed": N_("The date override is removed."),
    "absence": N_("The unavailable period is added: no offers and no slots then."),
    "absence_removed": N_("The unavailable period is removed."),
    **calendar_pages.DONE,
}
MESSAGES: dict[str, str] = {
    "user_id": N_("Choose an expert account without a profile, or invite someone new."),
    "display_name": N_("Enter their name (at most 200 characters)."),
    "email": N_("Enter an e-mail address like name@example.org."),
    "public_name": N_("Enter the name requesters see (at most 200 characters)."),
    "timezone": N_("Enter a time zone name like Europe/Berlin or Asia/Bishkek."),
    "hours_timezone": N_("Enter a time zone name like Europe/Berlin or Asia/Bishkek."),
    "languages": N_("Enter language tags separated by commas, like ru, en."),
    "regions": N_("Choose regions from the list."),
    "countries": N_("Enter two-letter country codes separated by commas, like KG, KZ."),
    "max_open_assignments": N_("Enter a whole number from 0 to 10000."),
    "phone": N_("Enter a phone number with its country code, like +44 20 7946 0000."),
    "zoom_user": N_("Enter the Zoom user's e-mail address or id (at most 320 characters)."),
    "personal_meeting_link": N_("Enter an https:// link (at most 500 characters)."),
    "topics": N_("Choose topics from the list."),
    "slot_minutes": N_("Enter the length in minutes, from 5 to 480."),
    "interval_minutes": N_("Enter minutes from 5 to 480, or leave it empty."),
    "buffer_before_minutes": N_("Enter minutes from 0 to 240."),
    "buffer_after_minutes": N_("Enter minutes from 0 to 240."),
    "min_notice_minutes": N_("Enter minutes from 0 to 43200 (30 days)."),
    "horizon_days": N_("Enter days from 1 to 365."),
    "max_per_day": N_("Enter a number from 0 to 100, or leave it empty for no limit."),
    "day": N_("Write times as HH:MM (00:00 to 23:59), ranges like 09:00-12:00."),
    "override_date": N_("Enter a date, today or later."),
    "override_ranges": N_("Enter ranges like 09:00-12:00, 14:00-17:00, or none for a day off."),
    "absence_starts_at": N_("Enter a date and time."),
    "absence_ends_at": N_("Enter a date and time after the start."),
    "absence_kind": N_("Choose leave or day off."),
    "absence_note": N_("At most 500 characters."),
    "cv": N_("Choose a PDF file to upload."),
    "lead_region": N_("Choose a region."),
}
TAKEN = N_("Someone has an account with this e-mail address already.")
CHECK = N_("Check this field.")
# Messages of our own, translated in the page. Any other message (a rule's sentence quoting
# what was typed) is shown as text: the page's _() marks its result safe, so it never gets one.
OWN_MESSAGES = frozenset([*MESSAGES.values(), TAKEN, CHECK])
KINDS: dict[str, str] = {
    AbsenceKind.leave.value: N_("Leave"),
    AbsenceKind.day_off.value: N_("Day off"),
}
STATUSES: dict[str, str] = {
    AssignmentStatus.offered.value: N_("Offered, waiting for an answer"),
    AssignmentStatus.accepted.value: N_("Accepted"),
}
SETTINGS = (
    "slot_minutes",
    "interval_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "min_notice_minutes",
    "horizon_days",
    "max_per_day",
)
OPTIONAL_SETTINGS = ("interval_minutes", "max_per_day")
DAYS = tuple(f"day{i}" for i in range(7))


# Small helpers -------------------------------------------------------------------------------


def _field(form: FormData, name: str, limit: int = 400) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _choices(form: FormData, name: str, limit: int = 64) -> list[str]:
    return [v.strip()[:64] for v in form.getlist(name) if isinstance(v, str)][:limit]


def _items(text: str) -> list[str]:
    """``"ru, en"`` (commas, semicolons or spaces) as ``["ru", "en"]``."""
    return [t for t in text.replace(";", ",").replace(" ", ",").split(",") if t]


def _problems(exc: ValidationError, key: Callable[[tuple[Any, ...]], str]) -> dict[str, str]:
    """Each problem beside its field."""
    errors: dict[str, str] = {}
    for problem in exc.errors():
        name = key(tuple(problem["loc"]))
        message = str(problem["msg"]).removeprefix("Value error, ")
        # A rule's sentence that names the bad value ("'xx' is not a language tag ...") says
        # more than the field's message; other sentences of the schema lack a subject.
        if problem["type"] != "value_error" or not message.startswith("'"):
            message = MESSAGES.get(name, CHECK)
        errors.setdefault(name, message)
    return errors


def _first(loc: tuple[Any, ...]) -> str:
    return str(loc[0]) if loc else "form"


def _app_problems(exc: AppError, fallback: str) -> dict[str, str]:
    """A service's refusal: beside the fields it names, else beside ``fallback``."""
    if exc.fields:
        return {f.field: MESSAGES.get(f.field, f.message) for f in exc.fields}
    return {fallback: exc.message}


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _local(zone: str) -> Callable[[dt.datetime | None], str]:
    tz = _zone(zone)

    def convert(value: dt.datetime | None) -> str:
        return value.astimezone(tz).strftime("%a %d %b %Y %H:%M") if value else ""

    return convert


def _overlap(ranges: Sequence[dict[str, Any]]) -> tuple[str, int] | None:
    """The first two ranges that overlap, in words, and the day of the later one. The engine
    would merge them, but two ranges of one week that share minutes are a typo more often than
    a plan. A range whose end is not after its start runs past midnight (into the next day; the
    week wraps round)."""
    week = 7 * 24 * 60
    spans: list[tuple[int, int, str, int]] = []
    for r in ranges:
        start, end = _minutes(r["start"]), _minutes(r["end"])
        if start is None or end is None:
            continue  # the schema names a bad time
        day = int(r.get("weekday", 0))
        first = day * 24 * 60 + start
        last = first + (end - start if end > start else end - start + 24 * 60)
        text = f"{r['start']}-{r['end']}"
        spans += [(first, last, text, day), (first + week, last + week, text, day)]
    spans.sort()
    for (_s, end1, text1, _d), (start2, _e, text2, day2) in itertools.pairwise(spans):
        if start2 < end1:
            return f"{text1} and {text2} overlap: make them one range or move one.", day2
    return None


def _minutes(hhmm: str) -> int | None:
    try:
        hours, minutes = (int(x) for x in hhmm.split(":"))
    except ValueError:
        return None
    return hours * 60 + minutes


# The list ------------------------------------------------------------------------------------


def _list_page(
    request: Request,
    db: SessionDep,
    user: User,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    done_message: str | None = None,
) -> Response:
    records = experts.list_profiles(db)
    ids = [r.profile.user_id for r in records]
    regions = experts.region_leads(db)
    ctx: dict[str, Any] = {
        "title": N_("Experts"),
        "records": records,
        "loads": expert_queries.loads(db, ids),
        "with_hours": expert_queries.with_weekly_hours(db, ids),
        # A booking with one of these gets no meeting (its meetings.create ends dead-lettered).
        "no_meeting": {
            r.profile.user_id
            for r in records
            if not can_hold_meeting(r.profile.personal_meeting_link)
        },
        "region_names": {r.code: r.name for r, _ in regions},
        "regions": [r for r, _ in regions],
        "candidates": experts.accounts_without_profile(db),
        "errors": errors or {},
        "own": OWN_MESSAGES,
        "v": {"user_id": NEW, "max_open_assignments": "10", "regions": [], **(values or {})},
        "done_message": done_message,
        "new": NEW,
    }
    return page(request, "staff/admin_experts.html", ctx, user=user, status=status)


@router.get(PATH)
def experts_list(
    request: Request,
    db: SessionDep,
    user: AdminPageUser,
    done: Annotated[SafeStr, Query(max_length=20)] = "",
) -> Response:
    return _list_page(request, db, user, done_message=DONE.get(done))


ADD_FIELDS: dict[str, int] = {
    "user_id": 40,
    "display_name": 300,
    "email": 400,
    "public_name": 300,
    "timezone": 64,
    "languages": 400,
    "countries": 2000,
    "max_open_assignments": 12,
}


@router.post(PATH)
def add_expert(request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm) -> Response:
    values: dict[str, Any] = {k: _field(form, k, n) for k, n in ADD_FIELDS.items()}
    values["regions"] = _choices(form, "regions")
    errors: dict[str, str] = {}
    account: User | None = None
    invite: InviteIn | None = None
    if values["user_id"] == NEW:
        try:
            invite = InviteIn.model_validate(
                {"display_name": values["display_name"], "email": values["email"], "role": "expert"}
            )
        except ValidationError as exc:
            errors = _problems(exc, _first)
    else:
        wanted = {str(u.id): u for u in experts.accounts_without_profile(db)}
        account = wanted.get(values["user_id"])
        if account is None:
            errors["user_id"] = MESSAGES["user_id"]
    name = invite.display_name if invite else account.display_name if account else ""
    raw = {
        "user_id": account.id if account else uuid.UUID(int=0),  # the invited one's id below
        "public_name": values["public_name"] or name,
        "email": invite.email if invite else account.email if account else "x@example.org",
        "timezone": values["timezone"],
        "languages": _items(values["languages"]),
        "regions": values["regions"],
        "countries": _items(values["countries"]),
        "max_open_assignments": values["max_open_assignments"] or None,
    }
    body: ExpertIn | None = None
    try:
        body = ExpertIn.model_validate(raw)
    except ValidationError as exc:
        for k, message in _problems(exc, _first).items():
            errors.setdefault(k, message)
    if errors or body is None:
        return _list_page(request, db, user, status=422, errors=errors, values=values)
    try:
        if invite is not None:
            invited = accounts.invite_user(
                db, email=invite.email, display_name=invite.display_name, role=Role.expert, by=user
            )
            body = body.model_copy(update={"user_id": invited.id})
        record = experts.create(db, body)
    except EmailTaken:
        undo(db)
        errors = {"email": TAKEN}
        return _list_page(request, db, user, status=422, errors=errors, values=values)
    except AppError as exc:
        undo(db)
        errors = _app_problems(exc, "user_id")
        return _list_page(request, db, user, status=exc.status_code, errors=errors, values=values)
    done = "invited" if invite is not None else "added"
    return redirect(f"{PATH}/{record.profile.user_id}?done={done}")


# One expert ----------------------------------------------------------------------------------


def _profile_values(rec: experts.ExpertRecord) -> dict[str, Any]:
    p = rec.profile
    return {
        "public_name": p.public_name,
        "email": p.email,
        "phone": p.phone or "",
        "timezone": p.timezone,
        "languages": ", ".join(p.languages),
        "regions": list(rec.regions),
        "countries": ", ".join(rec.countries),
        "topics": list(p.topics),
        "max_open_assignments": str(p.max_open_assignments),
        "zoom_user": p.zoom_user or "",
        "personal_meeting_link": p.personal_meeting_link or "",
    }


def _availability_values(db: SessionDep, profile: ExpertProfile) -> dict[str, Any]:
    _, row, _ = scheduling.get_availability(db, profile.user_id)
    weekly = list(row.weekly) if row is not None else []
    stored = _stored(db, profile.user_id)
    return {
        "hours_timezone": row.timezone if row else profile.timezone,
        **{f"day{i}": _ranges_text(weekly, i) for i in range(7)},
        **{n: "" if stored[n] is None else str(stored[n]) for n in SETTINGS},
    }


def _stored(db: SessionDep, expert_id: uuid.UUID) -> dict[str, Any]:
    """The stored availability as the service's input (defaults while none is stored): each
    form changes its part and sends the rest as it was (the service replaces it whole)."""
    _, row, overrides = scheduling.get_availability(db, expert_id)
    defaults = AvailabilityIn()
    source: Any = row if row is not None else defaults
    return {
        "timezone": row.timezone if row is not None else None,
        "weekly": list(row.weekly) if row is not None else [],
        "overrides": [{"date": o.date, "ranges": list(o.ranges)} for o in overrides],
        **{n: getattr(source, n) for n in SETTINGS},
    }


def _expert_page(
    request: Request,
    db: SessionDep,
    user: User,
    expert_id: uuid.UUID,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    done_message: str | None = None,
) -> Response:
    rec = experts.get_record(db, expert_id)
    profile = rec.profile
    zone = viewer_zone(user)
    _, row, overrides = scheduling.get_availability(db, expert_id)
    regions = experts.region_leads(db)
    cv = db.get(Document, profile.cv_document_id) if profile.cv_document_id else None
    assignments = expert_queries.expert_assignments(db, expert_id, live_only=True)
    ctx: dict[str, Any] = {
        "title": filled(N_("Expert %(name)s"), name=profile.public_name),
        "rec": rec,
        "p": profile,
        "account": db.get(User, expert_id),
        "load": expert_queries.loads(db, [expert_id])[expert_id],
        "configured": row is not None,
        "hours_set": bool(row is not None and row.weekly),
        "can_meet": can_hold_meeting(profile.personal_meeting_link),
        "expert_zone": row.timezone if row is not None else profile.timezone,
        "overrides": overrides,
        "absences": experts.list_absences(db, expert_id),
        "assignments": assignments,
        "consultations": expert_queries.expert_consultations(db, expert_id, upcoming_only=True),
        "regions": [r for r, _ in regions],
        "leads": {r.code: name for r, name in regions},
        "led": [r for r, _ in regions if r.lead_expert_id == expert_id],
        "region_names": {r.code: r.name for r, _ in regions},
        "topics": [t.value for t in ReportTopic],
        "kinds": KINDS,
        "statuses": STATUSES,
        "weekdays": WEEKDAYS,
        "cv": cv,
        "zone": zone,
        "local": _local(zone),
        "v": {
            **_profile_values(rec),
            **_availability_values(db, profile),
            "override_date": "",
            "override_ranges": "",
            "absence_starts_at": "",
            "absence_ends_at": "",
            "absence_kind": AbsenceKind.leave.value,
            "absence_note": "",
            "lead_region": "",
            **(values or {}),
        },
        "errors": errors or {},
        "own": OWN_MESSAGES,
        "done_message": done_message,
        # Own calendars, the consultation feed, the slot explainer's panel.
        "base_path": f"{PATH}/{expert_id}/calendars",
        **calendar_pages.calendar_context(db, expert_id, zone),
        "explain_expert": str(expert_id),
    }
    ctx["v"].setdefault("calendar_kind", "ics")
    return page(request, "staff/admin_expert.html", ctx, user=user, status=status)


def _exists(db: SessionDep, expert_id: uuid.UUID) -> bool:
    return db.get(ExpertProfile, expert_id) is not None


def _refused(
    request: Request,
    db: SessionDep,
    user: User,
    expert_id: uuid.UUID,
    errors: dict[str, str],
    values: dict[str, Any] | None = None,
    status: int = 422,
) -> Response:
    """Nothing of a refused action is kept; the page again, the problems by their fields."""
    undo(db)
    return _expert_page(request, db, user, expert_id, status=status, errors=errors, values=values)


def _done(expert_id: uuid.UUID, done: str, anchor: str) -> Response:
    return redirect(f"{PATH}/{expert_id}?done={done}#{anchor}")


@router.get(PATH + "/{expert_id}")
def expert_page(
    expert_id: uuid.UUID,
    request: Request,
    db: SessionDep,
    user: AdminPageUser,
    done: Annotated[SafeStr, Query(max_length=20)] = "",
) -> Response:
    if not _exists(db, expert_id):
        return not_found(request, user)
    return _expert_page(request, db, user, expert_id, done_message=DONE.get(done))


PROFILE_FIELDS: dict[str, int] = {
    "public_name": 300,
    "email": 400,
    "phone": 60,
    "timezone": 64,
    "languages": 400,
    "countries": 2000,
    "max_open_assignments": 12,
    "zoom_user": 400,
    "personal_meeting_link": 600,
}


@router.post(PATH + "/{expert_id}/profile")
def save_profile(
    expert_id: uuid.UUID, request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm
) -> Response:
    if not _exists(db, expert_id):
        return not_found(request, user)
    values: dict[str, Any] = {k: _field(form, k, n) for k, n in PROFILE_FIELDS.items()}
    values["regions"] = _choices(form, "regions")
    values["topics"] = _choices(form, "topics")
    raw = {
        "public_name": values["public_name"] or None,
        "email": values["email"] or None,
        "phone": values["phone"] or None,
        "timezone": values["timezone"] or None,
        "languages": _items(values["languages"]),
        "regions": values["regions"],
        "countries": _items(values["countries"]),
        "topics": values["topics"],
        "max_open_assignments": values["max_open_assignments"] or None,
        "zoom_user": values["zoom_user"] or None,
        "personal_meeting_link": values["personal_meeting_link"] or None,
    }
    try:
        body = ExpertUpdate.model_validate(raw)
    except ValidationError as exc:
        return _refused(request, db, user, expert_id, _problems(exc, _first), values)
    # A required field left empty is refused by the service, as the API's null is.
    try:
        experts.update(db, expert_id, body)
    except AppError as exc:
        errors = _app_problems(exc, "public_name")
        return _refused(request, db, user, expert_id, errors, values, exc.status_code)
    return _done(expert_id, "profile", "profile")


@router.post(PATH + "/{expert_id}/deactivate")
def deactivate(
    expert_id: uuid.UUID, request: Request, db: SessionDep, user: AdminPageUser, _f: CsrfForm
) -> Response:
    if not _exists(db, expert_id):
        return not_found(request, user)
    experts.set_active(db, expert_id, False)
    return _done(expert_id, "deactivated", "state")


@router.post(PATH + "/{expert_id}/reactivate")
def reactivate(
    expert_id: uuid.UUID, request: Request, db: SessionDep, user: AdminPageUser, _f: CsrfForm
) -> Response:
    if not _exists(db, expert_id):
        return not_found(request, user)
    experts.set_active(db, expert_id, True)
    return _done(expert_id, "reactivated", "state")


# Lead of a region ----------------------------------------------------------------------------


@router.post(PATH + "/{expert_id}/lead")
def lead_region(
    expert_id: uuid.UUID, request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm
) -> Response:
    if not _exists(db, expert_id):
        return not_found(request, user)
    code = _field(form, "lead_region", 64)
    try:
        experts.set_region_lead(db, code, expert_id)
    except ExpertNotFound:  # the expert exists: the region does not
        errors = {"lead_region": MESSAGES["lead_region"]}
        return _refused(request, db, user, expert_id, errors, {"lead_region": code})
    except NotAnExpertAccount as exc:
        return _refused(request, db, user, expert_id, {"lead_region": exc.message}, None, 409)
    return _done(expert_id, "lead", "lead")


@router.post(PATH + "/{expert_id}/lead/{region_code}/remove")
def stop_leading(
    expert_id: uuid.UUID,
    region_code: SafeStr,
    request: Request,
    db: SessionDep,
    user: AdminPageUser,
    _f: CsrfForm,
) -> Response:
    led = {r.code for r, _ in experts.region_leads(db) if r.lead_expert_id == expert_id}
    if not _exists(db, expert_id) or region_code not in led:
        return not_found(request, user)
    experts.set_region_lead(db, region_code, None)
    return _done(expert_id, "lead_removed", "lead")


# CV ------------------------------------------------------------------------------------------


@router.post(PATH + "/{expert_id}/cv")
def upload_cv(
    expert_id: uuid.UUID, request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm
) -> Response:
    if not _exists(db, expert_id):
        return not_found(request, user)
    upload = form.get("cv")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _refused(request, db, user, expert_id, {"cv": MESSAGES["cv"]})
    try:
        data = documents.read_upload(upload.file)
        if not data:
            return _refused(request, db, user, expert_id, {"cv": MESSAGES["cv"]})
        experts.set_cv(db, expert_id, data=data, filename=upload.filename, by=user)
    except (NotAPdf, DocumentTooLarge) as exc:
        return _refused(request, db, user, expert_id, {"cv": exc.message}, None, exc.status_code)
    return _done(expert_id, "cv", "cv-section")


# Availability: weekly hours, consultation settings, date overrides ---------------------------


def _put_availability(
    db: SessionDep, user: User, expert_id: uuid.UUID, raw: dict[str, Any]
) -> dict[str, str]:
    """Validate and save; the problems by the schema's field names (empty: saved)."""
    try:
        body = AvailabilityIn.model_validate(raw)
    except ValidationError as exc:
        return _problems(exc, lambda loc: ".".join(str(x) for x in loc) or "form")
    scheduling.put_availability(db, expert_id, body, actor=f"user:{user.id}")
    return {}


@router.post(PATH + "/{expert_id}/hours")
def save_hours(
    expert_id: uuid.UUID, request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm
) -> Response:
    if not _exists(db, expert_id):
        return not_found(request, user)
    values = {d: _field(form, d, 300) for d in DAYS}
    values["hours_timezone"] = _field(form, "hours_timezone", 64)
    errors: dict[str, str] = {}
    weekly: list[dict[str, Any]] = []
    for i, name in enumerate(DAYS):
        try:
            weekly += _parse_ranges(values[name], i)
        except ValueError as exc:
            errors[name] = str(exc)
    overlap = None if errors else _overlap(weekly)
    if overlap:
        errors[f"day{overlap[1]}"] = overlap[0]
    if not errors:
        raw = {**_stored(db, expert_id), "weekly": weekly}
        raw["timezone"] = values["hours_timezone"] or None
        for loc, message in _put_availability(db, user, expert_id, raw).items():
            parts = loc.split(".")
            if parts[0] == "weekly" and len(parts) > 1 and parts[1].isdigit():
                errors.setdefault(f"day{weekly[int(parts[1])]['weekday']}", MESSAGES["day"])
            elif parts[0] == "timezone":
                errors.setdefault("hours_timezone", MESSAGES["hours_timezone"])
            else:
                errors.setdefault("day0", message)
    if errors:
        return _refused(request, db, user, expert_id, errors, values)
    return _done(expert_id, "hours", "hours")


@router.post(PATH + "/{expert_id}/settings")
def save_settings(
    expert_id: uuid.UUID, request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm
) -> Response:
    if not _exists(db, expert_id):
        return not_found(request, user)
    values = {n: _field(form, n, 12) for n in SETTINGS}
    raw = _stored(db, expert_id)
    for n in SETTINGS:
        if values[n] or n in OPTIONAL_SETTINGS:
            raw[n] = values[n] or None
        else:
            raw[n] = ""  # a required number left empty: refused beside its field
    errors = {
        k.split(".")[0]: MESSAGES.get(k.split(".")[0], m)
        for k, m in _put_availability(db, user, expert_id, raw).items()
    }
    if errors:
        return _refused(request, db, user, expert_id, errors, values)
    return _done(expert_id, "settings", "settings")


@router.post(PATH + "/{expert_id}/overrides")
def add_override(
    expert_id: uuid.UUID, request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm
) -> Response:
    profile = db.get(ExpertProfile, expert_id)
    if profile is None:
        return not_found(request, user)
    values = {
        "override_date": _field(form, "override_date", 20),
        "override_ranges": _field(form, "override_ranges", 300),
    }
    errors: dict[str, str] = {}
    stored = _stored(db, expert_id)
    today = now().astimezone(_zone(stored["timezone"] or profile.timezone)).date()
    try:
        day = dt.date.fromisoformat(values["override_date"])
        if day < today:
            errors["override_date"] = MESSAGES["override_date"]
    except ValueError:
        errors["override_date"] = MESSAGES["override_date"]
    ranges: list[dict[str, Any]] = []
    try:
        ranges = _parse_ranges(values["override_ranges"], 0)
    except ValueError as exc:
        errors["override_ranges"] = str(exc)
    overlap = None if errors else _overlap(ranges)
    if overlap:
        errors["override_ranges"] = overlap[0]
    if not errors:
        others = [o for o in stored["overrides"] if o["date"] != day]
        wanted = {"date": day, "ranges": [{"start": r["start"], "end": r["end"]} for r in ranges]}
        raw = {**stored, "overrides": [*others, wanted]}
        for loc in _put_availability(db, user, expert_id, raw):
            key = "override_date" if loc.endswith("date") else "override_ranges"
            errors.setdefault(key, MESSAGES[key])
    if errors:
        return _refused(request, db, user, expert_id, errors, values)
    return _done(expert_id, "override", "overrides")


@router.post(PATH + "/{expert_id}/overrides/{day}/remove")
def remove_override(
    expert_id: uuid.UUID,
    day: SafeDate,
    request: Request,
    db: SessionDep,
    user: AdminPageUser,
    _f: CsrfForm,
) -> Response:
    if not _exists(db, expert_id):
        return not_found(request, user)
    stored = _stored(db, expert_id)
    others = [o for o in stored["overrides"] if o["date"] != day]
    if len(others) == len(stored["overrides"]):
        return not_found(request, user)
    if _put_availability(db, user, expert_id, {**stored, "overrides": others}):
        undo(db)  # what was stored was valid; without that one it stays valid
        return not_found(request, user)
    return _done(expert_id, "override_removed", "overrides")


# Unavailable periods -------------------------------------------------------------------------


@router.post(PATH + "/{expert_id}/unavailable")
def add_absence(
    expert_id: uuid.UUID, request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm
) -> Response:
    if not _exists(db, expert_id):
        return not_found(request, user)
    names = ("absence_starts_at", "absence_ends_at", "absence_kind", "absence_note")
    values = {k: _field(form, k, 600) for k in names}
    tz = _zone(viewer_zone(user))
    errors: dict[str, str] = {}
    parsed: dict[str, dt.datetime] = {}
    for name in ("absence_starts_at", "absence_ends_at"):
        try:
            parsed[name] = dt.datetime.fromisoformat(values[name]).replace(tzinfo=tz)
        except ValueError:
            errors[name] = MESSAGES[name]
    if values["absence_kind"] not in KINDS:
        errors["absence_kind"] = MESSAGES["absence_kind"]
    if not errors:
        try:
            body = AbsenceIn.model_validate(
                {
                    "starts_at": parsed["absence_starts_at"],
                    "ends_at": parsed["absence_ends_at"],
                    "kind": values["absence_kind"],
                    "note": values["absence_note"] or None,
                }
            )
        except ValidationError as exc:
            for problem in exc.errors():
                # The schema's own rule (an end before the start) is about the end.
                field = str(problem["loc"][0]) if problem["loc"] else "ends_at"
                errors.setdefault(f"absence_{field}", MESSAGES.get(f"absence_{field}", ""))
        else:
            experts.add_absence(db, expert_id, body)
            return _done(expert_id, "absence", "unavailable")
    return _refused(request, db, user, expert_id, errors, values)


@router.post(PATH + "/{expert_id}/unavailable/{period_id}/remove")
def remove_absence(
    expert_id: uuid.UUID,
    period_id: DbId,
    request: Request,
    db: SessionDep,
    user: AdminPageUser,
    _f: CsrfForm,
) -> Response:
    try:
        experts.delete_absence(db, expert_id, period_id)
    except ExpertNotFound:
        undo(db)
        return not_found(request, user)
    return _done(expert_id, "absence_removed", "unavailable")


# Own calendars and the consultation feed ----------------------------------------------------


@router.post(PATH + "/{expert_id}/calendars")
def connect_calendar(
    expert_id: uuid.UUID, request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm
) -> Response:
    if not _exists(db, expert_id):
        return not_found(request, user)
    errors, values = calendar_pages.connect_from_form(db, expert_id, form)
    if errors:
        return _refused(request, db, user, expert_id, errors, values)
    return _done(expert_id, "calendar", "calendars")


@router.post(PATH + "/{expert_id}/calendars/feed/{action}")
def calendar_feed(
    expert_id: uuid.UUID,
    action: SafeStr,
    request: Request,
    db: SessionDep,
    user: AdminPageUser,
    _f: CsrfForm,
) -> Response:
    if action not in ("rotate", "revoke") or not _exists(db, expert_id):
        return not_found(request, user)
    if action == "rotate":
        calendar_feeds.rotate(db, expert_id)
        return _done(expert_id, "feed", "feed")
    calendar_feeds.revoke(db, expert_id)
    return _done(expert_id, "feed_revoked", "feed")


@router.post(PATH + "/{expert_id}/calendars/{calendar_id}/{action}")
def calendar_action(
    expert_id: uuid.UUID,
    calendar_id: SafeStr,
    action: SafeStr,
    request: Request,
    db: SessionDep,
    user: AdminPageUser,
    _f: CsrfForm,
) -> Response:
    if action not in ("remove", "refresh") or not _exists(db, expert_id):
        return not_found(request, user)
    try:
        done = calendar_pages.calendar_action(db, expert_id, action, calendar_id)
    except CalendarNotFound:
        undo(db)
        return not_found(request, user)
    return _done(expert_id, done, "calendars")
