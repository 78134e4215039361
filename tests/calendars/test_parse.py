"""Busy times read from iCalendar data: recurrences (RRULE, EXDATE, RECURRENCE-ID) across a
clock change, all-day events on a 23-hour day, other zones, floating times, cancelled and
"free" events, Google's X-WR-TIMEZONE."""

from __future__ import annotations

import datetime as dt

import pytest

from app.calendars.parse import CalendarDataInvalid, busy_times

UTC = dt.UTC
BERLIN_ZONE = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
"""


def calendar(*events: str, head: str = "") -> bytes:
    body = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//tests//calendars//EN\n" + head
    for e in events:
        body += "BEGIN:VEVENT\nDTSTAMP:20270101T000000Z\n" + e.strip() + "\nEND:VEVENT\n"
    return (body + "END:VCALENDAR\n").replace("\n", "\r\n").encode()


def event(uid: str, *lines: str) -> str:
    return "\n".join([f"UID:{uid}", *lines])


def spans(data: bytes, zone: str = "Europe/London") -> list[tuple[str, str]]:
    found = busy_times(
        data,
        start=dt.datetime(2027, 3, 20, tzinfo=UTC),
        end=dt.datetime(2027, 5, 1, tzinfo=UTC),
        zone=zone,
    )
    return [(b.start.strftime("%m-%d %H:%M"), b.end.strftime("%m-%d %H:%M")) for b in found]


def test_a_weekly_event_in_another_zone_keeps_its_wall_time_across_the_clock_change() -> None:
    data = calendar(
        event(
            "weekly",
            "DTSTART;TZID=Europe/Berlin:20270322T100000",
            "DTEND;TZID=Europe/Berlin:20270322T110000",
            "RRULE:FREQ=WEEKLY;COUNT=4",
            "EXDATE;TZID=Europe/Berlin:20270405T100000",
        ),
        event(
            "weekly",
            "RECURRENCE-ID;TZID=Europe/Berlin:20270412T100000",
            "DTSTART;TZID=Europe/Berlin:20270412T150000",
            "DTEND;TZID=Europe/Berlin:20270412T160000",
        ),
        head=BERLIN_ZONE,
    )
    # 10:00 Berlin is 09:00 UTC in winter, 08:00 in summer; 5 April removed; 12 April moved.
    assert spans(data) == [
        ("03-22 09:00", "03-22 10:00"),
        ("03-29 08:00", "03-29 09:00"),
        ("04-12 13:00", "04-12 14:00"),
    ]


def test_an_all_day_event_blocks_the_experts_whole_day_of_23_hours() -> None:
    data = calendar(event("day", "DTSTART;VALUE=DATE:20270328", "DTEND;VALUE=DATE:20270329"))
    assert spans(data) == [("03-28 00:00", "03-28 23:00")]
    assert spans(data, zone="Asia/Bishkek") == [("03-27 18:00", "03-28 18:00")]


def test_an_all_day_event_without_an_end_is_one_day() -> None:
    data = calendar(event("day", "DTSTART;VALUE=DATE:20270401"))
    assert spans(data) == [("03-31 23:00", "04-01 23:00")]


def test_floating_times_are_the_experts_wall_clock() -> None:
    data = calendar(event("float", "DTSTART:20270330T090000", "DTEND:20270330T100000"))
    assert spans(data) == [("03-30 08:00", "03-30 09:00")]
    assert spans(data, zone="America/New_York") == [("03-30 13:00", "03-30 14:00")]


def test_utc_times_and_durations() -> None:
    data = calendar(event("utc", "DTSTART:20270331T090000Z", "DURATION:PT90M"))
    assert spans(data) == [("03-31 09:00", "03-31 10:30")]


def test_cancelled_and_free_events_and_a_cancelled_occurrence_are_not_busy() -> None:
    data = calendar(
        event("free", "DTSTART:20270331T090000Z", "DTEND:20270331T100000Z", "TRANSP:TRANSPARENT"),
        event("gone", "DTSTART:20270331T120000Z", "DTEND:20270331T130000Z", "STATUS:CANCELLED"),
        event(
            "daily",
            "DTSTART:20270401T070000Z",
            "DTEND:20270401T080000Z",
            "RRULE:FREQ=DAILY;COUNT=3",
        ),
        event(
            "daily",
            "RECURRENCE-ID:20270402T070000Z",
            "DTSTART:20270402T070000Z",
            "DTEND:20270402T080000Z",
            "STATUS:CANCELLED",
        ),
    )
    assert spans(data) == [("04-01 07:00", "04-01 08:00"), ("04-03 07:00", "04-03 08:00")]


def test_googles_calendar_zone_applies_to_its_floating_times() -> None:
    data = calendar(
        event("g", "DTSTART:20270330T090000", "DTEND:20270330T100000"),
        head="X-WR-TIMEZONE:Asia/Tokyo\n",
    )
    assert spans(data) == [("03-30 00:00", "03-30 01:00")]


def test_the_window_and_the_limit_cut_the_list_and_keys_are_stable() -> None:
    data = calendar(
        event("d", "DTSTART:20270101T070000Z", "DTEND:20270101T080000Z", "RRULE:FREQ=DAILY")
    )
    first = busy_times(
        data,
        start=dt.datetime(2027, 4, 1, tzinfo=UTC),
        end=dt.datetime(2027, 4, 11, tzinfo=UTC),
        zone="UTC",
        limit=5,
    )
    assert [b.start.day for b in first] == [1, 2, 3, 4, 5]
    again = busy_times(
        data,
        start=dt.datetime(2027, 4, 1, tzinfo=UTC),
        end=dt.datetime(2027, 4, 3, tzinfo=UTC),
        zone="UTC",
    )
    assert [b.key for b in again] == [b.key for b in first[:2]]
    assert len({b.key for b in first}) == 5


def test_what_is_not_a_calendar_is_refused() -> None:
    with pytest.raises(CalendarDataInvalid):
        busy_times(
            b"<html>login</html>", start=dt.datetime.now(UTC), end=dt.datetime.now(UTC), zone="UTC"
        )
