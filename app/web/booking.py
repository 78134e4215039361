"""The requester's booking pages: free slots, booking, rescheduling, cancelling, the
calendar file.

- ``GET /r/{reference}/book`` (``?tz=Area/City&from=YYYY-MM-DD&lang=``): a week of free slots
  from ``app.scheduling.service.list_slots`` (the service of ``GET /api/v1/requests/{ref}/slots``)
  in the request's zone or the one chosen on the page, grouped by local date. Each slot is a
  small form (a button), so booking works without JavaScript. Without the link's cookie the
  page is the "open your link" form, as ``/r/{reference}`` is (the e-mails link here with the
  token in the fragment).
- ``POST /r/{reference}/book``: choosing a time holds it (``holds.hold``, the service of
  ``POST /api/v1/requests/{ref}/consultation/hold``) for ``INTAKE_SLOT_HOLD_MINUTES``, then
  the confirm step. A slot taken meanwhile comes back as the page with the reason and the fresh
  list (409), never a 500; the attempt is rolled back inside a savepoint, so nothing of it is
  committed.
- ``GET /r/{reference}/book/confirm``: the held time (date, time, zone in words, length, the
  expert's public name, until when it is held), "Confirm" and "Choose another time".
  ``POST .../book/confirm`` books it (``holds.confirm``: ``scheduling.book``, or
  ``scheduling.reschedule`` when a consultation is booked); a hold that has expired comes back
  as the week of that time with the reason (409). ``POST .../book/release`` lets it go.
- ``GET /r/{reference}/booked``: the confirmation (time in the zone, join link, calendar file).
- ``GET /r/{reference}/consultation.ics``: the booked consultation as an iCalendar file (same
  UID and SEQUENCE as the e-mailed invite, so importing both keeps one event).
- ``GET /r/{reference}/cancel``: the confirmation step (what is cancelled, "yes" and "no");
  ``POST`` from it calls ``scheduling.cancel``.
- ``GET /r/{reference}/export``: everything held about the request, as a JSON download.

Every route needs the link's cookie of this request; anything else answers 404.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.core.deps import SessionDep
from app.core.settings import get_settings
from app.core.time import now
from app.core.validation import SafeStr, in_calendar
from app.intake import records as intake
from app.models import Consultation, IntakeRequest, SlotHold
from app.notifications import dates
from app.privacy import service as privacy
from app.scheduling import ics
from app.scheduling import service as scheduling
from app.scheduling.errors import (
    BookingNotAllowed,
    ConsultationNotFound,
    HoldExpired,
    HoldNotFound,
    SlotQueryInvalid,
    SlotUnavailable,
)
from app.scheduling.service import Caller, holds
from app.scheduling.slots import zone as slot_zone
from app.web import consultations as cv
from app.web.public import (
    N_,
    FormDep,
    canonical,
    not_found_page,
    page_lang,
    refused_page,
    render,
    requester_from_cookie,
    tr,
    translator,
    zone_groups,
)
from app.web.security import CSRF_FIELD, PAGE_HEADERS, csrf_ok, csrf_value

router = APIRouter(include_in_schema=False)

WEEK = 7  # days of slots on one page
REQUESTER = Caller("requester")

# Why a chosen time could not be booked (``SlotTaken.details["reason"]``), in the page's words.
REASONS = {
    "conflict": N_("Sorry, this time has just been taken. Please choose another."),
    "not_offered": N_("This time is not one of the free times. Please choose another."),
    "too_soon": N_("This time is too soon to book. Please choose a later one."),
    "beyond_horizon": N_("This time is too far ahead. Please choose an earlier one."),
    "day_full": N_("That day is fully booked. Please choose another day."),
    "unavailable": N_("The expert is away at this time. Please choose another."),
    "no_expert": N_("No expert can take a consultation at this time. Please choose another."),
}
OTHER_REASON = N_("This time is no longer free. Please choose another.")
NOT_BOOKABLE = N_(
    "A consultation can no longer be booked online for this request. Write to us if you need one."
)
DONE = {"rescheduled": N_("Your consultation is moved to the new time.")}  # booked: the heading
EXPIRED = N_(
    "We kept the time for you for %(minutes)d minutes, but it was not confirmed, so it was "
    "released. Choose a time again."
)
NOTHING_HELD = N_("No time is held for you any more. Choose a time again.")


# Loading -------------------------------------------------------------------------------------


def _mine(request: Request, session: Session, reference: str) -> IntakeRequest | None:
    """The request of the link's cookie, or None (then: 404)."""
    ref = canonical(reference)
    if ref is None or ref != reference:
        return None
    return requester_from_cookie(request, session, ref)


