"""The facts of a request that staff and expert e-mails may carry, for every domain that
builds one (routing's offer and triage alert, the SLA reminders, the escalation chain, the
roster's alerts, their pages): the reference, the country, what was asked and the deadline,
never a name, a contact detail or the case summary (the domain's rule for staff and expert
mail). Times in these e-mails are in the recipient's own zone, named beside them
(``local_time``, ``zone_label``, ``recipient_zone``); the desk pages format with the same
``local_time``."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any, Literal

from babel.dates import format_datetime
from sqlalchemy.orm import Session

from app.models import Country, IntakeRequest, User
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


def case_facts(session: Session, req: IntakeRequest) -> dict[str, Any]:
    """The only facts of a request that staff and expert e-mails may carry."""
    return {
        "reference": req.reference,
        "country": f"{country_name(session, req.country_of_origin)} ({req.country_of_origin})",
        "wants": [WANTS.get(w, w) for w in req.wants],
        "deadline": req.deadline.isoformat() if req.deadline else "none given",
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
    """For an e-mail: "Sun 28 Mar 2027, 06:30 (Asia/Bishkek, UTC+06:00)"."""
    return f"{local_time(value, zone, lang)} ({zone_label(zone, value)})"


def recipient_zone(session: Session, user_id: uuid.UUID | None) -> str:
    """The zone a staff member's or an expert's e-mails show times in: their own setting."""
    user = session.get(User, user_id) if user_id is not None else None
    return user.timezone if user is not None else "UTC"
