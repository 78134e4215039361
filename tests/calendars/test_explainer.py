"""The slot explainer never disagrees with the slot list: over many random experts (zones with
clock changes, overrides, buffers, caps, absences, bookings, calendar busy times) and many
times, the rules it names are empty exactly when ``free_slots`` lists the start, and each
named rule is the one that was built to remove it."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.scheduling import explain as ex
from app.scheduling import slots

UTC = dt.UTC
NOW = dt.datetime(2027, 3, 26, 10, 0, tzinfo=UTC)  # two days before Europe's clocks go forward
ZONES = ["Europe/London", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "UTC"]


@st.composite
def experts(draw: st.DrawFn) -> dict[str, object]:
    zone = draw(st.sampled_from(ZONES))
    quarter = st.integers(0, 95).map(lambda q: dt.time(q // 4, q % 4 * 15))
    weekly = [
        slots.WeeklyRange(draw(st.integers(0, 6)), draw(quarter), draw(quarter))
        for _ in range(draw(st.integers(0, 5)))
    ]
    today = NOW.date()
    overrides = {}
    for _ in range(draw(st.integers(0, 2))):
        day = today + dt.timedelta(days=draw(st.integers(0, 4)))
        ranges = [(draw(quarter), draw(quarter)) for _ in range(draw(st.integers(0, 2)))]
        overrides[day] = slots.DateOverride(day, ranges)
    availability = slots.Availability(
        timezone=zone,
        weekly=weekly,
        overrides=list(overrides.values()),
        slot_minutes=draw(st.sampled_from([30, 45, 60])),
        interval_minutes=draw(st.sampled_from([None, 15, 30])),
        buffer_before_minutes=draw(st.sampled_from([0, 10, 15])),
        buffer_after_minutes=draw(st.sampled_from([0, 5, 30])),
        min_notice_minutes=draw(st.sampled_from([0, 120, 600])),
        horizon_days=draw(st.integers(1, 4)),
        max_per_day=draw(st.sampled_from([None, 0, 1, 2])),
    )

    def interval(max_minutes: int) -> tuple[dt.datetime, dt.datetime]:
        start = NOW + dt.timedelta(minutes=15 * draw(st.integers(-8, 4 * 24 * 5)))
        # Whole quarters, as the grid: boundaries meet starts and ends exactly, often.
        return start, start + dt.timedelta(minutes=15 * draw(st.integers(1, max_minutes // 15)))

    bookings = [slots.Booking(*interval(90)) for _ in range(draw(st.integers(0, 4)))]
    away = [slots.UnavailablePeriod(*interval(600)) for _ in range(draw(st.integers(0, 2)))]
    busy = [
        slots.BusyTime(*interval(240), source=draw(st.sampled_from(["work", "home"])))
        for _ in range(draw(st.integers(0, 6)))
    ]
    now = NOW + dt.timedelta(minutes=15 * draw(st.integers(0, 4 * 24)))
    return {
        "availability": availability,
        "bookings": bookings,
        "away": away,
        "busy": busy,
        "now": now,
        "zone": draw(st.sampled_from([None, "Pacific/Kiritimati", "America/Los_Angeles"])),
    }


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experts(), st.lists(st.integers(0, 6 * 24 * 4), min_size=20, max_size=40))
def test_the_explainer_names_a_rule_exactly_when_the_list_leaves_a_time_out(
    case: dict[str, object], quarters: list[int]
) -> None:
    availability = case["availability"]
    assert isinstance(availability, slots.Availability)
    args = (availability, case["bookings"], case["away"])
    now = case["now"]
    assert isinstance(now, dt.datetime)
    zone = case["zone"]
    assert zone is None or isinstance(zone, str)
    listed = slots.free_slots(
        *args, now_utc=now, expert_id="e", horizon_timezone=zone, busy=case["busy"]
    )  # type: ignore[arg-type]
    free = {s.start_utc for s in listed}
    times = {NOW - dt.timedelta(hours=12) + dt.timedelta(minutes=15 * q) for q in quarters}
    times |= free  # every offered start, and its neighbours
    times |= {t + dt.timedelta(minutes=d) for t in list(free)[:10] for d in (-15, -1, 1, 15)}
    for t in sorted(times):
        reasons = ex.reasons_for(
            *args, case["busy"], now_utc=now, expert_id="e", start_utc=t, horizon_timezone=zone
        )  # type: ignore[arg-type]
        assert (reasons == []) == (t in free), (t, reasons)
        answer = ex.explain(
            *args, case["busy"], now_utc=now, expert_id="e", start_utc=t, horizon_timezone=zone
        )  # type: ignore[arg-type]
        assert answer.offered == (t in free)
        assert answer.offered == (answer.reasons == ())


def _at(day: int, hhmm: str) -> dt.datetime:
    """A London wall time ``day`` days after 2027-04-05 (a Monday, summer time: UTC+1)."""
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return dt.datetime(2027, 4, 5 + day, hours, minutes, tzinfo=UTC) - dt.timedelta(hours=1)


def test_each_rule_is_named_for_the_time_it_removes() -> None:
    now = _at(0, "08:00")
    availability = slots.Availability(
        timezone="Europe/London",
        weekly=[slots.WeeklyRange(d, dt.time(9), dt.time(12)) for d in range(7)],
        overrides=[slots.DateOverride(_at(1, "12:00").date(), [(dt.time(14), dt.time(15))])],
        slot_minutes=60,
        buffer_before_minutes=15,
        buffer_after_minutes=15,
        min_notice_minutes=120,
        horizon_days=5,
        max_per_day=2,
    )
    bookings = [
        slots.Booking(_at(2, "10:00"), _at(2, "11:00")),
        slots.Booking(_at(3, "14:00"), _at(3, "15:00")),
        slots.Booking(_at(3, "15:30"), _at(3, "16:30")),
    ]
    away = [slots.UnavailablePeriod(_at(4, "00:00"), _at(4, "10:30"))]
    busy = [slots.BusyTime(_at(5, "09:00"), _at(5, "09:30"), source="Work")]

    def rules(at: dt.datetime) -> list[tuple[ex.Rule, object]]:
        found = ex.explain(
            availability, bookings, away, busy, now_utc=now, expert_id=1, start_utc=at
        )
        return [(r.rule, r.source) for r in found.reasons]

    assert rules(_at(5, "11:00")) == []  # offered: the control
    assert rules(_at(2, "09:00")) == [(ex.Rule.BOOKING_BUFFER, None)]
    assert rules(_at(0, "09:00")) == [(ex.Rule.MINIMUM_NOTICE, None)]
    assert rules(_at(0, "13:00")) == [(ex.Rule.OUTSIDE_HOURS, None)]
    assert rules(_at(1, "09:00")) == [(ex.Rule.OVERRIDE, None)]
    assert rules(_at(1, "14:00")) == []
    assert rules(_at(2, "09:30")) == [(ex.Rule.OFF_GRID, None), (ex.Rule.BOOKING, None)]
    assert rules(_at(2, "10:00")) == [(ex.Rule.BOOKING, None)]
    assert rules(_at(2, "11:00")) == [(ex.Rule.BOOKING_BUFFER, None)]
    assert rules(_at(3, "09:00")) == [(ex.Rule.DAILY_CAP, None)]
    assert rules(_at(4, "10:00")) == [(ex.Rule.LEAVE, None)]
    assert rules(_at(4, "11:00")) == []
    assert rules(_at(5, "09:00")) == [(ex.Rule.CALENDAR_BUSY, "Work")]
    assert rules(_at(5, "10:00")) == []  # 30 minutes after the busy time: past the buffer
    assert rules(_at(6, "09:00")) == [(ex.Rule.HORIZON, None)]
    # The first instant after the last bookable day.
    assert rules(_at(6, "00:00")) == [(ex.Rule.OUTSIDE_HOURS, None), (ex.Rule.HORIZON, None)]