def _not_found(request: Request) -> HTMLResponse:
    return not_found_page(request)


def _zone(request: Request, req: IntakeRequest, raw: str | None = None) -> tuple[str, bool]:
    """(the zone to show times in, whether a zone asked for was unknown)."""
    asked = raw if raw is not None else request.query_params.get("tz")
    if asked:
        found = cv.valid_zone(asked)
        if found is not None:
            return found, False
        return req.timezone, True
    return req.timezone, False


def _query(lang: str, zone: str, **extra: str) -> str:
    return "?" + urlencode({"lang": lang, "tz": zone, **extra})


def _date(raw: str | None) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return None


# The week of slots ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotView:
    start_utc: str  # the value the form sends
    label: str  # "14:30", or "01:30 (UTC+01:00)" on the day the clocks go back


@dataclass(frozen=True)
class DayView:
    date: str  # ISO date, for tests and machines
    label: str  # "Tuesday, 24 November 2026"
    slots: list[SlotView]


@dataclass(frozen=True)
class Week:
    days: list[DayView]  # only the dates with a free slot
    first: dt.date
    last: dt.date
    earlier: dt.date | None
    later: dt.date | None
    minutes: int | None
    expert_name: str | None


def _bookable_dates(session: Session, req: IntakeRequest, zone: str) -> tuple[dt.date, dt.date]:
    """(today, the last bookable date) in ``zone``. The slot service reports both with any
    problem of a query (``details.first_date``/``last_date``); a query without dates has one."""
    today = now().astimezone(slot_zone(zone)).date()
    try:
        scheduling.list_slots(session, req, from_raw=None, to_raw=None, timezone_raw=zone)
    except SlotQueryInvalid as exc:
        details = exc.details or {}
        first = _date(details.get("first_date")) or today
        last = _date(details.get("last_date")) or first
        return first, max(first, last)
    return today, today  # not reached: a query without dates is never valid


