"""``/admin/roster``: the admin console's Roster (admins only).

A week grid (one row per person on the roster, one column per local day of the chosen week,
``?week=YYYY-MM-DD``, its Monday) with each person's weekly shifts and one-off changes shown in
the viewer's zone (``viewer_zone``), each with its own zone's wall-clock times beside it; duty
that runs past the viewer's midnight is cut into one piece per day
(``app.roster.service.week_entries``). Beside it, the gaps of the next 7 days in words.

Add, change and delete a weekly shift; add and delete a one-off change (extra duty or off, its
times entered in the viewer's zone and stored in UTC). Every action is a plain POST form with
the CSRF token and calls the same service function as the API's ``/api/v1/admin/roster/...``
routes (``app/roster/admin.py``) with the API's own input models, so validation is identical; the
audit middleware records each form's POST as it records the API's. A refused action re-renders
the page with an error summary and the message beside the field, nothing changed (the service
call runs in a savepoint); a done one redirects (POST-redirect-GET) with a message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.core.deps import SessionDep
from app.core.time import now
from app.core.validation import DbId, SafeStr, in_calendar
from app.models import DutyLevel, OverrideKind, Region, RosterShift, User
from app.roster import admin
from app.roster import service as roster
from app.roster.errors import InvalidRosterEntry, OverrideNotFound, ShiftNotFound
from app.roster.schemas import OverrideIn, ShiftIn, ShiftPatch
from app.web.auth import AdminPageUser, CsrfForm, not_found, page, redirect, viewer_zone

router = APIRouter(include_in_schema=False)
PATH = "/admin/roster"
GAP_DAYS = 7
DASH = "\u2013"  # an en dash between two times


def N_(text: str) -> str:
    return text


WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
WEEKDAY_NAMES = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)
MONTHS = (
    N_("Jan"),
    N_("Feb"),
    N_("Mar"),
    N_("Apr"),
    N_("May"),
    N_("Jun"),
    N_("Jul"),
    N_("Aug"),
    N_("Sep"),
    N_("Oct"),
    N_("Nov"),
    N_("Dec"),
)
LEVELS: dict[str, str] = {
    DutyLevel.member.value: N_("Member"),
    DutyLevel.lead.value: N_("Duty lead"),
    DutyLevel.supervisor.value: N_("Supervisor"),
}
KINDS: dict[str, str] = {
    OverrideKind.extra.value: N_("Extra duty"),
    OverrideKind.cancel.value: N_("Off"),
}
DONE: dict[str, str] = {
    "shift_added": N_("The shift is added."),
    "shift_changed": N_("The shift is changed."),
    "shift_deleted": N_("The shift is deleted."),
    "override_added": N_("The one-off change is added."),
    "override_deleted": N_("The one-off change is deleted."),
}
MESSAGES: dict[str, str] = {
    "user_id": N_("Choose a person with an active account."),
    "weekday": N_("Choose the weekday the shift starts on."),
    "starts_local": N_("Enter a start time like 09:00."),
    "ends_local": N_("Enter an end time like 17:00."),
    "timezone": N_("Enter a time zone name like Europe/London or Asia/Bishkek."),
    "level": N_("Choose member, duty lead or supervisor."),
    "note": N_("Keep the note to 200 characters or fewer."),
    "kind": N_("Choose extra duty or off."),
    "starts_at": N_("Enter the start as a date and time."),
    "ends_at": N_("Enter the end as a date and time."),
    "week": N_("Enter a date like 2027-03-29."),
}
# The service's own refusals (app/roster/admin.py), in the page's words.
SERVICE_MESSAGES: dict[str, str] = {
    "must be after starts_at": N_("The end must be after the start."),
    "an override lasts at most 31 days": N_("A one-off change lasts at most 31 days."),
    "no such user": N_("Choose a person with an active account."),
    "this account is deactivated": N_("This account is deactivated: choose another person."),
}
SHIFT_FIELDS = ("user_id", "weekday", "starts_local", "ends_local", "timezone", "level", "note")
OVERRIDE_FIELDS = ("user_id", "kind", "starts_at", "ends_at", "level", "note")


# Words for times -------------------------------------------------------------------------------


def day_words(day: dt.date) -> str:
    """A day in words, like "Tue 30 Mar"."""
    return f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]}"


def span_words(start: dt.datetime, end: dt.datetime) -> str:
    """A local span: "02:00-06:00" within a day, "22:00-24:00" to its midnight, "22:00-06:00"
    overnight (under a day), else both dates ("Tue 30 Mar 22:00 - Thu 1 Apr 06:00")."""
    if end.date() == start.date():
        return f"{start:%H:%M}{DASH}{end:%H:%M}"
    next_day = start.date() + dt.timedelta(days=1)
    if end.date() == next_day and end.time() == dt.time():
        return f"{start:%H:%M}{DASH}24:00"
    if end.date() == next_day and end - start < dt.timedelta(days=1):
        return f"{start:%H:%M}{DASH}{end:%H:%M}"
    return f"{day_words(start.date())} {start:%H:%M} {DASH} {day_words(end.date())} {end:%H:%M}"


def gap_words(start: dt.datetime, end: dt.datetime) -> str:
    """When a gap is, in the viewer's zone: "Tue 30 Mar, 02:00-06:00"."""
    if end.date() == start.date() or (
        end.date() == start.date() + dt.timedelta(days=1) and end.time() == dt.time()
    ):
        return f"{day_words(start.date())}, {span_words(start, end)}"
    return f"{day_words(start.date())} {start:%H:%M} {DASH} {day_words(end.date())} {end:%H:%M}"


