"""Helpers for the consultation tests: experts with hours, requests, reading invites."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
import zoneinfo
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from icalendar import Calendar
from sqlalchemy.orm import Session

from app.core.time import now
from app.models import ExpertProfile, User
from app.scheduling import service
from app.scheduling.schemas import AvailabilityIn
from tests.experts_support import create_expert
from tests.intake_helpers import messages

EVERY_DAY = list(range(7))


def hours(
    start: str = "09:00", end: str = "12:00", days: list[int] | None = None
) -> list[dict[str, Any]]:
    return [{"weekday": d, "start": start, "end": end} for d in (days or EVERY_DAY)]


def expert_with_hours(
    session: Session,
    *,
    countries: tuple[str, ...] = ("KG",),
    regions: tuple[str, ...] = (),
    zone: str = "Europe/London",
    link: str | None = None,
    name: str | None = None,
    max_open: int = 100,
    **availability: Any,
) -> User:
    """An expert with a personal meeting link and stored availability (default: every day
    09:00-12:00 in ``zone``, 60-minute consultations)."""
    user = create_expert(
        session, countries=countries, regions=regions, name=name, max_open=max_open
    )
    p = session.get(ExpertProfile, user.id)
    assert p is not None
    p.personal_meeting_link = link or f"https://meet.example.org/{secrets.token_hex(4)}"
    p.timezone = zone
    body: dict[str, Any] = {"weekly": hours(), "slot_minutes": 60} | availability
    service.put_availability(session, user.id, AvailabilityIn.model_validate(body), actor="test")
    session.flush()
    return user


def day_in(zone: str, days: int = 1) -> dt.date:
    """A local date ``days`` after today in ``zone``."""
    return now().astimezone(zoneinfo.ZoneInfo(zone)).date() + dt.timedelta(days=days)


def at(date: dt.date, hhmm: str, zone: str) -> dt.datetime:
    """A wall-clock time of a date in a zone, as a UTC instant."""
    h, m = (int(x) for x in hhmm.split(":"))
    local = dt.datetime(date.year, date.month, date.day, h, m, tzinfo=zoneinfo.ZoneInfo(zone))
    return local.astimezone(dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def utc_text(value: dt.datetime) -> str:
    """As the API writes ``start_utc``."""
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat()


def starts(slots_body: dict[str, Any]) -> list[str]:
    return [s["start_utc"] for day in slots_body["days"] for s in day["slots"]]


def invites(mail_dir: Path) -> list[tuple[EmailMessage, Calendar, Calendar]]:
    """Every e-mail with a calendar: (message, the text/calendar alternative parsed, the
    invite.ics attachment parsed)."""
    out = []
    for msg in messages(mail_dir):
        alternative = attachment = None
        for part in msg.walk():
            if part.get_content_type() != "text/calendar":
                continue
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            if part.get_filename() == "invite.ics":
                attachment = Calendar.from_ical(data)
            else:
                alternative = part
                assert part.get_param("method") in ("REQUEST", "CANCEL")
                alt_cal = Calendar.from_ical(data)
        if alternative is None:
            continue
        assert attachment is not None, "invite.ics attachment missing"
        out.append((msg, alt_cal, attachment))
    return out


def event_of(cal: Calendar) -> Any:
    events = [c for c in cal.walk() if c.name == "VEVENT"]
    assert len(events) == 1
    return events[0]


def raw_text(msg: EmailMessage) -> str:
    """Every decoded part of a message (headers and bodies), to look for what must not be
    there."""
    parts = [str(msg)]
    for part in msg.walk():
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            parts.append(data.decode("utf-8", "replace"))
    return "\n".join(parts)


def new_id() -> uuid.UUID:
    return uuid.uuid4()
