"""Busy times out of iCalendar data (RFC 5545), by the well-kept libraries: ``icalendar``
parses, ``x-wr-timezone`` repairs calendars that name their zone only in ``X-WR-TIMEZONE``
(Google's exports), ``recurring-ical-events`` expands ``RRULE``/``RDATE`` with ``EXDATE`` and
``RECURRENCE-ID`` overrides.

Pure: no network, no database, no clock. The rules:

* An event with ``STATUS:CANCELLED`` (the whole series, or one occurrence overridden as
  cancelled) is not busy; neither is one marked free (``TRANSP:TRANSPARENT``).
* Times with a ``TZID`` or in UTC are taken as they are; floating times (no zone) and all-day
  dates are the expert's wall-clock times: an all-day event blocks from the start of its first
  date to the start of the date after its last (``DTEND`` of a date is exclusive), both in the
  expert's zone, so a day on which the clocks change is 23 or 25 hours long.
* No ``DTEND``: ``DURATION`` if given, else one day for a date and nothing for a time (an
  instant blocks nothing).
* Only what overlaps ``[start, end)`` is kept, at most ``limit`` busy times (the earliest).

Each busy time carries ``key``: a hash of the event's UID and the occurrence's start, the same
on every read, so that a conflict alert is sent once per event and consultation. Titles,
places and descriptions are never kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import x_wr_timezone

from app.scheduling import slots

UTC = dt.UTC


class CalendarDataInvalid(ValueError):
    """The data is not an iCalendar file (or not one this parser can read)."""


@dataclass(frozen=True, slots=True)
class BusyEvent:
    start: dt.datetime  # UTC
    end: dt.datetime  # UTC
    key: str


def _calendars(data: bytes | Iterable[bytes]) -> list[icalendar.Calendar]:
    blobs = [data] if isinstance(data, bytes) else list(data)
    found: list[icalendar.Calendar] = []
    for blob in blobs:
        try:
            parsed = icalendar.Calendar.from_ical(blob, multiple=True)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise CalendarDataInvalid(f"not an iCalendar file: {exc}") from None
        found += [c for c in parsed if isinstance(c, icalendar.Calendar)]
    if not found:
        raise CalendarDataInvalid("not an iCalendar file: no VCALENDAR")
    return found


def _instant(value: dt.date | dt.datetime, tz: ZoneInfo) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # floating: the expert's wall clock
            return value.replace(tzinfo=tz).astimezone(UTC)
        return value.astimezone(UTC)
    return slots.start_of_day(value, tz)


def _end_of(event: Any, start: dt.date | dt.datetime) -> dt.date | dt.datetime:
    if event.get("DTEND") is not None:
        end: dt.date | dt.datetime = event.decoded("DTEND")
        return end
    if event.get("DURATION") is not None:
        duration: dt.timedelta = event.decoded("DURATION")
        return start + duration
    if isinstance(start, dt.datetime):
        return start
    return start + dt.timedelta(days=1)


def _free(event: Any) -> bool:
    status = str(event.get("STATUS", "")).strip().upper()
    transparency = str(event.get("TRANSP", "OPAQUE")).strip().upper()
    return status == "CANCELLED" or transparency == "TRANSPARENT"


def _key(event: Any, start: dt.datetime) -> str:
    uid = str(event.get("UID", ""))
    text = f"{uid}|{start.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def busy_times(
    data: bytes | Iterable[bytes],
    *,
    start: dt.datetime,
    end: dt.datetime,
    zone: str,
    limit: int = 20_000,
) -> list[BusyEvent]:
    """The busy times of ``data`` (one file, or several as CalDAV returns them) overlapping
    ``[start, end)``, sorted, at most ``limit``. Raises :class:`CalendarDataInvalid`."""
    tz = slots.zone(zone)
    # Floating times are compared in the expert's zone: give the expansion the same wall-clock
    # bounds with a day's margin either side, and cut to the instants below.
    low = start.astimezone(tz).replace(tzinfo=None) - dt.timedelta(days=1)
    high = end.astimezone(tz).replace(tzinfo=None) + dt.timedelta(days=1)
    found: dict[tuple[str, dt.datetime], BusyEvent] = {}
    for calendar in _calendars(data):
        try:
            standard = x_wr_timezone.to_standard(calendar)
            occurrences = recurring_ical_events.of(standard, skip_bad_series=True).between(
                low, high
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CalendarDataInvalid(f"cannot read the events: {exc}") from None
        for event in occurrences:
            if event.name != "VEVENT" or _free(event) or event.get("DTSTART") is None:
                continue
            raw_start = event.decoded("DTSTART")
            first = _instant(raw_start, tz)
            last = _instant(_end_of(event, raw_start), tz)
            if last <= first or last <= start or first >= end:
                continue
            key = _key(event, first)
            found[(key, first)] = BusyEvent(first, last, key)
    ordered = sorted(found.values(), key=lambda b: (b.start, b.end, b.key))
    return ordered[:limit]