# The page's data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    kind: str
    source_id: int
    level: str
    times: str
    from_previous_day: bool
    into_next_day: bool
    own: str
    note: str | None
    off: str


@dataclass(frozen=True)
class Row:
    person: User
    days: list[list[Cell]]


def _cell(entry: roster.WeekEntry) -> Cell:
    end = "24:00" if entry.end.date() > entry.day else f"{entry.end:%H:%M}"
    return Cell(
        kind=entry.kind,
        source_id=entry.source_id,
        level=entry.level.value,
        times=f"{entry.start:%H:%M}{DASH}{end}",
        from_previous_day=entry.from_previous_day,
        into_next_day=entry.into_next_day,
        own=f"{entry.own_zone} {span_words(entry.own_start, entry.own_end)}",
        note=entry.note,
        off=entry.off,
    )


def parse_week(raw: str, zone_name: str) -> dt.date | None:
    """The Monday of the week holding ``raw`` (a date); None when ``raw`` is not one we show."""
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        return None
    monday = roster.week_monday(day)
    if not (in_calendar(monday - dt.timedelta(days=7)) and in_calendar(monday + dt.timedelta(14))):
        return None
    return monday


def this_week(zone_name: str) -> dt.date:
    return roster.week_monday(now().astimezone(roster.zone(zone_name)).date())


def _people(db: Session) -> list[User]:
    return list(
        db.scalars(
            select(User).where(User.is_active.is_(True)).order_by(User.display_name, User.id)
        ).all()
    )


def _grid(db: Session, monday: dt.date, zone_name: str) -> tuple[list[Row], list[Any]]:
    days = roster.week_days(monday, zone_name)
    start, end = days[0][1], days[-1][2]
    shifts = admin.list_shifts(db)
    overrides = [o for o in admin.list_overrides(db, since=start) if o.starts_at < end]
    ids = {s.user_id for s in shifts} | {o.user_id for o in overrides}
    people = (
        list(db.scalars(select(User).where(User.id.in_(ids)).order_by(User.display_name, User.id)))
        if ids
        else []
    )
    with_overrides = {o.user_id for o in overrides}
    zones = {p.id: admin.default_zone(db, p) for p in people if p.id in with_overrides}
    entries = roster.week_entries(shifts, overrides, monday, zone_name, zones)
    rows = []
    for person in people:
        cells: list[list[Cell]] = [[] for _ in range(7)]
        for e in entries:
            if e.user_id == person.id:
                cells[(e.day - monday).days].append(_cell(e))
        rows.append(Row(person, cells))
    return rows, overrides


def _gaps(db: Session, zone_name: str) -> tuple[bool, list[dict[str, str]]]:
    tz = roster.zone(zone_name)
    start = now()
    found = roster.gaps(db, start, start + dt.timedelta(days=GAP_DAYS))
    names = {code: name for code, name in db.execute(select(Region.code, Region.name))}
    out = []
    for g in found:
        when = gap_words(g.start.astimezone(tz), g.end.astimezone(tz))
        if g.kind == "staff":
            out.append({"kind": "staff", "when": when, "region": ""})
        else:
            region = names.get(g.region_code or "", g.region_code or "")
            out.append({"kind": "region", "when": when, "region": region})
    return roster.roster_is_empty(db), out


def _blank_shift(zone_name: str) -> dict[str, str]:
    return {
        "user_id": "",
        "weekday": "0",
        "starts_local": "09:00",
        "ends_local": "17:00",
        "timezone": zone_name,
        "level": DutyLevel.member.value,
        "note": "",
    }


def _blank_override() -> dict[str, str]:
    return {
        "user_id": "",
        "kind": OverrideKind.extra.value,
        "starts_at": "",
        "ends_at": "",
        "level": DutyLevel.member.value,
        "note": "",
    }


