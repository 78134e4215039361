"""The slot engine: free consultation slots of one expert or of a region pool.

Pure: no database, no HTTP, no clock (``now_utc`` is an argument). The same code computes the
list a requester is shown (:func:`free_slots`) and re-checks one slot when it is booked
(:func:`is_slot_free`): both generate the expert's candidate starts with ``_candidates`` and judge
each with ``_judge``, so a booking re-checks exactly what the listing showed.

Rules (docs: docs/domain.md "Scheduling decisions", "One absence model"):

* **Working hours** are wall-clock times in the expert's IANA zone. ``WeeklyRange.weekday`` is
  0 = Monday ... 6 = Sunday. A range whose end is not after its start runs past midnight into the
  next day (``22:00-02:00``; ``09:00-09:00`` is 24 hours). A ``DateOverride`` replaces *all*
  weekly ranges that *start* on its date (a range that began the evening before still runs into
  it); an override with no ranges is a day off.
* **The grid.** Candidate starts are wall-clock times: the start of each range, then every
  ``interval_minutes`` (default: the consultation length). A consultation lasts
  ``slot_minutes`` of real time and must fit inside its range (real instants). On the day the
  clocks go forward a wall time that does not exist is skipped; on the day they go back a wall
  time that happens twice gives two candidates (the requester sees them labelled with their UTC
  offsets). Range boundaries take the widest reading: a start in the repeated hour means its
  first occurrence, an end its second; a boundary in the skipped hour means the moment the
  clocks change. Every requester sees the same instants; their zone only changes labels and the
  grouping by date. Around a clock change (or when the interval is shorter than the length)
  offered slots may overlap; booking one removes the others through the conflict rule.
* **Buffers surround every booking**, the one being made included: a slot may not start inside
  an existing booking's after-buffer nor end inside its before-buffer, and an existing booking
  may not lie inside the new slot's own buffers (otherwise the result would depend on the order
  in which bookings were made). With one expert's buffers this means: between two consultations
  there are at least ``max(buffer_before, buffer_after)`` minutes. Buffers may overlap other
  buffers, unavailable periods and the ends of working ranges.
* **Unavailable periods** (leave and days off; UTC instants, half-open ``[start, end)``) remove
  every slot that overlaps them. No buffers around them.
* **Busy times from the expert's own calendars** (:class:`BusyTime`) block slots as bookings do,
  buffers included, but do not count towards the daily cap (they are not consultations).
* **Holds** (:class:`Hold`: a time another requester has chosen and is confirming) are bookings
  until they expire: a hold is live while ``now_utc < expires_at`` and gone at ``expires_at``
  exactly (:func:`hold_live`). The caller passes ``held(holds, now_utc)`` with the bookings,
  leaving out the asking request's own hold, so it hides the time from everyone else only.
* **Daily cap** (``max_per_day``) counts existing bookings by the expert's local date of their
  *start*. A slot is judged against the day of its own start, also when it comes from a range
  that began the evening before (a 00:30 slot of a 22:00-02:00 Monday range counts for Tuesday):
  once booked, it is counted by its start like every booking, so listing and counting agree.
* **Minimum notice** is absolute: a slot starts no earlier than ``now + min_notice_minutes`` of
  real time, whatever clock change lies between.
* **Horizon**: slots start before the end of the day ``horizon_days`` after today, "today" and
  "end of the day" taken in the requester's zone (``horizon_timezone``; the expert's when not
  given). The window (``window_start_utc`` inclusive, ``window_end_utc`` exclusive) selects slots
  by their start.

Region pool (:func:`pool_slots`): the same instant (same start and end) offered by several
experts is one :class:`PoolSlot` listing them all; ``expert_ids`` is ordered by the pick rule
and ``expert_id`` (the first) is the one to book: **fewest bookings on that expert's local date
of the slot, then the expert id (as text) ascending**, so a tie is broken the same way every
time. :func:`check_pool_slot` re-checks a pool slot at booking time with the same rule.

Cost: instants are whole seconds (ints); bookings (widened by the buffers) and absences are
merged into sorted disjoint intervals and the sorted candidates are judged in one pass against
them (a bisect for a single re-check); a zone's offsets over the window are looked up once into
a table. ``benchmarks/slots.py`` measures it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import operator
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.core.errors import FieldProblem
from app.scheduling.errors import SlotQueryInvalid

UTC = dt.UTC
ExpertId: TypeAlias = uuid.UUID | int | str

_DAY = 86_400
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_SECOND = dt.timedelta(seconds=1)
_UNBOUNDED = 2**62


# --------------------------------------------------------------------------------------------
# Inputs and outputs


def _time_s(value: dt.time) -> int:
    if value.tzinfo is not None:
        raise ValueError("working hours are wall-clock times: no tzinfo")
    if value.microsecond:
        raise ValueError("working hours have no fractions of a second")
    return value.hour * 3600 + value.minute * 60 + value.second


def _require_aware(value: dt.datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class WeeklyRange:
    """Working hours on one weekday (0 = Monday). ``end <= start`` runs past midnight."""

    weekday: int
    start: dt.time
    end: dt.time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError("weekday is 0 (Monday) to 6 (Sunday)")
        _time_s(self.start)
        _time_s(self.end)


@dataclass(frozen=True, slots=True)
class DateOverride:
    """Other hours on one date (the expert's local date); no ranges = day off."""

    date: dt.date
    ranges: Sequence[tuple[dt.time, dt.time]] = ()

    def __post_init__(self) -> None:
        ranges = tuple((start, end) for start, end in self.ranges)
        for start, end in ranges:
            _time_s(start)
            _time_s(end)
        object.__setattr__(self, "ranges", ranges)


@dataclass(frozen=True, slots=True)
class Availability:
    timezone: str
    weekly: Sequence[WeeklyRange] = ()
    overrides: Sequence[DateOverride] = ()
    slot_minutes: int = 45
    interval_minutes: int | None = None
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 120
    horizon_days: int = 30
    max_per_day: int | None = None

    def __post_init__(self) -> None:
        zone(self.timezone)  # raises on an unknown zone
        object.__setattr__(self, "weekly", tuple(self.weekly))
        object.__setattr__(self, "overrides", tuple(self.overrides))
        if self.slot_minutes <= 0:
            raise ValueError("slot_minutes must be positive")
        if self.interval_minutes is not None and self.interval_minutes <= 0:
            raise ValueError("interval_minutes must be positive")
        for name in (
            "buffer_before_minutes",
            "buffer_after_minutes",
            "min_notice_minutes",
            "horizon_days",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.max_per_day is not None and self.max_per_day < 0:
            raise ValueError("max_per_day must not be negative")
        dates = [o.date for o in self.overrides]
        if len(dates) != len(set(dates)):
            raise ValueError("at most one override per date")

    @property
    def step_minutes(self) -> int:
        return self.interval_minutes or self.slot_minutes


@dataclass(frozen=True, slots=True)
class Booking:
    """An existing consultation of the expert (UTC-aware instants)."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, "start")
        _require_aware(self.end, "end")
        if self.end <= self.start:
            raise ValueError("a booking ends after it starts")


@dataclass(frozen=True, slots=True)
class Hold:
    """A slot held for another request while its requester confirms: ``[start, end)``, until
    ``expires_at`` (UTC-aware instants)."""

    start: dt.datetime
    end: dt.datetime
    expires_at: dt.datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, "start")
        _require_aware(self.end, "end")
        _require_aware(self.expires_at, "expires_at")
        if self.end <= self.start:
            raise ValueError("a hold ends after it starts")


def hold_live(expires_at: dt.datetime, now_utc: dt.datetime) -> bool:
    """A hold keeps its slot until ``expires_at``, not at it: the one rule of expiry, for the
    engine and for confirming."""
    return now_utc < expires_at


def held(holds: Iterable[Hold], now_utc: dt.datetime) -> list[Booking]:
    """The holds still live at ``now_utc``, as bookings (buffers and the daily cap included)."""
    return [Booking(h.start, h.end) for h in holds if hold_live(h.expires_at, now_utc)]


@dataclass(frozen=True, slots=True)
class UnavailablePeriod:
    """Leave or a day off: ``[start, end)`` in UTC-aware instants."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, "start")
        _require_aware(self.end, "end")
        if self.end <= self.start:
            raise ValueError("an unavailable period ends after it starts")


@dataclass(frozen=True, slots=True)
class BusyTime:
    """Busy time read from one of the expert's own calendars: ``[start, end)``, UTC-aware.
    ``source`` names the calendar (the explainer reports it; the engine ignores it)."""

    start: dt.datetime
    end: dt.datetime
    source: object = None

    def __post_init__(self) -> None:
        _require_aware(self.start, "start")
        _require_aware(self.end, "end")
        if self.end <= self.start:
            raise ValueError("a busy time ends after it starts")


@dataclass(frozen=True, slots=True)
class Slot:
    start_utc: dt.datetime
    end_utc: dt.datetime
    expert_id: ExpertId


@dataclass(frozen=True, slots=True)
class PoolSlot:
    """One instant offered by a region pool; ``expert_ids`` in pick order."""

    start_utc: dt.datetime
    end_utc: dt.datetime
    expert_ids: tuple[ExpertId, ...]

    @property
    def expert_id(self) -> ExpertId:
        """The expert the pick rule chooses."""
        return self.expert_ids[0]


class PoolMember(NamedTuple):
    expert_id: ExpertId
    availability: Availability
    bookings: Sequence[Booking]
    unavailable: Sequence[UnavailablePeriod]
    busy: Sequence[BusyTime] = ()


MemberTuple: TypeAlias = tuple[
    ExpertId, Availability, Sequence[Booking], Sequence[UnavailablePeriod]
]


def _as_member(member: PoolMember | MemberTuple) -> PoolMember:
    return member if isinstance(member, PoolMember) else PoolMember(*member)


class Rejection(StrEnum):
    """Why a start is not free. The order is the order of the checks."""

    NOT_OFFERED = "not_offered"  # not on the expert's grid (working hours, overrides)
    OUTSIDE_WINDOW = "outside_window"
    TOO_SOON = "too_soon"  # minimum notice
    BEYOND_HORIZON = "beyond_horizon"
    DAY_FULL = "day_full"  # daily cap on the expert's local date
    UNAVAILABLE = "unavailable"  # leave, day off
    CONFLICT = "conflict"  # another booking or its buffers


@dataclass(frozen=True, slots=True)
class SlotCheck:
    """Result of :func:`is_slot_free`; true when free. ``slot`` is set whenever on the grid."""

    reason: Rejection | None
    slot: Slot | None = None

    @property
    def free(self) -> bool:
        return self.reason is None

    def __bool__(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class PoolCheck:
    """Result of :func:`check_pool_slot`: who can take it, in pick order, and why not the rest."""

    expert_ids: tuple[ExpertId, ...]
    reasons: dict[ExpertId, Rejection] = field(default_factory=dict)

    @property
    def expert_id(self) -> ExpertId | None:
        return self.expert_ids[0] if self.expert_ids else None

    def __bool__(self) -> bool:
        return bool(self.expert_ids)


# --------------------------------------------------------------------------------------------
# Time helpers (instants are whole seconds since the epoch; "local seconds" are wall-clock
# seconds since 1970-01-01T00:00 in the zone, so local day = local_s // 86400)


@lru_cache(maxsize=1024)
def zone(key: str) -> ZoneInfo:
    """The zone for an IANA key; ``ValueError`` when it is not one."""
    if not _ZONE_KEY.fullmatch(key):
        raise ValueError(f"not an IANA time zone: {key!r}")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone: {key!r}") from None


_ZONE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,3}")


def _instant(value: dt.datetime) -> int:
    """Whole seconds since the epoch, rounded down."""
    return (value - _EPOCH) // _SECOND


def _instant_up(value: dt.datetime) -> int:
    whole, rest = divmod(value - _EPOCH, _SECOND)
    return whole + (1 if rest else 0)


def _to_datetime(instant: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(instant, UTC)


def _offset_at(instant: int, tz: ZoneInfo) -> int:
    offset = dt.datetime.fromtimestamp(instant, tz).utcoffset()
    assert offset is not None
    return offset // _SECOND


def _offsets(local_s: int, tz: ZoneInfo) -> tuple[int, int]:
    naive = _EPOCH_NAIVE + dt.timedelta(seconds=local_s)
    first = naive.replace(tzinfo=tz).utcoffset()
    second = naive.replace(tzinfo=tz, fold=1).utcoffset()
    assert first is not None and second is not None
    return first // _SECOND, second // _SECOND


def _resolve(local_s: int, tz: ZoneInfo) -> tuple[int, ...]:
    """The instants a wall-clock time stands for: none (skipped), one, or two (repeated)."""
    before, after = _offsets(local_s, tz)
    if before == after:
        return (local_s - before,)
    if before > after:  # clocks went back: the wall time happens twice
        return (local_s - before, local_s - after)
    return ()  # clocks went forward: the wall time does not exist


def _gap_end(local_s: int, tz: ZoneInfo) -> int:
    """For a wall time that does not exist: the instant the clocks changed."""
    before, after = _offsets(local_s, tz)
    low, high = local_s - after, local_s - before  # offset(low) == before, offset(high) == after
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(middle, tz) == after:
            high = middle
        else:
            low = middle
    return high


def _earliest(local_s: int, tz: ZoneInfo) -> int:
    instants = _resolve(local_s, tz)
    return instants[0] if instants else _gap_end(local_s, tz)


def _latest(local_s: int, tz: ZoneInfo) -> int:
    instants = _resolve(local_s, tz)
    return instants[-1] if instants else _gap_end(local_s, tz)


def _day_number(value: dt.date) -> int:
    return value.toordinal() - _EPOCH_ORDINAL


def _day_date(day: int) -> dt.date:
    return dt.date.fromordinal(day + _EPOCH_ORDINAL)


def start_of_day(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first instant of a local date (UTC); a skipped midnight starts at the change."""
    return _to_datetime(_earliest(_day_number(day) * _DAY, tz))


def horizon_end(now_utc: dt.datetime, horizon_days: int, tz: ZoneInfo) -> dt.datetime:
    """End of the last bookable day: today (in ``tz``) plus ``horizon_days``, at its end."""
    return start_of_day(last_bookable_day(now_utc, horizon_days, tz) + dt.timedelta(days=1), tz)


def last_bookable_day(now_utc: dt.datetime, horizon_days: int, tz: ZoneInfo) -> dt.date:
    _require_aware(now_utc, "now_utc")
    return now_utc.astimezone(tz).date() + dt.timedelta(days=horizon_days)


# --------------------------------------------------------------------------------------------
# The one code path


class _Offsets:
    """A zone's UTC offsets over ``[low, high]`` (instants), so that converting hundreds of
    instants costs a bisect each instead of a zone look-up.

    Built by probing every 12 hours and bisecting to the second where the offset changes; this
    assumes the zone does not change its offset twice within 12 hours (true of every zone in the
    tz database). Outside the span it asks the zone directly.
    """

    __slots__ = ("high", "low", "offsets", "starts", "tz")

    _PROBE = 12 * 3600

    def __init__(self, tz: ZoneInfo, low: int, high: int) -> None:
        self.tz, self.low, self.high = tz, low, high
        current = _offset_at(low, tz)
        self.starts = [low]
        self.offsets = [current]
        probe = low
        while probe < high:
            following = min(probe + self._PROBE, high)
            offset = _offset_at(following, tz)
            if offset != current:
                before, after = probe, following  # offset(before) == current
                while after - before > 1:
                    middle = (before + after) // 2
                    if _offset_at(middle, tz) == current:
                        before = middle
                    else:
                        after = middle
                self.starts.append(after)
                self.offsets.append(offset)
                current = offset
            probe = following

    def at(self, instant: int) -> int:
        if instant < self.low or instant > self.high:
            return _offset_at(instant, self.tz)
        return self.offsets[bisect.bisect_right(self.starts, instant) - 1]

    def day(self, instant: int) -> int:
        """The local day number of an instant."""
        return (instant + self.at(instant)) // _DAY

    def resolve(self, local_s: int) -> tuple[int, ...]:
        """As :func:`_resolve`: the instants a wall-clock time stands for (0, 1 or 2)."""
        if len(self.offsets) == 1:
            instant = local_s - self.offsets[0]
            if self.low <= instant <= self.high:
                return (instant,)
            return _resolve(local_s, self.tz)
        found: list[int] = []
        for offset in set(self.offsets):
            instant = local_s - offset
            if not self.low <= instant <= self.high:
                return _resolve(local_s, self.tz)
            if self.at(instant) == offset:
                found.append(instant)
        found.sort()
        return tuple(found)

    def earliest(self, local_s: int) -> int:
        instants = self.resolve(local_s)
        return instants[0] if instants else _gap_end(local_s, self.tz)

    def latest(self, local_s: int) -> int:
        instants = self.resolve(local_s)
        return instants[-1] if instants else _gap_end(local_s, self.tz)


def _span(low: int, high: int) -> tuple[int, int]:
    """The instants whose zone offsets a computation over ``[low, high)`` may need."""
    return low - 3 * _DAY, high + 3 * _DAY


class _Expert:
    """One expert's inputs, prepared once per call for the instants ``span`` (see _span)."""

    __slots__ = (
        "availability",
        "busy_ends",
        "busy_starts",
        "day_counts",
        "expert_id",
        "full_days",
        "length",
        "offsets",
        "overrides",
        "step",
        "tz",
        "unavailable_ends",
        "unavailable_starts",
        "weekly",
    )

    def __init__(
        self,
        expert_id: ExpertId,
        availability: Availability,
        bookings: Sequence[Booking],
        unavailable: Sequence[UnavailablePeriod],
        busy: Sequence[BusyTime] = (),
        *,
        span: tuple[int, int],
        offsets: _Offsets | None = None,
    ) -> None:
        self.expert_id = expert_id
        self.availability = availability
        self.tz = zone(availability.timezone)
        if offsets is None or offsets.tz is not self.tz or (offsets.low, offsets.high) != span:
            offsets = _Offsets(self.tz, *span)
        self.offsets = offsets
        self.length = availability.slot_minutes * 60
        self.step = availability.step_minutes * 60
        self.weekly: dict[int, list[tuple[int, int]]] = {d: [] for d in range(7)}
        for weekly in availability.weekly:
            self.weekly[weekly.weekday].append((_time_s(weekly.start), _time_s(weekly.end)))
        self.overrides: dict[int, list[tuple[int, int]]] = {
            _day_number(o.date): [(_time_s(s), _time_s(e)) for s, e in o.ranges]
            for o in availability.overrides
        }
        margin = max(availability.buffer_before_minutes, availability.buffer_after_minutes) * 60
        epoch, second = _EPOCH, _SECOND
        # Whole seconds: starts rounded down, ends up (the busy time never shrinks). Bookings
        # usually come sorted; plain lists of ints keep the garbage collector out of the way.
        starts = [(b.start - epoch) // second for b in bookings]
        ends = [-((epoch - b.end) // second) for b in bookings]
        if any(map(operator.gt, starts, starts[1:])):
            order = sorted(range(len(starts)), key=starts.__getitem__)
            starts = [starts[i] for i in order]
            ends = [ends[i] for i in order]
        # Busy time: bookings and calendar busy times widened by the buffers, then the (few)
        # absences spliced in, as sorted disjoint intervals, so that a start costs one bisect
        # or one step. Only bookings count towards the daily cap (below).
        if busy:  # converted as bookings are (inline: hundreds per expert)
            all_starts = starts + [(b.start - epoch) // second for b in busy]
            all_ends = ends + [-((epoch - b.end) // second) for b in busy]
            order = sorted(range(len(all_starts)), key=all_starts.__getitem__)
            busy_starts, busy_ends = _merge_lists(
                [all_starts[i] for i in order], [all_ends[i] for i in order], margin
            )
        else:
            busy_starts, busy_ends = _merge_lists(starts, ends, margin)
        away = sorted((_instant(u.start), _instant_up(u.end)) for u in unavailable)
        self.unavailable_starts, self.unavailable_ends = _merge(away)
        for away_start, away_end in zip(
            self.unavailable_starts, self.unavailable_ends, strict=True
        ):
            first = bisect.bisect_left(busy_ends, away_start)  # first ending at or after it
            after = bisect.bisect_right(busy_starts, away_end)  # first starting after it
            if first < after:
                away_start = min(away_start, busy_starts[first])
                away_end = max(away_end, busy_ends[after - 1])
            busy_starts[first:after] = [away_start]
            busy_ends[first:after] = [away_end]
        self.busy_starts, self.busy_ends = busy_starts, busy_ends
        # Bookings per local day of their start; days outside the span are never asked for.
        counts: dict[int, int] = {}
        low, high = span
        pieces, piece_offsets = self.offsets.starts, self.offsets.offsets
        piece, last_piece = 0, len(pieces) - 1
        for start in starts:  # ascending: walk the offset table alongside
            if low <= start <= high:
                while piece < last_piece and pieces[piece + 1] <= start:
                    piece += 1
                day = (start + piece_offsets[piece]) // _DAY
                counts[day] = counts.get(day, 0) + 1
        self.day_counts = counts
        cap = availability.max_per_day
        self.full_days = (
            frozenset(d for d, n in self.day_counts.items() if n >= cap)
            if cap is not None
            else frozenset()
        )
        if cap == 0:  # no consultations at all
            self.full_days = _ALL_DAYS

    def ranges_on(self, day: int) -> list[tuple[int, int]]:
        override = self.overrides.get(day)
        if override is not None:
            return override
        return self.weekly[(day + 3) % 7]  # 1970-01-01 was a Thursday (weekday 3)


class _AllDays(frozenset[int]):
    """Every day (a cap of zero)."""

    def __contains__(self, item: object) -> bool:
        return True


_ALL_DAYS: frozenset[int] = _AllDays()


def _merge(intervals: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sorted intervals merged into disjoint ones, as two sorted lists for bisecting."""
    starts: list[int] = []
    ends: list[int] = []
    last = -_UNBOUNDED
    for start, end in intervals:
        if start <= last:
            if end > last:
                ends[-1] = last = end
        else:
            starts.append(start)
            ends.append(end)
            last = end
    return starts, ends


def _merge_lists(starts: list[int], ends: list[int], margin: int) -> tuple[list[int], list[int]]:
    """As :func:`_merge` for intervals given as sorted starts and their ends, each widened by
    ``margin`` on both sides."""
    merged_starts: list[int] = []
    merged_ends: list[int] = []
    last = -_UNBOUNDED
    for start, end in zip(starts, ends, strict=True):
        start -= margin
        end += margin
        if start <= last:
            if end > last:
                merged_ends[-1] = last = end
        else:
            merged_starts.append(start)
            merged_ends.append(end)
            last = end
    return merged_starts, merged_ends


def _overlaps(starts: list[int], ends: list[int], start: int, end: int) -> bool:
    index = bisect.bisect_right(ends, start)  # first interval ending after ``start``
    return index < len(starts) and starts[index] < end


def _candidates(expert: _Expert, first_day: int, last_day: int) -> list[tuple[int, int]]:
    """Candidate starts ``(instant, expert's local day)`` of ranges starting on these days."""
    offsets, length, step = expert.offsets, expert.length, expert.step
    found: list[tuple[int, int]] = []
    # No clock change anywhere in the table (most windows): wall time = instant + offset.
    steady = offsets.offsets[0] if len(offsets.offsets) == 1 else None
    for day in range(first_day, last_day + 1):
        base = day * _DAY
        for start_s, end_s in expert.ranges_on(day):
            local_start = base + start_s
            local_end = base + end_s + (_DAY if end_s <= start_s else 0)
            if steady is not None:
                found += [
                    (local - steady, local // _DAY)
                    for local in range(local_start, local_end - length + 1, step)
                ]
                continue
            range_start = offsets.earliest(local_start)
            range_end = offsets.latest(local_end)
            if range_end - range_start < length:
                continue
            offset = offsets.at(range_start)
            if offset == offsets.at(range_end):
                # No clock change inside the range: wall time = instant + offset. (A range may
                # start inside a skipped hour: its grid starts there, its first slots do not.)
                first = local_start
                if first - offset < range_start:
                    first += -((first - offset - range_start) // step) * step
                found += [
                    (local - offset, local // _DAY)
                    for local in range(first, local_end - length + 1, step)
                ]
                continue
            local = local_start
            while local < local_end + _DAY:
                instants = offsets.resolve(local)
                if instants and instants[0] + length > range_end:
                    break
                for instant in instants:
                    if instant >= range_start and instant + length <= range_end:
                        found.append((instant, local // _DAY))
                local += step
    # Ranges may overlap; an instant has one wall time, so equal instants are equal pairs.
    found.sort()
    return list(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class _Bounds:
    window_start: int
    window_end: int
    earliest: int  # now + minimum notice
    horizon_end: int
    low: int  # the first start that can pass: max(window start, earliest)
    high: int  # no start at or after this passes: min(window end, horizon end)


def _bounds(
    availability: Availability,
    *,
    window_start_utc: dt.datetime | None,
    window_end_utc: dt.datetime | None,
    now_utc: dt.datetime,
    horizon_timezone: str | None,
) -> _Bounds:
    _require_aware(now_utc, "now_utc")
    now = _instant_up(now_utc)
    horizon_tz = zone(horizon_timezone or availability.timezone)
    horizon = _instant(horizon_end(now_utc, availability.horizon_days, horizon_tz))
    if window_start_utc is not None:
        _require_aware(window_start_utc, "window_start_utc")
    if window_end_utc is not None:
        _require_aware(window_end_utc, "window_end_utc")
    # No window: only the minimum notice and the horizon bound the slots.
    window_start = _instant_up(window_start_utc) if window_start_utc else -_UNBOUNDED
    window_end = _instant_up(window_end_utc) if window_end_utc else _UNBOUNDED
    earliest = now + availability.min_notice_minutes * 60
    return _Bounds(
        window_start=window_start,
        window_end=window_end,
        earliest=earliest,
        horizon_end=horizon,
        low=max(window_start, earliest),
        high=min(window_end, horizon),
    )


def _judge(
    expert: _Expert, bounds: _Bounds, candidates: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The free ones among candidates ``(start, day)`` (sorted by start).

    The one rule of both the listing and the booking re-check (which judges the candidates of
    the start's days and looks for the start among the free ones); ``_reason`` only explains a
    start this did not find free.
    """
    low, high, full, length = bounds.low, bounds.high, expert.full_days, expert.length
    busy_starts, busy_ends = expert.busy_starts, expert.busy_ends
    count = len(busy_starts)
    # The first busy interval ending after the current start: found by bisecting for the first
    # candidate, then walked forward (the starts ascend).
    index = bisect.bisect_right(busy_ends, candidates[0][0]) if candidates else 0
    free: list[tuple[int, int]] = []
    for candidate in candidates:
        start, day = candidate
        if low <= start < high and day not in full:
            while index < count and busy_ends[index] <= start:
                index += 1
            if index == count or busy_starts[index] >= start + length:
                free.append(candidate)
    return free


def _reason(expert: _Expert, bounds: _Bounds, start: int, day: int) -> Rejection:
    """The first rule a start breaks (for a start ``_judge`` found not free)."""
    if not bounds.window_start <= start < bounds.window_end:
        return Rejection.OUTSIDE_WINDOW
    if start < bounds.earliest:
        return Rejection.TOO_SOON
    if start >= bounds.horizon_end:
        return Rejection.BEYOND_HORIZON
    if day in expert.full_days:
        return Rejection.DAY_FULL
    end = start + expert.length
    if _overlaps(expert.unavailable_starts, expert.unavailable_ends, start, end):
        return Rejection.UNAVAILABLE
    return Rejection.CONFLICT


def _free(
    member: PoolMember, bounds: _Bounds, shared: dict[tuple[str, int, int], _Offsets] | None = None
) -> tuple[_Expert, list[tuple[int, int]]] | None:
    """The expert and their free ``(start instant, local day)`` pairs; None when the bounds
    leave no room at all."""
    low, high = bounds.low, bounds.high
    if low >= high:
        return None
    span = _span(low, high)
    offsets = None
    if shared is not None:  # a pool: experts in the same zone share one offset table
        key = (member.availability.timezone, *span)
        offsets = shared.get(key)
        if offsets is None:
            offsets = shared[key] = _Offsets(zone(member.availability.timezone), *span)
    expert = _Expert(*member, span=span, offsets=offsets)
    first_day = expert.offsets.day(low) - 1  # ranges of the day before run past midnight
    last_day = expert.offsets.day(high - 1)
    candidates = _candidates(expert, first_day, last_day)
    return expert, _judge(expert, bounds, candidates)


def _check(member: PoolMember, bounds: _Bounds, start_utc: dt.datetime) -> tuple[SlotCheck, int]:
    """One start judged: the check, and the bookings already on the expert's day of it."""
    _require_aware(start_utc, "start_utc")
    if (start_utc - _EPOCH) % _SECOND:
        return SlotCheck(Rejection.NOT_OFFERED), 0
    start = _instant(start_utc)
    expert = _Expert(*member, span=_span(start, start + 1))
    # The candidates of the days that can hold this start, judged as the listing judges them;
    # the start is free when it is among the free ones.
    day_of_start = expert.offsets.day(start)
    candidates = _candidates(expert, day_of_start - 1, day_of_start)
    on_grid = dict(candidates).get(start)
    if on_grid is None:
        return SlotCheck(Rejection.NOT_OFFERED), 0
    day = on_grid
    free = dict(_judge(expert, bounds, candidates))
    slot = Slot(_to_datetime(start), _to_datetime(start + expert.length), expert.expert_id)
    reason = None if start in free else _reason(expert, bounds, start, day)
    return SlotCheck(reason, slot), expert.day_counts.get(day, 0)


# --------------------------------------------------------------------------------------------
# Public functions


def free_slots(
    availability: Availability,
    bookings: Sequence[Booking],
    unavailable: Sequence[UnavailablePeriod],
    *,
    now_utc: dt.datetime,
    expert_id: ExpertId,
    window_start_utc: dt.datetime | None = None,
    window_end_utc: dt.datetime | None = None,
    horizon_timezone: str | None = None,
    busy: Sequence[BusyTime] = (),
) -> list[Slot]:
    """The expert's free slots starting in ``[window_start_utc, window_end_utc)``, by start.

    Without a window: from now to the horizon. ``horizon_timezone`` is the requester's zone
    (today and the end of the last day are taken there); the expert's when omitted.
    """
    bounds = _bounds(
        availability,
        window_start_utc=window_start_utc,
        window_end_utc=window_end_utc,
        now_utc=now_utc,
        horizon_timezone=horizon_timezone,
    )
    found = _free(PoolMember(expert_id, availability, bookings, unavailable, busy), bounds)
    if found is None:
        return []
    expert, free = found
    length = expert.length
    return [Slot(_to_datetime(start), _to_datetime(start + length), expert_id) for start, _ in free]


def is_slot_free(
    availability: Availability,
    bookings: Sequence[Booking],
    unavailable: Sequence[UnavailablePeriod],
    *,
    now_utc: dt.datetime,
    expert_id: ExpertId,
    start_utc: dt.datetime,
    window_start_utc: dt.datetime | None = None,
    window_end_utc: dt.datetime | None = None,
    horizon_timezone: str | None = None,
    busy: Sequence[BusyTime] = (),
) -> SlotCheck:
    """Re-check one start at booking time with the same inputs as :func:`free_slots`.

    True exactly when ``free_slots`` with these inputs lists a slot starting at ``start_utc``;
    otherwise ``reason`` says why (:class:`Rejection`). Call it inside the booking transaction
    with the expert's bookings read there, so a booking made meanwhile is seen.
    """
    bounds = _bounds(
        availability,
        window_start_utc=window_start_utc,
        window_end_utc=window_end_utc,
        now_utc=now_utc,
        horizon_timezone=horizon_timezone,
    )
    member = PoolMember(expert_id, availability, bookings, unavailable, busy)
    return _check(member, bounds, start_utc)[0]


def _pick_key(expert_id: ExpertId, day_count: int) -> tuple[int, str]:
    return (day_count, str(expert_id))


def pool_slots(
    experts: Sequence[PoolMember | MemberTuple],
    *,
    now_utc: dt.datetime,
    window_start_utc: dt.datetime | None = None,
    window_end_utc: dt.datetime | None = None,
    horizon_timezone: str | None = None,
) -> list[PoolSlot]:
    """A region pool's free slots: each ``(start, end)`` once, with every expert who can take
    it, in pick order (fewest bookings on their local date of the slot, then id as text)."""
    # One entry per (slot, expert) that can take it, sorted by the slot and then the pick rule:
    # (start, end, bookings that day, id as text, id). The text is unique per expert, so
    # sorting never compares the ids themselves.
    entries: list[tuple[int, int, int, str, ExpertId]] = []
    shared: dict[tuple[str, int, int], _Offsets] = {}
    for member in map(_as_member, experts):
        bounds = _bounds(
            member.availability,
            window_start_utc=window_start_utc,
            window_end_utc=window_end_utc,
            now_utc=now_utc,
            horizon_timezone=horizon_timezone,
        )
        found = _free(member, bounds, shared)
        if found is None:
            continue
        expert, free = found
        expert_id, length, count_on = member.expert_id, expert.length, expert.day_counts.get
        id_text = str(expert_id)
        entries += [
            (start, start + length, count_on(day, 0), id_text, expert_id) for start, day in free
        ]
    entries.sort()
    moments: dict[int, dt.datetime] = {}

    def moment(instant: int) -> dt.datetime:
        found = moments.get(instant)
        if found is None:
            found = moments[instant] = _to_datetime(instant)
        return found

    return [
        PoolSlot(moment(start), moment(end), tuple([entry[4] for entry in group]))
        for (start, end), group in itertools.groupby(entries, key=operator.itemgetter(0, 1))
    ]


def check_pool_slot(
    experts: Sequence[PoolMember | MemberTuple],
    *,
    now_utc: dt.datetime,
    start_utc: dt.datetime,
    end_utc: dt.datetime | None = None,
    window_start_utc: dt.datetime | None = None,
    window_end_utc: dt.datetime | None = None,
    horizon_timezone: str | None = None,
) -> PoolCheck:
    """Re-check a pool slot at booking time: who can take it, in the pick order of
    :func:`pool_slots`. With ``end_utc``, only experts whose slot ends then count."""
    ranked: list[tuple[tuple[int, str], ExpertId]] = []
    reasons: dict[ExpertId, Rejection] = {}
    for member in map(_as_member, experts):
        bounds = _bounds(
            member.availability,
            window_start_utc=window_start_utc,
            window_end_utc=window_end_utc,
            now_utc=now_utc,
            horizon_timezone=horizon_timezone,
        )
        check, day_count = _check(member, bounds, start_utc)
        expert_id = member.expert_id
        if check.slot is not None and end_utc is not None and check.slot.end_utc != end_utc:
            reasons[expert_id] = Rejection.NOT_OFFERED
        elif check.reason is not None:
            reasons[expert_id] = check.reason
        else:
            ranked.append((_pick_key(expert_id, day_count), expert_id))
    ranked.sort(key=lambda c: c[0])
    return PoolCheck(tuple(expert_id for _, expert_id in ranked), reasons)


# --------------------------------------------------------------------------------------------
# The requester's view


@dataclass(slots=True)
class LocalSlot:
    """One slot as a requester sees it: ISO 8601 strings with their offsets."""

    start_utc: str
    end_utc: str
    start_local: str
    end_local: str
    utc_offset: str  # of the local start, e.g. "+05:45"
    label: str  # "14:30"; "01:30 (UTC+01:00)" when that wall time happens twice that day
    expert_ids: tuple[ExpertId, ...]


@dataclass(slots=True)
class LocalDay:
    date: dt.date
    slots: list[LocalSlot]


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}:{rest:02d}"


class _Formatter:
    """Instants as ISO 8601 text in one zone, with the zone's offsets looked up in a table."""

    def __init__(self, tz: ZoneInfo, low: int, high: int) -> None:
        self.offsets = _Offsets(tz, low, high)
        self.dates: dict[int, tuple[dt.date, str]] = {}
        self.offset_texts: dict[int, str] = {}
        self.locals: dict[int, tuple[int, int, str, str]] = {}
        self.utcs: dict[int, str] = {}
        self.clocks: dict[int, str] = {}

    def date(self, day: int) -> tuple[dt.date, str]:
        found = self.dates.get(day)
        if found is None:
            date = _day_date(day)
            found = self.dates[day] = (date, date.isoformat())
        return found

    def offset_text(self, offset: int) -> str:
        text = self.offset_texts.get(offset)
        if text is None:
            text = self.offset_texts[offset] = _offset_text(offset)
        return text

    def local(self, instant: int) -> tuple[int, int, str, str]:
        """(local day, seconds into it, ISO text with offset, offset text)."""
        found = self.locals.get(instant)
        if found is None:
            found = self.locals[instant] = self._local(instant)
        return found

    def clock(self, second: int) -> str:
        """'HH:MM:SS' of a second of the day."""
        text = self.clocks.get(second)
        if text is None:
            hours, rest = divmod(second, 3600)
            minutes, seconds = divmod(rest, 60)
            text = self.clocks[second] = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
        return text

    def _local(self, instant: int) -> tuple[int, int, str, str]:
        offset = self.offsets.at(instant)
        day, second = divmod(instant + offset, _DAY)
        offset_text = self.offset_text(offset)
        text = f"{self.date(day)[1]}T{self.clock(second)}{offset_text}"
        return day, second, text, offset_text

    def utc(self, instant: int) -> str:
        text = self.utcs.get(instant)
        if text is None:
            text = self.utcs[instant] = self._utc(instant)
        return text

    def _utc(self, instant: int) -> str:
        day, second = divmod(instant, _DAY)
        return f"{self.date(day)[1]}T{self.clock(second)}+00:00"

    def repeated(self, instant: int) -> bool:
        """True when the wall time of this instant happens twice (the clocks went back)."""
        table = self.offsets
        if not table.low <= instant <= table.high:
            local = _to_datetime(instant).astimezone(table.tz)
            return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()
        starts, offsets = table.starts, table.offsets
        if len(starts) == 1:
            return False  # no clock change anywhere near
        index = bisect.bisect_right(starts, instant) - 1
        offset = offsets[index]
        wall = instant + offset
        if index > 0 and offsets[index - 1] > offset and wall < starts[index] + offsets[index - 1]:
            return True  # it already happened before the change
        following = index + 1
        return (
            following < len(starts)
            and offsets[following] < offset
            and wall >= starts[following] + offsets[following]
        )  # it happens again after the change


def requester_view(
    slots: Iterable[Slot | PoolSlot],
    requester_tz: str | ZoneInfo,
    from_date: dt.date,
    to_date: dt.date,
) -> list[LocalDay]:
    """Slots grouped by the requester's local date of their start, every date from
    ``from_date`` to ``to_date`` listed (empty when nothing is free); others are left out.
    Instants are taken to the second (as the engine makes them)."""
    tz = requester_tz if isinstance(requester_tz, ZoneInfo) else zone(requester_tz)
    first, last = _day_number(from_date), _day_number(to_date)
    days: dict[int, list[LocalSlot]] = {day: [] for day in range(first, last + 1)}
    # Only the slots starting within the dates (with a day's margin for any zone's offset).
    low, high = first * _DAY - _DAY, (last + 2) * _DAY
    chosen = [
        (start, _instant(s.end_utc), s)
        for s in slots
        if low <= (start := _instant(s.start_utc)) < high
    ]
    chosen.sort(key=lambda c: (c[0], c[1]))
    if chosen:
        # A day either side: a wall time may come round again hours after the last slot.
        formatter = _Formatter(tz, chosen[0][0] - _DAY, max(end for _, end, _ in chosen) + _DAY)
        for start, end, slot in chosen:
            day, second, start_local, offset_text = formatter.local(start)
            bucket = days.get(day)
            if bucket is None:
                continue
            label = f"{second // 3600:02d}:{second % 3600 // 60:02d}"
            if formatter.repeated(start):
                label += f" (UTC{offset_text})"
            expert_ids = slot.expert_ids if isinstance(slot, PoolSlot) else (slot.expert_id,)
            bucket.append(
                LocalSlot(
                    start_utc=formatter.utc(start),
                    end_utc=formatter.utc(end),
                    start_local=start_local,
                    end_local=formatter.local(end)[2],
                    utc_offset=offset_text,
                    label=label,
                    expert_ids=expert_ids,
                )
            )
    return [LocalDay(_day_date(day), entries) for day, entries in days.items()]


# --------------------------------------------------------------------------------------------
# Validating a slot query (GET .../slots?from=&to=&timezone=)


@dataclass(frozen=True, slots=True)
class SlotQuery:
    from_date: dt.date
    to_date: dt.date
    timezone: str
    window_start_utc: dt.datetime  # start of ``from_date`` in the zone
    window_end_utc: dt.datetime  # end of ``to_date`` in the zone (exclusive)


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_date(name: str, raw: str | None, problems: list[FieldProblem]) -> dt.date | None:
    if raw is None or raw == "":
        problems.append(FieldProblem(field=name, message="required, as YYYY-MM-DD"))
        return None
    if not _ISO_DATE.fullmatch(raw):
        problems.append(FieldProblem(field=name, message="not a date in the form YYYY-MM-DD"))
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        problems.append(FieldProblem(field=name, message="no such date"))
        return None


def parse_slot_query(
    from_raw: str | None,
    to_raw: str | None,
    timezone_raw: str | None,
    *,
    now_utc: dt.datetime,
    horizon_days: int,
) -> SlotQuery:
    """Validate ``from``, ``to`` and ``timezone``; raise :class:`SlotQueryInvalid` naming each
    field that is wrong. ``from`` may not lie before today and ``to`` not after today plus
    ``horizon_days``, both in the requester's zone."""
    problems: list[FieldProblem] = []
    from_date = _parse_date("from", from_raw, problems)
    to_date = _parse_date("to", to_raw, problems)
    tz: ZoneInfo | None = None
    if not timezone_raw:
        problems.append(FieldProblem(field="timezone", message="required, e.g. Europe/London"))
    else:
        try:
            tz = zone(timezone_raw)
        except ValueError:
            problems.append(
                FieldProblem(field="timezone", message="not a known IANA zone like Area/City")
            )
    details: dict[str, str] | None = None
    if from_date and to_date and to_date < from_date:
        problems.append(FieldProblem(field="to", message="must not be before from"))
    if tz is not None:
        today = now_utc.astimezone(tz).date()
        last = last_bookable_day(now_utc, horizon_days, tz)
        details = {"first_date": today.isoformat(), "last_date": last.isoformat()}
        if from_date and from_date < today:
            problems.append(
                FieldProblem(field="from", message=f"must not be before today ({today})")
            )
        if to_date and to_date > last:
            problems.append(
                FieldProblem(
                    field="to",
                    message=f"beyond the booking horizon of {horizon_days} days ({last})",
                )
            )
    if problems:
        raise SlotQueryInvalid(problems, details=details)
    assert from_date is not None and to_date is not None and tz is not None
    assert timezone_raw is not None
    return SlotQuery(
        from_date=from_date,
        to_date=to_date,
        timezone=timezone_raw,
        window_start_utc=start_of_day(from_date, tz),
        window_end_utc=start_of_day(to_date + dt.timedelta(days=1), tz),
    )