def week_of(
    session: Session, req: IntakeRequest, zone: str, lang: str, start: dt.date | None
) -> Week:
    today, last_day = _bookable_dates(session, req, zone)
    first = min(max(start or today, today), last_day)
    last = min(first + dt.timedelta(days=WEEK - 1), last_day)
    found = scheduling.list_slots(
        session,
        req,
        from_raw=first.isoformat(),
        to_raw=last.isoformat(),
        timezone_raw=zone,
    )
    days = [
        DayView(
            date=day.date.isoformat(),
            label=cv.day_text(day.date, lang),
            slots=[SlotView(s.start_utc, s.label) for s in day.slots],
        )
        for day in found.days
        if day.slots
    ]
    minutes = None
    for day in found.days:
        for s in day.slots:
            span = dt.datetime.fromisoformat(s.end_utc) - dt.datetime.fromisoformat(s.start_utc)
            minutes = int(span.total_seconds() // 60)
            break
        if minutes is not None:
            break
    return Week(
        days=days,
        first=first,
        last=last,
        earlier=max(first - dt.timedelta(days=WEEK), today) if first > today else None,
        later=last + dt.timedelta(days=1) if last < last_day else None,
        minutes=minutes,
        expert_name=found.expert_name,
    )


def _book_page(
    request: Request,
    session: Session,
    req: IntakeRequest,
    lang: str,
    zone: str,
    start: dt.date | None,
    *,
    status: int = 200,
    error: str | None = None,
    zone_error: bool = False,
) -> HTMLResponse:
    t = translator(lang)
    current = cv.booked(session, req)
    allowed = cv.may_book(req) or current is not None
    week = week_of(session, req, zone, lang, start) if allowed else None
    if current is not None:
        title = t("Choose a new time")
    elif req.discreet:
        title = t("Choose a time")
    else:
        title = t("Book a free consultation")
    ctx = {
        "title": (t("Error") + ": " if error else "") + title,
        "heading": title,
        "reference": req.reference,
        "discreet": req.discreet,
        "allowed": allowed,
        "current": cv.booking_view(session, current, zone, lang) if current else None,
        "week": week,
        "zone": zone,
        # The request's countries' zones and the one shown now first, then by area.
        "zone_groups": zone_groups(lang, (req.country_of_residence, req.country_of_origin), zone),
        "zone_error": zone_error,
        "error": error,
        "error_items": [
            *(
                [("slots-title" if allowed else "not-bookable", error, "book-error")]
                if error
                else []
            ),
            *([("f-tz", t("Choose a time zone from the list."))] if zone_error else []),
        ],
        "q_earlier": _query(lang, zone, **{"from": week.earlier.isoformat()})
        if week and week.earlier
        else None,
        "q_later": _query(lang, zone, **{"from": week.later.isoformat()})
        if week and week.later
        else None,
        "first_date": cv.day_text(week.first, lang) if week else "",
        "last_date": cv.day_text(week.last, lang) if week else "",
        "week_from": week.first.isoformat() if week else "",
        "not_bookable": t(NOT_BOOKABLE),
        "noindex": True,
    }
    return render(request, lang, "public/book.html", ctx, status=status, csrf=csrf_value(request))


# Book and reschedule -------------------------------------------------------------------------


@router.get("/r/{reference}/book", response_class=HTMLResponse, response_model=None)
def book_page(request: Request, reference: SafeStr, session: SessionDep) -> Response:
    ref = canonical(reference)
    if ref is None:
        return _not_found(request)
    if ref != reference:
        return RedirectResponse(f"/r/{ref}/book", status_code=308)
    req = requester_from_cookie(request, session, ref)
    if req is None:
        # The e-mail's link: /r/<ref>/book#token=... public.js posts the token, then back here.
        lang = page_lang(request)
        ctx = {
            "title": tr(lang, "Your request"),
            "reference": ref,
            "noindex": True,
            "lang_q": f"?lang={lang}" if "lang" in request.query_params else "",
            "next": "book",
        }
        return render(request, lang, "public/open.html", ctx, csrf=csrf_value(request))
    lang = page_lang(request, req.language)
    zone, unknown = _zone(request, req)
    start = _date(request.query_params.get("from"))
    return _book_page(request, session, req, lang, zone, start, zone_error=unknown)


@router.post("/r/{reference}/book", response_class=HTMLResponse, response_model=None)
def book(request: Request, reference: SafeStr, session: SessionDep, form: FormDep) -> Response:
    req = _mine(request, session, reference)
    if req is None:
        return _not_found(request)
    lang = page_lang(request, req.language)
    submitted = form.get(CSRF_FIELD)
    if not csrf_ok(request, submitted if isinstance(submitted, str) else None):
        return refused_page(request, lang, f"/r/{req.reference}/book?lang={lang}")
    raw_zone = form.get("tz")
    zone, _unknown = _zone(request, req, raw_zone if isinstance(raw_zone, str) else "")
    raw_from = form.get("from")
    week_start = _date(raw_from if isinstance(raw_from, str) else None)
    raw_start = form.get("start")
    try:
        start = dt.datetime.fromisoformat(raw_start) if isinstance(raw_start, str) else None
    except ValueError:
        start = None
    if start is None or start.tzinfo is None or not in_calendar(start):
        message = tr(lang, "Choose one of the free times below.")
        return _book_page(request, session, req, lang, zone, week_start, status=422, error=message)
    try:
        with session.begin_nested():  # a refused attempt leaves nothing behind
            holds.hold(session, req, start=start, zone=zone, caller=REQUESTER)
    except SlotUnavailable as exc:
        reason = str((exc.details or {}).get("reason", ""))
        message = tr(lang, REASONS.get(reason, OTHER_REASON))
        return _book_page(request, session, req, lang, zone, week_start, status=409, error=message)
    except (BookingNotAllowed, ConsultationNotFound):
        return _book_page(
            request, session, req, lang, zone, week_start, status=409, error=tr(lang, NOT_BOOKABLE)
        )
    extra = {"from": week_start.isoformat()} if week_start else {}
    return RedirectResponse(
        f"/r/{req.reference}/book/confirm{_query(lang, zone, **extra)}", status_code=303
    )


# Confirm the held time -----------------------------------------------------------------------


def _confirm_page(
    request: Request, session: Session, req: IntakeRequest, lang: str, row: SlotHold, zone: str
) -> HTMLResponse:
    t = translator(lang)
    current = cv.booked(session, req)
    if current is not None:
        heading = t("Confirm the new time")
    elif req.discreet:
        heading = t("Confirm your appointment")
    else:
        heading = t("Confirm your consultation")
    minutes = int((row.end_at - row.start_at).total_seconds() // 60)
    ctx = {
        "title": heading,
        "heading": heading,
        "reference": req.reference,
        "hold_id": str(row.id),
        "when": cv.when(row.start_at, row.end_at, zone, lang),
        "minutes": minutes,
        "expert_name": holds.expert_name(session, row),
        "held_until": dates.time_in_words(row.expires_at, zone, lang),
        "hold_minutes": holds.hold_minutes(),
        "current": cv.booking_view(session, current, zone, lang) if current else None,
        "zone": zone,
        "week_from": request.query_params.get("from") or "",
        "noindex": True,
    }
    return render(request, lang, "public/booking_confirm.html", ctx, csrf=csrf_value(request))


@router.get("/r/{reference}/book/confirm", response_class=HTMLResponse, response_model=None)
def confirm_page(request: Request, reference: SafeStr, session: SessionDep) -> Response:
    req = _mine(request, session, reference)
    if req is None:
        return _not_found(request)
    lang = page_lang(request, req.language)
    row = holds.current_hold(session, req)
    if row is None:
        zone, _unknown = _zone(request, req)
        start = _date(request.query_params.get("from"))
        message = tr(lang, NOTHING_HELD)
        return _book_page(request, session, req, lang, zone, start, error=message)
    zone, _unknown = _zone(request, req)
    return _confirm_page(request, session, req, lang, row, zone)


def _form_text(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


@router.post("/r/{reference}/book/confirm", response_class=HTMLResponse, response_model=None)
def confirm(request: Request, reference: SafeStr, session: SessionDep, form: FormDep) -> Response:
    req = _mine(request, session, reference)
    if req is None:
        return _not_found(request)
    lang = page_lang(request, req.language)
    if not csrf_ok(request, _form_text(form, CSRF_FIELD)):
        return refused_page(request, lang, f"/r/{req.reference}/book/confirm?lang={lang}")
    zone, _unknown = _zone(request, req, _form_text(form, "tz") or "")
    week_start = _date(_form_text(form, "from"))
    try:
        hold_id: uuid.UUID | None = uuid.UUID(_form_text(form, "hold_id") or "")
    except ValueError:
        hold_id = None
    moving = cv.booked(session, req) is not None
    try:
        with session.begin_nested():
            holds.confirm(session, req, hold_id=hold_id, caller=REQUESTER)
    except HoldExpired as exc:
        held = dt.datetime.fromisoformat(str((exc.details or {})["start_utc"]))
        day = held.astimezone(slot_zone(zone)).date()
        message = tr(lang, EXPIRED) % {"minutes": holds.hold_minutes()}
        return _book_page(request, session, req, lang, zone, day, status=409, error=message)
    except HoldNotFound:
        if moving or cv.booked(session, req) is None:
            message = tr(lang, NOTHING_HELD)
            return _book_page(
                request, session, req, lang, zone, week_start, status=409, error=message
            )
        return RedirectResponse(f"/r/{req.reference}/booked{_query(lang, zone)}", status_code=303)
    except SlotUnavailable as exc:
        reason = str((exc.details or {}).get("reason", ""))
        message = tr(lang, REASONS.get(reason, OTHER_REASON))
        return _book_page(request, session, req, lang, zone, week_start, status=409, error=message)
    except (BookingNotAllowed, ConsultationNotFound):
        return _book_page(
            request, session, req, lang, zone, week_start, status=409, error=tr(lang, NOT_BOOKABLE)
        )
    done = "rescheduled" if moving else "booked"
    return RedirectResponse(
        f"/r/{req.reference}/booked{_query(lang, zone, done=done)}", status_code=303
    )


@router.post("/r/{reference}/book/release", response_class=HTMLResponse, response_model=None)
def release(request: Request, reference: SafeStr, session: SessionDep, form: FormDep) -> Response:
    req = _mine(request, session, reference)
    if req is None:
        return _not_found(request)
    lang = page_lang(request, req.language)
    if not csrf_ok(request, _form_text(form, CSRF_FIELD)):
        return refused_page(request, lang, f"/r/{req.reference}/book?lang={lang}")
    zone, _unknown = _zone(request, req, _form_text(form, "tz") or "")
    holds.release(session, req)
    week_start = _date(_form_text(form, "from"))
    extra = {"from": week_start.isoformat()} if week_start else {}
    return RedirectResponse(
        f"/r/{req.reference}/book{_query(lang, zone, **extra)}", status_code=303
    )


@router.get("/r/{reference}/booked", response_class=HTMLResponse, response_model=None)
def booked_page(request: Request, reference: SafeStr, session: SessionDep) -> Response:
    req = _mine(request, session, reference)
    if req is None:
        return _not_found(request)
    lang = page_lang(request, req.language)
    c = cv.booked(session, req)
    if c is None:
        return RedirectResponse(f"/r/{req.reference}?lang={lang}", status_code=303)
    zone, _unknown = _zone(request, req)
    t = translator(lang)
    done = request.query_params.get("done")
    heading = t("Your appointment is booked") if req.discreet else t("Your consultation is booked")
    ctx = {
        "title": heading,
        "heading": heading,
        "reference": req.reference,
        "booking": cv.booking_view(session, c, zone, lang),
        "message": t(DONE[done]) if done in DONE else None,
        "noindex": True,
    }
    return render(request, lang, "public/booked.html", ctx)


# The calendar file ---------------------------------------------------------------------------


def calendar_file(req: IntakeRequest, c: Consultation, lang: str) -> bytes | None:
    """The booked consultation as an iCalendar file for the requester (None: data erased)."""
    pii = intake.reveal_pii(req)
    if pii is None:
        return None
    settings = get_settings()
    sender = settings.mail_from_discreet if req.discreet else settings.mail_from
    organizer_name, organizer_email = parseaddr(sender)
    title = tr(lang, "Appointment") if req.discreet else tr(lang, "Free consultation")
    join = c.meeting_join_url
    return ics.build(
        ics.Invite(
            uid=c.ical_uid,
            sequence=c.ical_sequence,
            method="REQUEST",
            start=c.start_at,
            end=c.end_at,
            stamp=now(),
            summary=f"{title} [{req.reference}]",
            description=f"{req.reference}" + (f" {join}" if join else ""),
            organizer_email=organizer_email,
            organizer_name=organizer_name or organizer_email,
            attendee_email=pii["email"],
            attendee_name=None,
            join_url=join,
        )
    )


@router.get("/r/{reference}/consultation.ics", response_model=None)
def consultation_ics(request: Request, reference: SafeStr, session: SessionDep) -> Response:
    req = _mine(request, session, reference)
    c = cv.booked(session, req) if req is not None else None
    data = calendar_file(req, c, page_lang(request, req.language)) if req and c else None
    if data is None:
        return _not_found(request)
    return Response(
        data,
        media_type="text/calendar; charset=utf-8",
        headers={
            **PAGE_HEADERS,
            "Content-Disposition": 'attachment; filename="consultation.ics"',
        },
    )


# Cancel --------------------------------------------------------------------------------------


def _cancel_page(
    request: Request,
    session: Session,
    req: IntakeRequest,
    lang: str,
    c: Consultation,
) -> HTMLResponse:
    t = translator(lang)
    heading = t("Cancel your appointment?") if req.discreet else t("Cancel your consultation?")
    ctx = {
        "title": heading,
        "heading": heading,
        "reference": req.reference,
        "booking": cv.booking_view(session, c, req.timezone, lang),
        "noindex": True,
    }
    return render(request, lang, "public/cancel.html", ctx, csrf=csrf_value(request))


@router.get("/r/{reference}/cancel", response_class=HTMLResponse, response_model=None)
def cancel_page(request: Request, reference: SafeStr, session: SessionDep) -> Response:
    req = _mine(request, session, reference)
    if req is None:
        return _not_found(request)
    lang = page_lang(request, req.language)
    c = cv.booked(session, req)
    if c is None:
        return RedirectResponse(f"/r/{req.reference}?lang={lang}", status_code=303)
    return _cancel_page(request, session, req, lang, c)


@router.post("/r/{reference}/cancel", response_class=HTMLResponse, response_model=None)
def cancel(request: Request, reference: SafeStr, session: SessionDep, form: FormDep) -> Response:
    req = _mine(request, session, reference)
    if req is None:
        return _not_found(request)
    lang = page_lang(request, req.language)
    submitted = form.get(CSRF_FIELD)
    if not csrf_ok(request, submitted if isinstance(submitted, str) else None):
        return refused_page(request, lang, f"/r/{req.reference}/cancel?lang={lang}")
    c = cv.booked(session, req)
    if c is None:  # cancelled already (another tab), or never booked
        return RedirectResponse(f"/r/{req.reference}?lang={lang}", status_code=303)
    try:
        with session.begin_nested():
            scheduling.cancel(session, req, caller=REQUESTER)
    except ConsultationNotFound:
        pass  # gone meanwhile: the page shows what is left
    return RedirectResponse(f"/r/{req.reference}?lang={lang}&done=cancelled", status_code=303)


# Export --------------------------------------------------------------------------------------


@router.get("/r/{reference}/export", response_model=None)
def export(request: Request, reference: SafeStr, session: SessionDep) -> Response:
    """The same file as ``GET /api/v1/requests/{reference}/export``: everything held about the
    request, decrypted (``app.privacy.service.export_request``, recorded in the audit trail)."""
    req = _mine(request, session, reference)
    if req is None:
        return _not_found(request)
    return export_response(req.reference, privacy.export_request(session, req))


def export_response(reference: str, data: dict[str, Any]) -> Response:
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode()
    return Response(
        body,
        media_type="application/json",
        headers={
            **PAGE_HEADERS,
            "Content-Disposition": f'attachment; filename="request-{reference}.json"',
        },
    )