def _roster(
    request: Request,
    db: Session,
    user: User,
    monday: dt.date,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    shift_form: dict[str, str] | None = None,
    override_form: dict[str, str] | None = None,
    done_message: str | None = None,
    week_text: str | None = None,
) -> Response:
    zone_name = viewer_zone(user)
    rows, overrides = _grid(db, monday, zone_name)
    tz = roster.zone(zone_name)
    names = {r.person.id: r.person for r in rows}
    sunday = monday + dt.timedelta(days=6)
    empty, gaps = _gaps(db, zone_name)
    ctx: dict[str, Any] = {
        "title": N_("Roster"),
        "zone": zone_name,
        "week": monday.isoformat(),
        "week_text": week_text if week_text is not None else monday.isoformat(),
        "week_words": f"{day_words(monday)} {DASH} {day_words(sunday)} {sunday.year}",
        "previous_week": (monday - dt.timedelta(days=7)).isoformat(),
        "next_week": (monday + dt.timedelta(days=7)).isoformat(),
        "this_week": this_week(zone_name).isoformat(),
        "days": [day_words(monday + dt.timedelta(days=i)) for i in range(7)],
        "rows": rows,
        "overrides": [
            {
                "id": o.id,
                "person": names.get(o.user_id),
                "kind": o.kind.value,
                "level": o.level.value,
                "when": gap_words(o.starts_at.astimezone(tz), o.ends_at.astimezone(tz)),
                "note": o.note,
            }
            for o in overrides
        ],
        "roster_empty": empty,
        "gaps": gaps,
        "gap_days": GAP_DAYS,
        "people": _people(db),
        "levels": LEVELS,
        "kinds": KINDS,
        "weekdays": WEEKDAY_NAMES,
        "errors": errors or {},
        "shift": shift_form or _blank_shift(zone_name),
        "override": override_form or _blank_override(),
        "done_message": done_message,
    }
    return page(request, "staff/admin_roster.html", ctx, user=user, status=status)


# Forms -----------------------------------------------------------------------------------------


def _field(form: FormData, name: str, limit: int = 300) -> str:
    return str(form.get(name) or "")[:limit].strip()


def _answers(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    return {name: _field(form, name) for name in names}


def _week_of(form: FormData, zone_name: str) -> dt.date:
    return parse_week(_field(form, "week", 20), zone_name) or this_week(zone_name)


def _input(answers: Mapping[str, str]) -> dict[str, Any]:
    """The form's answers as the API's JSON would carry them: blanks are absent (a note) or
    refused by the model (a required field)."""
    return {k: v for k, v in answers.items() if v != "" or k not in ("note", "timezone")}


def _validation_errors(exc: ValidationError, prefix: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in exc.errors():
        name = str(problem["loc"][0]) if problem["loc"] else ""
        if name not in MESSAGES:
            # The one check across fields: a time with an offset beside one without (the
            # page's inputs send neither; the offset one is named).
            name = "starts_at" if _has_offset(problem.get("input"), "starts_at") else "ends_at"
        errors.setdefault(f"{prefix}-{name}", MESSAGES[name])
    return errors


def _has_offset(data: object, name: str) -> bool:
    if not isinstance(data, dict):
        return False
    try:
        return dt.datetime.fromisoformat(str(data.get(name))).tzinfo is not None
    except ValueError:
        return False


def _service_errors(exc: InvalidRosterEntry, prefix: str) -> dict[str, str]:
    return {
        f"{prefix}-{p.field}": SERVICE_MESSAGES.get(p.message, MESSAGES.get(p.field, p.message))
        for p in exc.fields
    }


def _attempt(db: Session, action: Callable[[], object], prefix: str) -> dict[str, str]:
    """Run one service call; a refusal leaves nothing behind and comes back as field errors."""
    try:
        with db.begin_nested():
            action()
    except InvalidRosterEntry as exc:
        return _service_errors(exc, prefix)
    return {}


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], data: dict[str, Any], prefix: str) -> tuple[M | None, dict[str, str]]:
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        return None, _validation_errors(exc, prefix)


# Routes ----------------------------------------------------------------------------------------


@router.get(PATH)
def roster_page(
    request: Request,
    db: SessionDep,
    user: AdminPageUser,
    week: Annotated[SafeStr, Query(max_length=20)] = "",
    done: Annotated[SafeStr, Query(max_length=20)] = "",
) -> Response:
    zone_name = viewer_zone(user)
    monday = parse_week(week, zone_name) if week else this_week(zone_name)
    if monday is None:
        return _roster(
            request,
            db,
            user,
            this_week(zone_name),
            status=400,
            errors={"week": MESSAGES["week"]},
            week_text=week,
        )
    return _roster(request, db, user, monday, done_message=DONE.get(done))


