"""Why is a time not offered? Every rule of the slot engine that removes one start.

Pure, like the engine (``app/scheduling/slots.py``), and built from its own pieces: the same
prepared inputs (``_Expert``: grid, offsets, merged busy time, full days), the same candidates
(``_candidates``) and the same bounds (``_bounds``). :func:`explain` also asks the engine itself
(``is_slot_free``) whether the start is offered, so its verdict is the listing's by
construction; the reasons are every rule that removes the start, not only the first.
``tests/calendars/test_explainer.py`` checks over many random inputs and times that the rules
found are empty exactly when ``free_slots`` lists the start.

Rules:

* ``outside_hours``: not inside the expert's working hours that day; ``override``: the weekly
  hours would offer it but the date's override replaced them (a day off, or other hours);
  ``off_grid``: inside the hours but not on the grid of starts (range start + n x interval).
* ``minimum_notice``: starts before now + the minimum notice; ``horizon``: starts after the
  last bookable day.
* ``daily_cap``: the expert's local date already has the cap's number of consultations.
* ``leave``: overlaps an unavailable period (leave, day off).
* ``booking``: overlaps another consultation; ``booking_buffer``: only that consultation's
  buffers.
* ``calendar_busy``: overlaps busy time from one of the expert's calendars (buffers included),
  once per calendar (``source``).
* ``other``: the engine refuses it for a rule this module does not name (kept so that the
  answer never says "offered" when the listing does not).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.scheduling.slots import (
    _EPOCH,
    _SECOND,
    Availability,
    Booking,
    BusyTime,
    ExpertId,
    UnavailablePeriod,
    _bounds,
    _candidates,
    _Expert,
    _instant,
    _instant_up,
    _span,
    is_slot_free,
)


class Rule(StrEnum):
    OUTSIDE_HOURS = "outside_hours"
    OVERRIDE = "override"
    OFF_GRID = "off_grid"
    MINIMUM_NOTICE = "minimum_notice"
    HORIZON = "horizon"
    DAILY_CAP = "daily_cap"
    LEAVE = "leave"
    BOOKING = "booking"
    BOOKING_BUFFER = "booking_buffer"
    CALENDAR_BUSY = "calendar_busy"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Reason:
    rule: Rule
    start: dt.datetime | None = None  # the period, booking or busy time that removes it
    end: dt.datetime | None = None
    source: object = None  # calendar_busy: the calendar


@dataclass(frozen=True, slots=True)
class Explanation:
    offered: bool
    reasons: tuple[Reason, ...]


def reasons_for(
    availability: Availability,
    bookings: Sequence[Booking],
    unavailable: Sequence[UnavailablePeriod],
    busy: Sequence[BusyTime] = (),
    *,
    now_utc: dt.datetime,
    expert_id: ExpertId,
    start_utc: dt.datetime,
    horizon_timezone: str | None = None,
) -> list[Reason]:
    """Every rule that removes ``start_utc`` from the expert's free slots (from now to the
    horizon, as ``free_slots`` lists them without a window); empty when it is offered."""
    if start_utc.tzinfo is None:
        raise ValueError("start_utc must be timezone-aware")
    bounds = _bounds(
        availability,
        window_start_utc=None,
        window_end_utc=None,
        now_utc=now_utc,
        horizon_timezone=horizon_timezone,
    )
    if (start_utc - _EPOCH) % _SECOND:
        return [Reason(Rule.OFF_GRID)]
    start = _instant(start_utc)
    span = _span(start, start + 1)
    expert = _Expert(expert_id, availability, bookings, unavailable, busy, span=span)
    day = expert.offsets.day(start)
    found: list[Reason] = []
    on_grid = dict(_candidates(expert, day - 1, day))
    if start in on_grid:
        day = on_grid[start]
    else:
        found.append(Reason(_off_hours_rule(expert, availability, start, day, span)))
    if start < bounds.earliest:
        found.append(Reason(Rule.MINIMUM_NOTICE))
    if start >= bounds.horizon_end:
        found.append(Reason(Rule.HORIZON))
    if day in expert.full_days:
        found.append(Reason(Rule.DAILY_CAP))
    end = start + expert.length
    for period in unavailable:
        if _instant(period.start) < end and _instant_up(period.end) > start:
            found.append(Reason(Rule.LEAVE, period.start, period.end))
    margin = max(availability.buffer_before_minutes, availability.buffer_after_minutes) * 60
    for booking in bookings:
        first, last = _instant(booking.start), _instant_up(booking.end)
        if first < end and last > start:
            found.append(Reason(Rule.BOOKING, booking.start, booking.end))
        elif first - margin < end and last + margin > start:
            found.append(Reason(Rule.BOOKING_BUFFER, booking.start, booking.end))
    sources: set[object] = set()
    for item in busy:
        first, last = _instant(item.start), _instant_up(item.end)
        if first - margin < end and last + margin > start and item.source not in sources:
            sources.add(item.source)
            found.append(Reason(Rule.CALENDAR_BUSY, item.start, item.end, item.source))
    return found


def _off_hours_rule(
    expert: _Expert, availability: Availability, start: int, day: int, span: tuple[int, int]
) -> Rule:
    """Why a start is not on the grid: an override replaced the hours, it lies between the
    grid's starts, or outside the hours."""
    if availability.overrides:
        weekly_only = dataclasses.replace(availability, overrides=())
        plain = _Expert(expert.expert_id, weekly_only, (), (), span=span, offsets=expert.offsets)
        if start in dict(_candidates(plain, day - 1, day)):
            return Rule.OVERRIDE
    # Inside the hours (a consultation starting then would fit) but between the grid's starts?
    every_minute = dataclasses.replace(availability, interval_minutes=1)
    fine = _Expert(expert.expert_id, every_minute, (), (), span=span, offsets=expert.offsets)
    if start in dict(_candidates(fine, day - 1, day)):
        return Rule.OFF_GRID
    return Rule.OUTSIDE_HOURS


def explain(
    availability: Availability,
    bookings: Sequence[Booking],
    unavailable: Sequence[UnavailablePeriod],
    busy: Sequence[BusyTime] = (),
    *,
    now_utc: dt.datetime,
    expert_id: ExpertId,
    start_utc: dt.datetime,
    horizon_timezone: str | None = None,
) -> Explanation:
    """Is ``start_utc`` offered (the engine's own answer), and every rule that removes it."""
    check = is_slot_free(
        availability,
        bookings,
        unavailable,
        now_utc=now_utc,
        expert_id=expert_id,
        start_utc=start_utc,
        horizon_timezone=horizon_timezone,
        busy=busy,
    )
    if check.free:
        return Explanation(True, ())
    reasons = reasons_for(
        availability,
        bookings,
        unavailable,
        busy,
        now_utc=now_utc,
        expert_id=expert_id,
        start_utc=start_utc,
        horizon_timezone=horizon_timezone,
    )
    return Explanation(False, tuple(reasons) or (Reason(Rule.OTHER),))
