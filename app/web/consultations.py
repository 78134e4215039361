"""How the requester's pages show a consultation: dates and times in a person's zone, written in
the page's language (Babel's CLDR data), and what the request page says about the booking.

Shared by the request page (``app/web/public.py``) and the booking pages
(``app/web/booking.py``); it imports neither.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.models import Consultation, ExpertProfile, IntakeRequest, RequestStatus
from app.notifications import dates
from app.scheduling import service as scheduling
from app.scheduling.slots import zone as slot_zone


def valid_zone(name: str | None) -> str | None:
    """``name`` when it is a known IANA zone, else None."""
    if not name:
        return None
    try:
        slot_zone(name)
    except ValueError:
        return None
    return name


def offset_text(when: dt.datetime) -> str:
    """``UTC+06:00`` for an aware local time."""
    raw = when.strftime("%z") or "+0000"
    return f"UTC{raw[:3]}:{raw[3:]}"


def day_text(day: dt.date, lang: str) -> str:
    """A local date in full, e.g. "Tuesday 24 November 2026" (or in Russian, Spanish...)."""
    return dates.date_in_words(day, lang)


@dataclass(frozen=True)
class When:
    """A consultation's time in one zone, ready for a page."""

    day: str  # "Tuesday 24 November 2026"
    start: str  # "14:30"
    end: str  # "15:30"
    zone: str  # "Bishkek time" (with the UTC offset in an hour that happens twice)
    offset: str  # "UTC+06:00"
    start_utc: str  # ISO 8601, for machines (data attributes, <time datetime>)
    words: str  # "Tuesday 24 November 2026, 14:30-15:30 (Bishkek time)" (an en dash)


def when(start: dt.datetime, end: dt.datetime, zone: str, lang: str) -> When:
    tz = slot_zone(zone)
    local_start = start.astimezone(tz)
    return When(
        day=day_text(local_start.date(), lang),
        start=dates.time_in_words(start, zone, lang),
        end=dates.time_in_words(end, zone, lang),
        zone=dates.zone_in_words(zone, lang, start),
        offset=offset_text(local_start),
        start_utc=start.astimezone(dt.UTC).isoformat(),
        words=dates.span_in_words(start, end, zone, lang),
    )


@dataclass(frozen=True)
class BookingView:
    """The booked consultation as the requester sees it (no contact of the expert)."""

    when: When
    expert_name: str
    join_url: str | None  # None while the link follows


def booking_view(session: Session, c: Consultation, zone: str, lang: str) -> BookingView:
    profile = session.get(ExpertProfile, c.expert_id)
    return BookingView(
        when=when(c.start_at, c.end_at, zone, lang),
        expert_name=profile.public_name if profile is not None else "",
        join_url=c.meeting_join_url,
    )


def booked(session: Session, req: IntakeRequest) -> Consultation | None:
    return scheduling.booked_consultation(session, req)


def may_book(req: IntakeRequest) -> bool:
    """A request that is ``new`` or ``in_progress`` may book a consultation."""
    return req.status in scheduling.BOOKABLE


def may_change(req: IntakeRequest) -> bool:
    return req.status == RequestStatus.consultation_scheduled