@router.post(f"{PATH}/shifts")
def add_shift(request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm) -> Response:
    zone_name = viewer_zone(user)
    monday = _week_of(form, zone_name)
    answers = _answers(form, SHIFT_FIELDS)
    body, errors = _validate(ShiftIn, _input(answers), "shift")
    if body is not None:
        errors = _attempt(db, lambda: admin.create_shift(db, body), "shift")
    if errors:
        return _roster(request, db, user, monday, status=422, errors=errors, shift_form=answers)
    return redirect(f"{PATH}?week={monday.isoformat()}&done=shift_added")


def _shift_page(
    request: Request,
    db: Session,
    user: User,
    shift: RosterShift,
    week: str,
    *,
    answers: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    person = db.get(User, shift.user_id)
    ctx: dict[str, Any] = {
        "title": N_("Change a shift"),
        "shift_row": shift,
        "person_name": person.display_name if person is not None else "",
        "shift": answers or _shift_answers(shift),
        "week": week,
        "levels": LEVELS,
        "weekdays": WEEKDAY_NAMES,
        "errors": errors or {},
    }
    return page(request, "staff/admin_roster_shift.html", ctx, user=user, status=status)


def _shift_answers(shift: RosterShift) -> dict[str, str]:
    return {
        "user_id": str(shift.user_id),
        "weekday": str(shift.weekday),
        "starts_local": f"{shift.starts_local:%H:%M}",
        "ends_local": f"{shift.ends_local:%H:%M}",
        "timezone": shift.timezone,
        "level": shift.level.value,
        "note": shift.note or "",
    }


@router.get(PATH + "/shifts/{shift_id}")
def shift_page(
    request: Request,
    db: SessionDep,
    shift_id: DbId,
    user: AdminPageUser,
    week: Annotated[SafeStr, Query(max_length=20)] = "",
) -> Response:
    try:
        shift = admin.get_shift(db, shift_id)
    except ShiftNotFound:
        return not_found(request, user)
    monday = parse_week(week, viewer_zone(user)) or this_week(viewer_zone(user))
    return _shift_page(request, db, user, shift, monday.isoformat())


@router.post(PATH + "/shifts/{shift_id}")
def change_shift(
    request: Request, db: SessionDep, shift_id: DbId, user: AdminPageUser, form: CsrfForm
) -> Response:
    monday = _week_of(form, viewer_zone(user))
    try:
        shift = admin.get_shift(db, shift_id)
    except ShiftNotFound:
        return not_found(request, user)
    answers = _answers(form, SHIFT_FIELDS[1:])
    data = _input(answers)
    # Changing a shift changes its times, zone, level and note; an emptied zone is refused.
    data.setdefault("note", None)
    data.setdefault("timezone", "")
    body, errors = _validate(ShiftPatch, data, "shift")
    if body is not None:
        errors = _attempt(db, lambda: admin.update_shift(db, shift_id, body), "shift")
    if errors:
        answers["user_id"] = str(shift.user_id)
        return _shift_page(
            request, db, user, shift, monday.isoformat(), answers=answers, errors=errors, status=422
        )
    return redirect(f"{PATH}?week={monday.isoformat()}&done=shift_changed#person-{shift.user_id}")


@router.post(PATH + "/shifts/{shift_id}/delete")
def delete_shift(
    request: Request, db: SessionDep, shift_id: DbId, user: AdminPageUser, form: CsrfForm
) -> Response:
    monday = _week_of(form, viewer_zone(user))
    try:
        admin.delete_shift(db, shift_id)
    except ShiftNotFound:
        return not_found(request, user)
    return redirect(f"{PATH}?week={monday.isoformat()}&done=shift_deleted")


@router.post(f"{PATH}/overrides")
def add_override(request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm) -> Response:
    zone_name = viewer_zone(user)
    monday = _week_of(form, zone_name)
    answers = _answers(form, OVERRIDE_FIELDS)
    # Entered in the viewer's zone (offset-less): the service stores the UTC instants.
    body, errors = _validate(OverrideIn, {**_input(answers), "timezone": zone_name}, "override")
    for name in ("starts_at", "ends_at"):
        if body is not None and getattr(body, name).tzinfo is not None:
            errors, body = {f"override-{name}": MESSAGES[name]}, None
    if body is not None:
        errors = _attempt(db, lambda: admin.create_override(db, body), "override")
    if errors:
        return _roster(request, db, user, monday, status=422, errors=errors, override_form=answers)
    assert body is not None
    shown = roster.week_monday(body.starts_at.date())
    return redirect(f"{PATH}?week={shown.isoformat()}&done=override_added")


@router.post(PATH + "/overrides/{override_id}/delete")
def delete_override(
    request: Request, db: SessionDep, override_id: DbId, user: AdminPageUser, form: CsrfForm
) -> Response:
    monday = _week_of(form, viewer_zone(user))
    try:
        admin.delete_override(db, override_id)
    except OverrideNotFound:
        return not_found(request, user)
    return redirect(f"{PATH}?week={monday.isoformat()}&done=override_deleted")
