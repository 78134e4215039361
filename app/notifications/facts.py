"""The facts of a request that staff and expert e-mails may carry, for every domain that
builds one (routing's offer and triage alert, the SLA reminders, the escalation chain, the
roster's alerts, their pages): the reference, the country, what was asked and the deadline,
never a name, a contact detail or the case summary (the domain's rule for staff and expert
mail). Times in these e-mails are written in words in the recipient's own language and zone
(``when_for``, ``span_for``: ``app/notifications/dates.py``, as requesters read them; the zone
named by its city, its UTC offset only in an hour that happens twice), never as a machine's
"2026-12-08 09:00". ``recipient`` is a person's zone and language (their account's settings;
an expert's zone is their profile's, kept equal to the account's). The desk pages format with
``local_time`` and ``zone_label``."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any, Literal

from babel.dates import format_datetime
from sqlalchemy.orm import Session

from app.models import Country, IntakeRequest, User
from app.notifications import dates
from app.reference.service import iso_countries

WANTS = {
    "sample_report": "a sample report",
    "expert_cv": "an expert's CV",
    "consultation": "a free consultation",
}


def country_name(session: Session, code: str | None) -> str:
    if code is None:
        return "not known yet"  # an e-mailed request before staff complete it
    row = session.get(Country, code)
    return row.name if row is not None else iso_countries().get(code, code)


def case_facts(session: Session, req: IntakeRequest, lang: str = "en") -> dict[str, Any]:
    """The only facts of a request that staff and expert e-mails may carry (the deadline, a
    date, in words in ``lang``)."""
    return {
        "reference": req.reference,
        "country": f"{country_name(session, req.country_of_origin)} ({req.country_of_origin})",
        "wants": [WANTS.get(w, w) for w in req.wants],
        "deadline": dates.date_in_words(req.deadline, lang) if req.deadline else "none given",
    }


# Times in the reader's zone ---------------------------------------------------------------

TimeForm = Literal["datetime", "date", "time", "seconds"]
PATTERNS: dict[str, str] = {
    "datetime": "EEE d MMM y, HH:mm",
    "date": "EEE d MMM y",
    "time": "HH:mm",
    "seconds": "EEE d MMM y, HH:mm:ss",
}


def zone_of(name: str) -> zoneinfo.ZoneInfo:
    """The zone, or UTC for a name this machine does not know (never an error in a page or an
    e-mail; settings are validated when saved)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_time(value: dt.datetime, zone: str, lang: str = "en", form: TimeForm = "datetime") -> str:
    """An aware instant as a wall-clock time in ``zone``, in the words of ``lang``:
    "Sun 28 Mar 2027, 06:30" (``form``: also "date", "time" or "seconds")."""
    return format_datetime(value, PATTERNS[form], tzinfo=zone_of(zone), locale=lang)


def zone_label(zone: str, at: dt.datetime) -> str:
    """The zone named with its offset at ``at``: "Asia/Bishkek, UTC+06:00"."""
    offset = at.astimezone(zone_of(zone)).strftime("%z") or "+0000"
    return f"{zone}, UTC{offset[:3]}:{offset[3:]}"


def local_time_named(value: dt.datetime, zone: str, lang: str = "en") -> str:
    """For an e-mail, in words: "Sunday 28 March 2027 at 06:30 (Bishkek time)"."""
    return dates.when_in_words(value, zone, lang)


def when_for(value: dt.datetime, reader: tuple[str, str]) -> str:
    """An instant for one reader (``recipient``'s zone and language), in words:
    "Sunday 28 March 2027 at 06:30 (Bishkek time)", or the same in Russian, Spanish, Arabic."""
    zone, lang = reader
    return dates.when_in_words(value, zone, lang)


def span_for(start: dt.datetime, end: dt.datetime, reader: tuple[str, str]) -> str:
    """A consultation for one reader, in words: "Sunday 28 March 2027, 06:30 to 07:15" joined
    by an en dash, then "(Bishkek time)"."""
    zone, lang = reader
    return dates.span_in_words(start, end, zone, lang)


def recipient(session: Session, user_id: uuid.UUID | None) -> tuple[str, str]:
    """(zone, language) of a staff member's or an expert's e-mails: their own settings."""
    user = session.get(User, user_id) if user_id is not None else None
    if user is None:
        return "UTC", "en"
    return user.timezone, dates.language(user.language.value)


def recipient_zone(session: Session, user_id: uuid.UUID | None) -> str:
    """The zone a staff member's or an expert's e-mails show times in: their own setting."""
    return recipient(session, user_id)[0]
