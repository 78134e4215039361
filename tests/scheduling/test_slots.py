"""The slot engine (app.scheduling.slots): pure, no database.

Every expectation is written out as exact instants and labels, worked out by hand from the
zones' rules (Europe/London: 2026-03-29 01:00 GMT -> 02:00 BST, 2026-10-25 02:00 BST -> 01:00 GMT;
America/New_York: 2026-03-08, 2026-11-01; Australia/Lord_Howe: half-hour shifts on 2026-04-05 and
2026-10-04; Asia/Bishkek +06:00 and Asia/Kathmandu +05:45 without clock changes).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.errors import Unprocessable
from app.scheduling.errors import SlotQueryInvalid
from app.scheduling.slots import (
    Availability,
    Booking,
    DateOverride,
    LocalDay,
    PoolMember,
    Rejection,
    Slot,
    UnavailablePeriod,
    WeeklyRange,
    check_pool_slot,
    free_slots,
    is_slot_free,
    parse_slot_query,
    pool_slots,
    requester_view,
    start_of_day,
)

UTC = dt.UTC
T = dt.time
LONDON = "Europe/London"
NEW_YORK = "America/New_York"
BISHKEK = "Asia/Bishkek"
LORD_HOWE = "Australia/Lord_Howe"
KATHMANDU = "Asia/Kathmandu"
REQUESTER_ZONES = [LONDON, NEW_YORK, BISHKEK, LORD_HOWE, KATHMANDU]


def u(text: str) -> dt.datetime:
    """'2026-10-25 01:00' as a UTC instant."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def every_day(*ranges: tuple[dt.time, dt.time]) -> list[WeeklyRange]:
    return [WeeklyRange(day, start, end) for day in range(7) for start, end in ranges]


def starts(slots: list[Slot]) -> list[dt.datetime]:
    return [s.start_utc for s in slots]


def london_day(day: str) -> tuple[dt.datetime, dt.datetime]:
    date = dt.date.fromisoformat(day)
    tz = ZoneInfo(LONDON)
    return start_of_day(date, tz), start_of_day(date + dt.timedelta(days=1), tz)


def labels(view: list[LocalDay]) -> dict[str, list[tuple[str, str]]]:
    """{requester date: [(label, utc_offset), ...]}"""
    return {d.date.isoformat(): [(s.label, s.utc_offset) for s in d.slots] for d in view}


def local_starts(view: list[LocalDay]) -> list[str]:
    return [s.start_utc for d in view for s in d.slots]


# An expert in London: 00:00-03:00 (crosses both clock changes), 05:00-07:00, 17:00-19:00,
# one-hour consultations, no notice, a horizon long enough not to interfere.
EXPERT = Availability(
    LONDON,
    weekly=every_day((T(0), T(3)), (T(5), T(7)), (T(17), T(19))),
    slot_minutes=60,
    min_notice_minutes=0,
    horizon_days=400,
)
NOW = u("2026-01-01 00:00")


def expert_slots(
    window: tuple[dt.datetime, dt.datetime], availability: Availability = EXPERT
) -> list[Slot]:
    return free_slots(
        availability,
        [],
        [],
        now_utc=NOW,
        expert_id="e1",
        window_start_utc=window[0],
        window_end_utc=window[1],
    )


# ------------------------------------------------------------------------------------------
# Daylight saving time in the expert's zone


def test_spring_forward_skips_the_hour_that_does_not_exist() -> None:
    availability = Availability(
        LONDON, weekly=every_day((T(0), T(3))), slot_minutes=30, min_notice_minutes=0
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-03-20 00:00"),
        expert_id="e1",
        window_start_utc=u("2026-03-29 00:00"),
        window_end_utc=u("2026-03-29 12:00"),
    )
    # 00:00 and 00:30 GMT, then 01:00-02:00 does not exist, then 02:00 and 02:30 BST:
    # two real hours of work.
    assert starts(slots) == [
        u("2026-03-29 00:00"),
        u("2026-03-29 00:30"),
        u("2026-03-29 01:00"),
        u("2026-03-29 01:30"),
    ]
    assert [s.end_utc - s.start_utc for s in slots] == [dt.timedelta(minutes=30)] * 4
    view = requester_view(slots, LONDON, dt.date(2026, 3, 29), dt.date(2026, 3, 29))
    assert labels(view) == {
        "2026-03-29": [
            ("00:00", "+00:00"),
            ("00:30", "+00:00"),
            ("02:00", "+01:00"),
            ("02:30", "+01:00"),
        ]
    }


def test_spring_forward_grid_stays_on_the_wall_clock() -> None:
    # 45-minute grid from 00:00: 00:00, 00:45, (01:30 does not exist), 02:15 BST.
    availability = Availability(
        LONDON, weekly=[WeeklyRange(6, T(0), T(3))], slot_minutes=45, min_notice_minutes=0
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-03-20 00:00"),
        expert_id="e1",
        window_start_utc=u("2026-03-28 00:00"),
        window_end_utc=u("2026-03-30 00:00"),
    )
    assert starts(slots) == [u("2026-03-29 00:00"), u("2026-03-29 00:45"), u("2026-03-29 01:15")]


def test_range_starting_inside_the_skipped_hour_starts_when_the_clocks_change() -> None:
    availability = Availability(
        LONDON,
        overrides=[DateOverride(dt.date(2026, 3, 29), [(T(1, 30), T(3))])],
        slot_minutes=30,
        min_notice_minutes=0,
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-03-20 00:00"),
        expert_id="e1",
        window_start_utc=u("2026-03-28 00:00"),
        window_end_utc=u("2026-03-30 00:00"),
    )
    # 01:30 does not exist (skipped); 02:00 BST = 01:00Z, 02:30 BST = 01:30Z; ends 03:00 BST.
    assert starts(slots) == [u("2026-03-29 01:00"), u("2026-03-29 01:30")]


def test_fall_back_offers_the_repeated_hour_twice_with_offsets() -> None:
    availability = Availability(
        LONDON, weekly=every_day((T(0), T(3))), slot_minutes=30, min_notice_minutes=0
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-10-20 00:00"),
        expert_id="e1",
        window_start_utc=u("2026-10-24 22:00"),
        window_end_utc=u("2026-10-25 12:00"),
    )
    # 00:00-03:00 local is four real hours: 00:00 BST = 23:00Z ... 02:30 GMT = 02:30Z.
    assert starts(slots) == [
        u("2026-10-24 23:00"),
        u("2026-10-24 23:30"),
        u("2026-10-25 00:00"),
        u("2026-10-25 00:30"),
        u("2026-10-25 01:00"),
        u("2026-10-25 01:30"),
        u("2026-10-25 02:00"),
        u("2026-10-25 02:30"),
    ]
    view = requester_view(slots, LONDON, dt.date(2026, 10, 25), dt.date(2026, 10, 25))
    assert labels(view) == {
        "2026-10-25": [
            ("00:00", "+01:00"),
            ("00:30", "+01:00"),
            ("01:00 (UTC+01:00)", "+01:00"),
            ("01:30 (UTC+01:00)", "+01:00"),
            ("01:00 (UTC+00:00)", "+00:00"),
            ("01:30 (UTC+00:00)", "+00:00"),
            ("02:00", "+00:00"),
            ("02:30", "+00:00"),
        ]
    }
    first, second = view[0].slots[2], view[0].slots[4]
    assert (first.start_local, first.start_utc) == (
        "2026-10-25T01:00:00+01:00",
        "2026-10-25T00:00:00+00:00",
    )
    assert (second.start_local, second.start_utc) == (
        "2026-10-25T01:00:00+00:00",
        "2026-10-25T01:00:00+00:00",
    )
    assert first.end_local == "2026-10-25T01:30:00+01:00"


def test_range_ending_in_the_repeated_hour_ends_at_its_second_occurrence() -> None:
    availability = Availability(
        LONDON,
        overrides=[DateOverride(dt.date(2026, 10, 25), [(T(0), T(1, 30))])],
        slot_minutes=30,
        min_notice_minutes=0,
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-10-20 00:00"),
        expert_id="e1",
        window_start_utc=u("2026-10-24 00:00"),
        window_end_utc=u("2026-10-26 00:00"),
    )
    # Until 01:30 GMT (01:30Z): 00:00, 00:30 BST, 01:00 BST, 01:30 BST, 01:00 GMT.
    assert starts(slots) == [
        u("2026-10-24 23:00"),
        u("2026-10-24 23:30"),
        u("2026-10-25 00:00"),
        u("2026-10-25 00:30"),
        u("2026-10-25 01:00"),
    ]


def test_range_ending_inside_the_skipped_hour_ends_when_the_clocks_change() -> None:
    availability = Availability(
        LONDON,
        overrides=[DateOverride(dt.date(2026, 3, 29), [(T(0), T(1, 30))])],
        slot_minutes=30,
        min_notice_minutes=0,
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-03-20 00:00"),
        expert_id="e1",
        window_start_utc=u("2026-03-28 00:00"),
        window_end_utc=u("2026-03-30 00:00"),
    )
    # 01:30 does not exist: the range ends at 01:00Z, when the clocks change.
    assert starts(slots) == [u("2026-03-29 00:00"), u("2026-03-29 00:30")]


def test_a_day_whose_midnight_does_not_exist_starts_when_the_clocks_change() -> None:
    # Santiago goes from -04:00 to -03:00 at midnight: 6 Sep 2026 starts at 01:00 local.
    santiago = ZoneInfo("America/Santiago")
    assert start_of_day(dt.date(2026, 9, 6), santiago) == u("2026-09-06 04:00")
    assert start_of_day(dt.date(2026, 9, 7), santiago) == u("2026-09-07 03:00")
    query = parse_slot_query(
        "2026-09-06", "2026-09-06", "America/Santiago", now_utc=NOW, horizon_days=400
    )
    assert (query.window_start_utc, query.window_end_utc) == (
        u("2026-09-06 04:00"),
        u("2026-09-07 03:00"),
    )


def test_window_starting_after_midnight_keeps_the_range_from_the_evening_before() -> None:
    availability = Availability(
        LONDON, weekly=[WeeklyRange(5, T(22), T(2))], slot_minutes=60, min_notice_minutes=0
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-11-23 12:00"),
        expert_id="e1",
        window_start_utc=u("2026-11-29 00:30"),
        window_end_utc=u("2026-11-30 00:00"),
    )
    assert starts(slots) == [u("2026-11-29 01:00")]


def test_range_past_midnight_into_the_fall_back_night() -> None:
    availability = Availability(
        LONDON, weekly=[WeeklyRange(5, T(22), T(2))], slot_minutes=60, min_notice_minutes=0
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-10-20 00:00"),
        expert_id="e1",
        window_start_utc=u("2026-10-24 00:00"),
        window_end_utc=u("2026-10-26 00:00"),
    )
    # Saturday 22:00 BST to Sunday 02:00 GMT: five real hours.
    assert starts(slots) == [
        u("2026-10-24 21:00"),
        u("2026-10-24 22:00"),
        u("2026-10-24 23:00"),
        u("2026-10-25 00:00"),
        u("2026-10-25 01:00"),
    ]


# ------------------------------------------------------------------------------------------
# Requesters in other zones: the same instants, other labels and dates

LONDON_OCT_25 = [
    u("2026-10-24 23:00"),  # 00:00 BST
    u("2026-10-25 00:00"),  # 01:00 BST
    u("2026-10-25 01:00"),  # 01:00 GMT
    u("2026-10-25 02:00"),  # 02:00 GMT
    u("2026-10-25 05:00"),
    u("2026-10-25 06:00"),
    u("2026-10-25 17:00"),
    u("2026-10-25 18:00"),
]
LONDON_MAR_29 = [
    u("2026-03-29 00:00"),  # 00:00 GMT; 01:00 does not exist
    u("2026-03-29 01:00"),  # 02:00 BST
    u("2026-03-29 04:00"),  # 05:00 BST
    u("2026-03-29 05:00"),
    u("2026-03-29 16:00"),
    u("2026-03-29 17:00"),
]


def test_expert_fall_back_day_seen_from_every_zone() -> None:
    slots = expert_slots(london_day("2026-10-25"))
    assert starts(slots) == LONDON_OCT_25
    expected = {
        LONDON: {
            "2026-10-24": [],
            "2026-10-25": [
                ("00:00", "+01:00"),
                ("01:00 (UTC+01:00)", "+01:00"),
                ("01:00 (UTC+00:00)", "+00:00"),
                ("02:00", "+00:00"),
                ("05:00", "+00:00"),
                ("06:00", "+00:00"),
                ("17:00", "+00:00"),
                ("18:00", "+00:00"),
            ],
            "2026-10-26": [],
        },
        NEW_YORK: {
            "2026-10-24": [
                ("19:00", "-04:00"),
                ("20:00", "-04:00"),
                ("21:00", "-04:00"),
                ("22:00", "-04:00"),
            ],
            "2026-10-25": [
                ("01:00", "-04:00"),
                ("02:00", "-04:00"),
                ("13:00", "-04:00"),
                ("14:00", "-04:00"),
            ],
            "2026-10-26": [],
        },
        BISHKEK: {
            "2026-10-24": [],
            "2026-10-25": [
                ("05:00", "+06:00"),
                ("06:00", "+06:00"),
                ("07:00", "+06:00"),
                ("08:00", "+06:00"),
                ("11:00", "+06:00"),
                ("12:00", "+06:00"),
                ("23:00", "+06:00"),
            ],
            # 18:00Z is Bishkek's midnight: the next day.
            "2026-10-26": [("00:00", "+06:00")],
        },
        LORD_HOWE: {
            "2026-10-24": [],
            "2026-10-25": [
                ("10:00", "+11:00"),
                ("11:00", "+11:00"),
                ("12:00", "+11:00"),
                ("13:00", "+11:00"),
                ("16:00", "+11:00"),
                ("17:00", "+11:00"),
            ],
            "2026-10-26": [("04:00", "+11:00"), ("05:00", "+11:00")],
        },
        KATHMANDU: {
            "2026-10-24": [],
            "2026-10-25": [
                ("04:45", "+05:45"),
                ("05:45", "+05:45"),
                ("06:45", "+05:45"),
                ("07:45", "+05:45"),
                ("10:45", "+05:45"),
                ("11:45", "+05:45"),
                ("22:45", "+05:45"),
                # 18:00Z is 23:45, a quarter of an hour before Kathmandu's midnight.
                ("23:45", "+05:45"),
            ],
            "2026-10-26": [],
        },
    }
    for zone_name in REQUESTER_ZONES:
        view = requester_view(slots, zone_name, dt.date(2026, 10, 24), dt.date(2026, 10, 26))
        assert labels(view) == expected[zone_name], zone_name
        assert local_starts(view) == [s.isoformat() for s in LONDON_OCT_25], zone_name


def test_expert_spring_forward_day_seen_from_every_zone() -> None:
    slots = expert_slots(london_day("2026-03-29"))
    assert starts(slots) == LONDON_MAR_29
    expected = {
        LONDON: {
            "2026-03-28": [],
            "2026-03-29": [
                ("00:00", "+00:00"),
                ("02:00", "+01:00"),
                ("05:00", "+01:00"),
                ("06:00", "+01:00"),
                ("17:00", "+01:00"),
                ("18:00", "+01:00"),
            ],
            "2026-03-30": [],
        },
        NEW_YORK: {
            "2026-03-28": [("20:00", "-04:00"), ("21:00", "-04:00")],
            # 04:00Z is New York's midnight (EDT).
            "2026-03-29": [
                ("00:00", "-04:00"),
                ("01:00", "-04:00"),
                ("12:00", "-04:00"),
                ("13:00", "-04:00"),
            ],
            "2026-03-30": [],
        },
        BISHKEK: {
            "2026-03-28": [],
            "2026-03-29": [
                ("06:00", "+06:00"),
                ("07:00", "+06:00"),
                ("10:00", "+06:00"),
                ("11:00", "+06:00"),
                ("22:00", "+06:00"),
                ("23:00", "+06:00"),
            ],
            "2026-03-30": [],
        },
        LORD_HOWE: {
            "2026-03-28": [],
            "2026-03-29": [
                ("11:00", "+11:00"),
                ("12:00", "+11:00"),
                ("15:00", "+11:00"),
                ("16:00", "+11:00"),
            ],
            "2026-03-30": [("03:00", "+11:00"), ("04:00", "+11:00")],
        },
        KATHMANDU: {
            "2026-03-28": [],
            "2026-03-29": [
                ("05:45", "+05:45"),
                ("06:45", "+05:45"),
                ("09:45", "+05:45"),
                ("10:45", "+05:45"),
                ("21:45", "+05:45"),
                ("22:45", "+05:45"),
            ],
            "2026-03-30": [],
        },
    }
    for zone_name in REQUESTER_ZONES:
        view = requester_view(slots, zone_name, dt.date(2026, 3, 28), dt.date(2026, 3, 30))
        assert labels(view) == expected[zone_name], zone_name
        assert local_starts(view) == [s.isoformat() for s in LONDON_MAR_29], zone_name


def test_new_york_spring_forward_day_a_23_hour_day() -> None:
    query = parse_slot_query("2026-03-08", "2026-03-08", NEW_YORK, now_utc=NOW, horizon_days=400)
    assert (query.window_start_utc, query.window_end_utc) == (
        u("2026-03-08 05:00"),
        u("2026-03-09 04:00"),
    )
    slots = expert_slots((query.window_start_utc, query.window_end_utc))
    assert starts(slots) == [
        u("2026-03-08 05:00"),
        u("2026-03-08 06:00"),
        u("2026-03-08 17:00"),
        u("2026-03-08 18:00"),
        u("2026-03-09 00:00"),
        u("2026-03-09 01:00"),
        u("2026-03-09 02:00"),
    ]
    view = requester_view(slots, NEW_YORK, query.from_date, query.to_date)
    assert labels(view) == {
        "2026-03-08": [
            ("00:00", "-05:00"),
            ("01:00", "-05:00"),
            ("13:00", "-04:00"),
            ("14:00", "-04:00"),
            ("20:00", "-04:00"),
            ("21:00", "-04:00"),
            ("22:00", "-04:00"),
        ]
    }


def test_new_york_fall_back_day_labels_its_repeated_hour() -> None:
    query = parse_slot_query("2026-11-01", "2026-11-01", NEW_YORK, now_utc=NOW, horizon_days=400)
    assert (query.window_start_utc, query.window_end_utc) == (
        u("2026-11-01 04:00"),
        u("2026-11-02 05:00"),
    )
    slots = expert_slots((query.window_start_utc, query.window_end_utc))
    assert starts(slots) == [
        u("2026-11-01 05:00"),
        u("2026-11-01 06:00"),
        u("2026-11-01 17:00"),
        u("2026-11-01 18:00"),
        u("2026-11-02 00:00"),
        u("2026-11-02 01:00"),
        u("2026-11-02 02:00"),
    ]
    view = requester_view(slots, NEW_YORK, query.from_date, query.to_date)
    assert labels(view) == {
        "2026-11-01": [
            ("01:00 (UTC-04:00)", "-04:00"),
            ("01:00 (UTC-05:00)", "-05:00"),
            ("12:00", "-05:00"),
            ("13:00", "-05:00"),
            ("19:00", "-05:00"),
            ("20:00", "-05:00"),
            ("21:00", "-05:00"),
        ]
    }


def test_repeated_hour_is_labelled_even_when_its_other_occurrence_is_not_listed() -> None:
    first = Slot(u("2026-11-01 05:00"), u("2026-11-01 05:45"), "e1")  # 01:00 EDT
    second = Slot(u("2026-11-01 06:00"), u("2026-11-01 06:45"), "e1")  # 01:00 EST
    day = dt.date(2026, 11, 1)
    assert labels(requester_view([first], NEW_YORK, day, day)) == {
        "2026-11-01": [("01:00 (UTC-04:00)", "-04:00")]
    }
    assert labels(requester_view([second], NEW_YORK, day, day)) == {
        "2026-11-01": [("01:00 (UTC-05:00)", "-05:00")]
    }
    # An hour earlier nothing is repeated.
    earlier = Slot(u("2026-11-01 04:00"), u("2026-11-01 04:45"), "e1")
    assert labels(requester_view([earlier], NEW_YORK, day, day)) == {
        "2026-11-01": [("00:00", "-04:00")]
    }


def test_lord_howe_half_hour_fall_back() -> None:
    # Saturday 15:00-16:30 BST = 14:00-15:30Z; Lord Howe goes from +11:00 to +10:30 at 15:00Z,
    # so 01:30 happens twice there.
    availability = Availability(
        LONDON,
        overrides=[DateOverride(dt.date(2026, 4, 4), [(T(15), T(16, 30))])],
        slot_minutes=30,
        min_notice_minutes=0,
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-04-01 00:00"),
        expert_id="e1",
        horizon_timezone=LORD_HOWE,
    )
    assert starts(slots) == [u("2026-04-04 14:00"), u("2026-04-04 14:30"), u("2026-04-04 15:00")]
    view = requester_view(slots, LORD_HOWE, dt.date(2026, 4, 5), dt.date(2026, 4, 5))
    assert labels(view) == {
        "2026-04-05": [
            ("01:00", "+11:00"),
            ("01:30 (UTC+11:00)", "+11:00"),
            ("01:30 (UTC+10:30)", "+10:30"),
        ]
    }


def test_lord_howe_half_hour_spring_forward() -> None:
    availability = Availability(
        LONDON,
        overrides=[DateOverride(dt.date(2026, 10, 3), [(T(15), T(17))])],
        slot_minutes=30,
        min_notice_minutes=0,
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-10-01 00:00"),
        expert_id="e1",
        horizon_timezone=LORD_HOWE,
    )
    assert starts(slots) == [
        u("2026-10-03 14:00"),
        u("2026-10-03 14:30"),
        u("2026-10-03 15:00"),
        u("2026-10-03 15:30"),
    ]
    view = requester_view(slots, LORD_HOWE, dt.date(2026, 10, 4), dt.date(2026, 10, 4))
    # 02:00-02:30 does not exist in Lord Howe that night.
    assert labels(view) == {
        "2026-10-04": [
            ("00:30", "+10:30"),
            ("01:00", "+10:30"),
            ("01:30", "+10:30"),
            ("02:30", "+11:00"),
        ]
    }


def test_requester_zone_changes_no_instant_over_weeks_around_all_changes() -> None:
    for first, last in [("2026-03-01", "2026-04-10"), ("2026-09-28", "2026-11-05")]:
        window = (london_day(first)[0], london_day(last)[1])
        reference = starts(expert_slots(window))
        assert len(reference) > 150
        for zone_name in REQUESTER_ZONES:
            slots = free_slots(
                EXPERT,
                [],
                [],
                now_utc=NOW,
                expert_id="e1",
                window_start_utc=window[0],
                window_end_utc=window[1],
                horizon_timezone=zone_name,
            )
            assert starts(slots) == reference
            view = requester_view(
                slots,
                zone_name,
                dt.date.fromisoformat(first) - dt.timedelta(days=1),
                dt.date.fromisoformat(last) + dt.timedelta(days=1),
            )
            assert local_starts(view) == [s.isoformat() for s in reference]
            for day in view:
                for entry in day.slots:
                    local = dt.datetime.fromisoformat(entry.start_local)
                    assert local.date() == day.date
                    assert local == dt.datetime.fromisoformat(entry.start_utc)


# ------------------------------------------------------------------------------------------
# Buffers (winter in London: local time = UTC)

MONDAY = "2026-11-30"


def buffered(before: int, after: int) -> Availability:
    return Availability(
        LONDON,
        weekly=[WeeklyRange(0, T(9), T(17))],
        slot_minutes=30,
        interval_minutes=5,
        buffer_before_minutes=before,
        buffer_after_minutes=after,
        min_notice_minutes=0,
    )


def starts_between(
    availability: Availability, bookings: list[Booking], low: str, high: str
) -> list[dt.datetime]:
    slots = free_slots(
        availability,
        bookings,
        [],
        now_utc=u("2026-11-23 12:00"),
        expert_id="e1",
        window_start_utc=u(f"{MONDAY} {low}"),
        window_end_utc=u(f"{MONDAY} {high}"),
    )
    return starts(slots)


BOOKING_NOON = Booking(u(f"{MONDAY} 12:00"), u(f"{MONDAY} 12:30"))


def check(availability: Availability, bookings: list[Booking], hhmm: str) -> Rejection | None:
    return is_slot_free(
        availability,
        bookings,
        [],
        now_utc=u("2026-11-23 12:00"),
        expert_id="e1",
        start_utc=u(f"{MONDAY} {hhmm}"),
    ).reason


def test_no_slot_starts_inside_an_after_buffer() -> None:
    availability = buffered(before=10, after=20)  # after-buffer 12:30-12:50
    after = starts_between(availability, [BOOKING_NOON], "12:30", "13:05")
    assert after == [u(f"{MONDAY} 12:50"), u(f"{MONDAY} 12:55"), u(f"{MONDAY} 13:00")]
    assert check(availability, [BOOKING_NOON], "12:45") is Rejection.CONFLICT
    assert check(availability, [BOOKING_NOON], "12:50") is None


def test_no_slot_ends_inside_a_before_buffer() -> None:
    availability = buffered(before=20, after=10)  # before-buffer 11:40-12:00
    before = starts_between(availability, [BOOKING_NOON], "11:00", "12:00")
    # 11:10 ends at 11:40, exactly where the before-buffer starts; 11:15 would end inside it.
    assert before == [u(f"{MONDAY} 11:00"), u(f"{MONDAY} 11:05"), u(f"{MONDAY} 11:10")]
    assert check(availability, [BOOKING_NOON], "11:15") is Rejection.CONFLICT
    assert check(availability, [BOOKING_NOON], "11:10") is None


def test_an_existing_booking_may_not_sit_inside_the_new_slots_buffers() -> None:
    # Buffers surround the booking being made too, so the order of bookings does not matter:
    # with before=10, after=20 a slot ending 11:50 would put the noon booking inside its own
    # 20-minute after-buffer; with before=20, after=10 a slot starting 12:40 would put it inside
    # its 20-minute before-buffer.
    late_after = buffered(before=10, after=20)
    assert starts_between(late_after, [BOOKING_NOON], "11:00", "12:00") == [
        u(f"{MONDAY} 11:00"),
        u(f"{MONDAY} 11:05"),
        u(f"{MONDAY} 11:10"),
    ]
    assert check(late_after, [BOOKING_NOON], "11:20") is Rejection.CONFLICT
    long_before = buffered(before=20, after=10)
    assert starts_between(long_before, [BOOKING_NOON], "12:30", "13:05") == [
        u(f"{MONDAY} 12:50"),
        u(f"{MONDAY} 12:55"),
        u(f"{MONDAY} 13:00"),
    ]
    assert check(long_before, [BOOKING_NOON], "12:40") is Rejection.CONFLICT


def test_without_buffers_slots_touch_bookings() -> None:
    availability = buffered(before=0, after=0)
    # 11:30 ends as the booking starts; 12:30 starts as it ends.
    assert starts_between(availability, [BOOKING_NOON], "11:25", "12:35") == [
        u(f"{MONDAY} 11:25"),
        u(f"{MONDAY} 11:30"),
        u(f"{MONDAY} 12:30"),
    ]


def test_buffers_do_not_surround_unavailable_periods() -> None:
    availability = Availability(
        LONDON,
        weekly=[WeeklyRange(0, T(9), T(17))],
        slot_minutes=30,
        buffer_before_minutes=20,
        buffer_after_minutes=20,
        min_notice_minutes=0,
    )
    slots = free_slots(
        availability,
        [],
        [UnavailablePeriod(u(f"{MONDAY} 12:00"), u(f"{MONDAY} 12:30"))],
        now_utc=u("2026-11-23 12:00"),
        expert_id="e1",
        window_start_utc=u(f"{MONDAY} 11:00"),
        window_end_utc=u(f"{MONDAY} 13:30"),
    )
    assert starts(slots) == [
        u(f"{MONDAY} 11:00"),
        u(f"{MONDAY} 11:30"),
        u(f"{MONDAY} 12:30"),
        u(f"{MONDAY} 13:00"),
    ]


# ------------------------------------------------------------------------------------------
# Daily cap by the expert's local date


def test_cap_counts_a_booking_by_the_experts_local_date() -> None:
    # London in June is UTC+1: a booking at 23:30Z on Sunday 14 June starts on Monday 15 June.
    availability = Availability(
        LONDON,
        weekly=every_day((T(9), T(12))),
        slot_minutes=60,
        min_notice_minutes=0,
        max_per_day=1,
    )
    late = Booking(u("2026-06-14 23:30"), u("2026-06-15 00:15"))
    slots = free_slots(
        availability,
        [late],
        [],
        now_utc=u("2026-06-01 00:00"),
        expert_id="e1",
        window_start_utc=u("2026-06-14 00:00"),
        window_end_utc=u("2026-06-16 00:00"),
    )
    # Sunday keeps all three (09:00-11:00 BST); Monday is full.
    assert starts(slots) == [u("2026-06-14 08:00"), u("2026-06-14 09:00"), u("2026-06-14 10:00")]
    result = is_slot_free(
        availability,
        [late],
        [],
        now_utc=u("2026-06-01 00:00"),
        expert_id="e1",
        start_utc=u("2026-06-15 08:00"),
    )
    assert result.reason is Rejection.DAY_FULL and not result


def test_cap_not_reached_leaves_the_day_open() -> None:
    availability = Availability(
        LONDON,
        weekly=every_day((T(9), T(12))),
        slot_minutes=60,
        min_notice_minutes=0,
        max_per_day=2,
    )
    slots = free_slots(
        availability,
        [Booking(u("2026-06-15 10:00"), u("2026-06-15 11:00"))],
        [],
        now_utc=u("2026-06-01 00:00"),
        expert_id="e1",
        window_start_utc=u("2026-06-15 00:00"),
        window_end_utc=u("2026-06-16 00:00"),
    )
    assert starts(slots) == [u("2026-06-15 08:00"), u("2026-06-15 09:00")]


def test_cap_of_a_range_past_midnight_counts_each_slot_by_its_own_start_date() -> None:
    # Monday 22:00-02:00 (GMT): 22:00 and 23:00 are Monday's, 00:00 and 01:00 Tuesday's.
    availability = Availability(
        LONDON,
        weekly=[WeeklyRange(0, T(22), T(2))],
        slot_minutes=60,
        min_notice_minutes=0,
        max_per_day=1,
    )

    def offered(booking: Booking) -> list[dt.datetime]:
        return starts(
            free_slots(
                availability,
                [booking],
                [],
                now_utc=u("2026-11-23 12:00"),
                expert_id="e1",
                window_start_utc=u("2026-11-30 00:00"),
                window_end_utc=u("2026-12-02 00:00"),
            )
        )

    tuesday_booked = Booking(u("2026-12-01 10:00"), u("2026-12-01 11:00"))
    assert offered(tuesday_booked) == [u("2026-11-30 22:00"), u("2026-11-30 23:00")]
    monday_booked = Booking(u("2026-11-30 10:00"), u("2026-11-30 11:00"))
    assert offered(monday_booked) == [u("2026-12-01 00:00"), u("2026-12-01 01:00")]


# ------------------------------------------------------------------------------------------
# Minimum notice is absolute, across a clock change


@pytest.mark.parametrize(
    ("now", "first_free", "too_soon"),
    [
        # 00:30Z is 01:30 BST; two real hours later is 02:30 GMT (02:30Z), not 03:30 local.
        ("2026-10-25 00:30", "2026-10-25 02:30", "2026-10-25 02:00"),
        # 00:30Z is 00:30 GMT; two real hours later is 03:30 BST (02:30Z), not 02:30 local.
        ("2026-03-29 00:30", "2026-03-29 02:30", "2026-03-29 02:00"),
    ],
)
def test_minimum_notice_is_absolute_across_a_clock_change(
    now: str, first_free: str, too_soon: str
) -> None:
    availability = Availability(
        LONDON, weekly=[WeeklyRange(6, T(0), T(6))], slot_minutes=30, min_notice_minutes=120
    )
    slots = free_slots(availability, [], [], now_utc=u(now), expert_id="e1")
    assert slots[0].start_utc == u(first_free)
    result = is_slot_free(
        availability, [], [], now_utc=u(now), expert_id="e1", start_utc=u(too_soon)
    )
    assert result.reason is Rejection.TOO_SOON


# ------------------------------------------------------------------------------------------
# Unavailable periods, overrides, ranges past midnight, interval


def test_unavailable_periods_remove_overlapping_slots() -> None:
    availability = Availability(
        LONDON, weekly=every_day((T(9), T(12))), slot_minutes=60, min_notice_minutes=0
    )
    leave = UnavailablePeriod(u("2026-12-02 10:30"), u("2026-12-03 10:00"))
    slots = free_slots(
        availability,
        [],
        [leave],
        now_utc=u("2026-11-23 12:00"),
        expert_id="e1",
        window_start_utc=u("2026-12-02 00:00"),
        window_end_utc=u("2026-12-04 00:00"),
    )
    assert starts(slots) == [
        u("2026-12-02 09:00"),
        u("2026-12-03 10:00"),  # the period ends as this slot starts
        u("2026-12-03 11:00"),
    ]
    result = is_slot_free(
        availability,
        [],
        [leave],
        now_utc=u("2026-11-23 12:00"),
        expert_id="e1",
        start_utc=u("2026-12-02 10:00"),
    )
    assert result.reason is Rejection.UNAVAILABLE


def test_override_replaces_the_weekly_hours_of_its_date_and_empty_is_a_day_off() -> None:
    availability = Availability(
        LONDON,
        weekly=[WeeklyRange(2, T(9), T(12))],  # Wednesdays
        overrides=[
            DateOverride(dt.date(2026, 12, 2), [(T(14), T(16))]),
            DateOverride(dt.date(2026, 12, 9), []),
        ],
        slot_minutes=60,
        min_notice_minutes=0,
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-11-23 12:00"),
        expert_id="e1",
        window_start_utc=u("2026-12-01 00:00"),
        window_end_utc=u("2026-12-17 00:00"),
    )
    assert starts(slots) == [
        u("2026-12-02 14:00"),
        u("2026-12-02 15:00"),
        u("2026-12-16 09:00"),
        u("2026-12-16 10:00"),
        u("2026-12-16 11:00"),
    ]


def test_override_replaces_ranges_starting_that_day_not_the_evening_before() -> None:
    availability = Availability(
        LONDON,
        weekly=[WeeklyRange(1, T(22), T(2)), WeeklyRange(2, T(9), T(11))],
        overrides=[DateOverride(dt.date(2026, 12, 2), [])],  # Wednesday off
        slot_minutes=60,
        min_notice_minutes=0,
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-11-23 12:00"),
        expert_id="e1",
        window_start_utc=u("2026-12-01 00:00"),
        window_end_utc=u("2026-12-03 00:00"),
    )
    # Tuesday's 22:00-02:00 still runs into Wednesday; Wednesday's own 09:00-11:00 is gone.
    assert starts(slots) == [
        u("2026-12-01 22:00"),
        u("2026-12-01 23:00"),
        u("2026-12-02 00:00"),
        u("2026-12-02 01:00"),
    ]


def test_several_ranges_a_day_and_a_24_hour_range() -> None:
    availability = Availability(
        LONDON,
        weekly=[
            WeeklyRange(3, T(9), T(10, 30)),
            WeeklyRange(3, T(14), T(15)),
            WeeklyRange(4, T(6), T(6)),  # Friday 06:00 to Saturday 06:00
        ],
        slot_minutes=45,
        min_notice_minutes=0,
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-11-23 12:00"),
        expert_id="e1",
        window_start_utc=u("2026-12-03 00:00"),
        window_end_utc=u("2026-12-05 12:00"),
    )
    thursday = [u("2026-12-03 09:00"), u("2026-12-03 09:45"), u("2026-12-03 14:00")]
    friday = [u("2026-12-04 06:00") + dt.timedelta(minutes=45 * k) for k in range(32)]
    assert starts(slots) == thursday + friday
    assert friday[-1] == u("2026-12-05 05:15")


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        (None, ["09:00", "09:45"]),
        (30, ["09:00", "09:30", "10:00"]),
        (60, ["09:00", "10:00"]),
    ],
)
def test_interval_different_from_length(interval: int | None, expected: list[str]) -> None:
    availability = Availability(
        LONDON,
        weekly=[WeeklyRange(3, T(9), T(11))],
        slot_minutes=45,
        interval_minutes=interval,
        min_notice_minutes=0,
    )
    slots = free_slots(
        availability,
        [],
        [],
        now_utc=u("2026-11-23 12:00"),
        expert_id="e1",
        window_start_utc=u("2026-12-03 00:00"),
        window_end_utc=u("2026-12-04 00:00"),
    )
    assert starts(slots) == [u(f"2026-12-03 {hhmm}") for hhmm in expected]
    assert all(s.end_utc - s.start_utc == dt.timedelta(minutes=45) for s in slots)


# ------------------------------------------------------------------------------------------
# Horizon: end of the last day in the requester's zone

ROUND_THE_CLOCK = Availability(
    LONDON,
    weekly=every_day((T(0), T(0))),
    slot_minutes=15,
    min_notice_minutes=0,
    horizon_days=2,
)
HORIZON_NOW = u("2026-11-23 12:00")


@pytest.mark.parametrize(
    ("zone_name", "last_start"),
    [
        # Kathmandu: today 23 Nov, last day 25 Nov, ends 26 Nov 00:00 +05:45 = 25 Nov 18:15Z.
        (KATHMANDU, "2026-11-25 18:00"),
        # New York: ends 26 Nov 00:00 -05:00 = 26 Nov 05:00Z.
        (NEW_YORK, "2026-11-26 04:45"),
        # Kiritimati (+14) is already on 24 Nov: ends 27 Nov 00:00 +14 = 26 Nov 10:00Z.
        ("Pacific/Kiritimati", "2026-11-26 09:45"),
        # No requester zone: the expert's (London, UTC in winter).
        (None, "2026-11-25 23:45"),
    ],
)
def test_horizon_ends_at_the_end_of_the_last_day_in_the_requesters_zone(
    zone_name: str | None, last_start: str
) -> None:
    slots = free_slots(
        ROUND_THE_CLOCK, [], [], now_utc=HORIZON_NOW, expert_id="e1", horizon_timezone=zone_name
    )
    assert slots[0].start_utc == HORIZON_NOW
    assert slots[-1].start_utc == u(last_start)
    after = u(last_start) + dt.timedelta(minutes=15)
    result = is_slot_free(
        ROUND_THE_CLOCK,
        [],
        [],
        now_utc=HORIZON_NOW,
        expert_id="e1",
        start_utc=after,
        horizon_timezone=zone_name,
    )
    assert result.reason is Rejection.BEYOND_HORIZON


# ------------------------------------------------------------------------------------------
# Validation of a slot query


def problems(exc: SlotQueryInvalid) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in exc.fields]


def test_query_accepts_today_to_the_last_day_and_gives_the_window() -> None:
    query = parse_slot_query(
        "2026-11-23", "2026-11-25", KATHMANDU, now_utc=HORIZON_NOW, horizon_days=2
    )
    assert (query.from_date, query.to_date, query.timezone) == (
        dt.date(2026, 11, 23),
        dt.date(2026, 11, 25),
        KATHMANDU,
    )
    assert query.window_start_utc == u("2026-11-22 18:15")
    assert query.window_end_utc == u("2026-11-25 18:15")


@pytest.mark.parametrize(
    ("from_raw", "to_raw", "zone_raw", "fields"),
    [
        ("2026-13-01", "2026-11-24", LONDON, ["from"]),
        ("23/11/2026", "2026-11-24", LONDON, ["from"]),
        ("20261123", "2026-11-24", LONDON, ["from"]),
        ("2026-11-23", "2026-02-30", LONDON, ["to"]),
        (None, "", LONDON, ["from", "to"]),
        ("2026-11-25", "2026-11-24", LONDON, ["to"]),
        ("2026-11-23", "2026-11-26", LONDON, ["to"]),  # horizon: last day is 25 Nov
        ("2026-11-22", "2026-11-24", LONDON, ["from"]),  # before today
        ("2026-11-23", "2026-11-24", "Mars/Olympus_Mons", ["timezone"]),
        ("2026-11-23", "2026-11-24", "../../etc/passwd", ["timezone"]),
        ("2026-11-23", "2026-11-24", "America", ["timezone"]),
        ("2026-11-23", "2026-11-24", "", ["timezone"]),
        ("bad", "2026-11-24", "Nowhere/City", ["from", "timezone"]),
    ],
)
def test_query_errors_name_the_field(
    from_raw: str | None, to_raw: str | None, zone_raw: str | None, fields: list[str]
) -> None:
    with pytest.raises(SlotQueryInvalid) as caught:
        parse_slot_query(from_raw, to_raw, zone_raw, now_utc=HORIZON_NOW, horizon_days=2)
    assert isinstance(caught.value, Unprocessable)
    assert caught.value.status_code == 422
    assert [field for field, _ in problems(caught.value)] == fields


def test_query_today_and_horizon_are_the_requesters() -> None:
    # At 12:00Z on 23 Nov it is already 24 Nov in Kiritimati.
    with pytest.raises(SlotQueryInvalid) as caught:
        parse_slot_query(
            "2026-11-23", "2026-11-26", "Pacific/Kiritimati", now_utc=HORIZON_NOW, horizon_days=2
        )
    assert problems(caught.value) == [("from", "must not be before today (2026-11-24)")]
    assert caught.value.details == {"first_date": "2026-11-24", "last_date": "2026-11-26"}
    with pytest.raises(SlotQueryInvalid) as caught:
        parse_slot_query(
            "2026-11-24", "2026-11-27", "Pacific/Kiritimati", now_utc=HORIZON_NOW, horizon_days=2
        )
    assert problems(caught.value) == [("to", "beyond the booking horizon of 2 days (2026-11-26)")]


# ------------------------------------------------------------------------------------------
# Region pool

POOL_DAY = "2026-12-02"  # a Wednesday; London on GMT, Bishkek +06:00


def pool_member(
    expert_id: str, zone_name: str, start: dt.time, end: dt.time, bookings: list[Booking]
) -> PoolMember:
    availability = Availability(
        zone_name, weekly=[WeeklyRange(2, start, end)], slot_minutes=60, min_notice_minutes=0
    )
    return PoolMember(expert_id, availability, bookings, [])


def pool(members: list[PoolMember]) -> list[tuple[dt.datetime, tuple[str, ...]]]:
    slots = pool_slots(
        members,
        now_utc=u("2026-11-23 12:00"),
        window_start_utc=u(f"{POOL_DAY} 00:00"),
        window_end_utc=u("2026-12-03 00:00"),
    )
    return [(s.start_utc, tuple(str(e) for e in s.expert_ids)) for s in slots]


def test_pool_merges_the_same_instant_and_picks_the_fewest_bookings_that_day() -> None:
    members = [
        # London 09:00-11:00 = 09:00-11:00Z; one booking that day.
        pool_member(
            "a", LONDON, T(9), T(11), [Booking(u(f"{POOL_DAY} 14:00"), u(f"{POOL_DAY} 15:00"))]
        ),
        # Bishkek 15:00-17:00 = 09:00-11:00Z; none.
        pool_member("b", BISHKEK, T(15), T(17), []),
        # London 09:30-11:30: other instants.
        pool_member("c", LONDON, T(9, 30), T(11, 30), []),
    ]
    assert pool(members) == [
        (u(f"{POOL_DAY} 09:00"), ("b", "a")),
        (u(f"{POOL_DAY} 09:30"), ("c",)),
        (u(f"{POOL_DAY} 10:00"), ("b", "a")),
        (u(f"{POOL_DAY} 10:30"), ("c",)),
    ]


def test_pool_tie_goes_to_the_lower_id_and_counts_by_each_experts_local_date() -> None:
    assert pool(
        [
            pool_member("b", BISHKEK, T(15), T(16), []),
            pool_member("a", LONDON, T(9), T(10), []),
        ]
    ) == [(u(f"{POOL_DAY} 09:00"), ("a", "b"))]
    # b's booking at 20:00Z on 1 Dec is 02:00 on 2 Dec in Bishkek: it counts for the slot's day.
    assert pool(
        [
            pool_member("a", LONDON, T(9), T(10), []),
            pool_member(
                "b", BISHKEK, T(15), T(16), [Booking(u("2026-12-01 20:00"), u("2026-12-01 21:00"))]
            ),
        ]
    ) == [(u(f"{POOL_DAY} 09:00"), ("a", "b"))]
    assert pool(
        [
            pool_member(
                "a", LONDON, T(9), T(10), [Booking(u("2026-12-01 20:00"), u("2026-12-01 21:00"))]
            ),
            pool_member("b", BISHKEK, T(15), T(16), []),
        ]
    ) == [(u(f"{POOL_DAY} 09:00"), ("a", "b"))]


def test_pool_recheck_at_booking_time() -> None:
    a = pool_member("a", LONDON, T(9), T(10), [])
    b = pool_member("b", BISHKEK, T(15), T(16), [])
    start = u(f"{POOL_DAY} 09:00")
    result = check_pool_slot([b, a], now_utc=u("2026-11-23 12:00"), start_utc=start)
    assert result.expert_ids == ("a", "b") and result.expert_id == "a"
    # Plain tuples do as well as PoolMember.
    as_tuples = check_pool_slot(
        [tuple(b), tuple(a)], now_utc=u("2026-11-23 12:00"), start_utc=start
    )
    assert as_tuples.expert_ids == ("a", "b")
    # Someone booked a meanwhile.
    a_booked = a._replace(bookings=[Booking(start, start + dt.timedelta(hours=1))])
    result = check_pool_slot([b, a_booked], now_utc=u("2026-11-23 12:00"), start_utc=start)
    assert result.expert_ids == ("b",)
    assert result.reasons == {"a": Rejection.CONFLICT}
    wrong_end = check_pool_slot(
        [a],
        now_utc=u("2026-11-23 12:00"),
        start_utc=start,
        end_utc=start + dt.timedelta(minutes=45),
    )
    assert not wrong_end and wrong_end.reasons == {"a": Rejection.NOT_OFFERED}


def test_requester_view_lists_every_date_and_drops_slots_outside() -> None:
    slots = [
        Slot(u("2026-12-01 23:00"), u("2026-12-02 00:00"), "e1"),
        Slot(u("2026-12-02 09:00"), u("2026-12-02 10:00"), "e1"),
        Slot(u("2026-12-05 09:00"), u("2026-12-05 10:00"), "e1"),
    ]
    view = requester_view(slots, BISHKEK, dt.date(2026, 12, 2), dt.date(2026, 12, 4))
    assert [(d.date.isoformat(), [s.start_local for s in d.slots]) for d in view] == [
        ("2026-12-02", ["2026-12-02T05:00:00+06:00", "2026-12-02T15:00:00+06:00"]),
        ("2026-12-03", []),
        ("2026-12-04", []),
    ]
    entry = view[0].slots[0]
    assert entry.start_utc == "2026-12-01T23:00:00+00:00"
    assert entry.end_utc == "2026-12-02T00:00:00+00:00"
    assert entry.end_local == "2026-12-02T06:00:00+06:00"
    assert entry.expert_ids == ("e1",)


def test_not_on_the_grid_is_not_offered() -> None:
    result = is_slot_free(
        EXPERT, [], [], now_utc=NOW, expert_id="e1", start_utc=u("2026-12-02 17:30")
    )
    assert result.reason is Rejection.NOT_OFFERED and result.slot is None
    fraction = is_slot_free(
        EXPERT,
        [],
        [],
        now_utc=NOW,
        expert_id="e1",
        start_utc=u("2026-12-02 17:00") + dt.timedelta(microseconds=1),
    )
    assert fraction.reason is Rejection.NOT_OFFERED
    ok = is_slot_free(EXPERT, [], [], now_utc=NOW, expert_id="e1", start_utc=u("2026-12-02 17:00"))
    assert ok and ok.slot == Slot(u("2026-12-02 17:00"), u("2026-12-02 18:00"), "e1")


# ------------------------------------------------------------------------------------------
# Property: the listing agrees with an independent, slow reading of the rules, and the booking
# re-check agrees with the listing for every start.


def _exists(naive: dt.datetime, tz: ZoneInfo) -> bool:
    back = naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return back == naive


def _instants(naive: dt.datetime, tz: ZoneInfo) -> list[dt.datetime]:
    if not _exists(naive, tz):
        return []
    return sorted({naive.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1)})


def _boundary(naive: dt.datetime, tz: ZoneInfo, *, latest: bool) -> dt.datetime:
    found = _instants(naive, tz)
    if found:
        return found[-1] if latest else found[0]
    probe = naive
    while not _exists(probe, tz):  # walk out of the skipped hour, a minute at a time
        probe += dt.timedelta(minutes=1)
    return _instants(probe, tz)[0]


def oracle(
    availability: Availability,
    bookings: list[Booking],
    unavailable: list[UnavailablePeriod],
    now: dt.datetime,
    window: tuple[dt.datetime, dt.datetime],
    horizon_zone: str,
) -> tuple[list[tuple[dt.datetime, dt.datetime]], list[dt.datetime]]:
    """(the free slots, every candidate start on the grid whether free or not)"""
    tz = ZoneInfo(availability.timezone)
    length = dt.timedelta(minutes=availability.slot_minutes)
    step = dt.timedelta(minutes=availability.interval_minutes or availability.slot_minutes)
    before = dt.timedelta(minutes=availability.buffer_before_minutes)
    after = dt.timedelta(minutes=availability.buffer_after_minutes)
    htz = ZoneInfo(horizon_zone)
    last_day = now.astimezone(htz).date() + dt.timedelta(days=availability.horizon_days)
    horizon = _boundary(
        dt.datetime.combine(last_day + dt.timedelta(days=1), T(0)), htz, latest=False
    )
    overrides = {o.date: list(o.ranges) for o in availability.overrides}
    found: dict[dt.datetime, dt.date] = {}
    day = window[0].astimezone(tz).date() - dt.timedelta(days=2)
    while day <= window[1].astimezone(tz).date() + dt.timedelta(days=1):
        if day in overrides:
            ranges = overrides[day]
        else:
            ranges = [(w.start, w.end) for w in availability.weekly if w.weekday == day.weekday()]
        for start, end in ranges:
            local_start = dt.datetime.combine(day, start)
            local_end = dt.datetime.combine(day + dt.timedelta(days=int(end <= start)), end)
            range_start = _boundary(local_start, tz, latest=False)
            range_end = _boundary(local_end, tz, latest=True)
            wall = local_start
            while wall < local_end + dt.timedelta(hours=3):
                for instant in _instants(wall, tz):
                    if range_start <= instant and instant + length <= range_end:
                        found.setdefault(instant, wall.date())
                wall += step
        day += dt.timedelta(days=1)
    result = []
    for instant, local_date in sorted(found.items()):
        end = instant + length
        if not (window[0] <= instant < window[1]):
            continue
        if instant < now + dt.timedelta(minutes=availability.min_notice_minutes):
            continue
        if instant >= horizon:
            continue
        cap = availability.max_per_day
        if cap is not None:
            same_day = [b for b in bookings if b.start.astimezone(tz).date() == local_date]
            if len(same_day) >= cap:
                continue
        if any(instant < p.end and end > p.start for p in unavailable):
            continue
        if any(
            (instant < b.end + after and end > b.start - before)
            or (instant - before < b.end and end + after > b.start)
            for b in bookings
        ):
            continue
        result.append((instant, end))
    return result, sorted(found)


ZONES = st.sampled_from([LONDON, NEW_YORK, BISHKEK, LORD_HOWE, KATHMANDU])
CHANGE_DAYS = st.sampled_from(
    [
        u("2026-03-08 00:00"),
        u("2026-03-29 00:00"),
        u("2026-04-05 00:00"),
        u("2026-10-04 00:00"),
        u("2026-10-25 00:00"),
        u("2026-11-01 00:00"),
        u("2026-06-10 00:00"),
    ]
)
QUARTERS = st.integers(min_value=0, max_value=95).map(lambda q: T(q // 4, 15 * (q % 4)))


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    anchor = draw(CHANGE_DAYS)
    window_start = anchor + dt.timedelta(minutes=15 * draw(st.integers(-96, 96)))
    window_end = window_start + dt.timedelta(minutes=15 * draw(st.integers(24, 3 * 96)))
    now = window_start - dt.timedelta(minutes=5 * draw(st.integers(-24, 12 * 12)))
    zone_name = draw(ZONES)
    local_anchor = anchor.astimezone(ZoneInfo(zone_name)).date()
    # Weekdays near the clock change (shrinking towards its day), so most cases have hours.
    weekdays = st.integers(-1, 2).map(lambda d: (local_anchor.weekday() + d) % 7)
    weekly = draw(
        st.lists(st.builds(WeeklyRange, weekdays, QUARTERS, QUARTERS), min_size=1, max_size=12)
    )
    overrides = draw(
        st.lists(
            st.builds(
                DateOverride,
                st.integers(-2, 3).map(lambda d: local_anchor + dt.timedelta(days=d)),
                st.lists(st.tuples(QUARTERS, QUARTERS), max_size=2),
            ),
            max_size=2,
            unique_by=lambda o: o.date,
        )
    )
    availability = Availability(
        zone_name,
        weekly=weekly,
        overrides=overrides,
        slot_minutes=draw(st.sampled_from([15, 30, 45, 60, 90])),
        interval_minutes=draw(st.sampled_from([None, 10, 15, 30, 60])),
        buffer_before_minutes=draw(st.sampled_from([0, 5, 10, 15, 30])),
        buffer_after_minutes=draw(st.sampled_from([0, 5, 10, 15, 30])),
        min_notice_minutes=draw(st.sampled_from([0, 30, 120])),
        horizon_days=draw(st.one_of(st.integers(2, 6), st.integers(0, 1))),
        max_per_day=draw(st.sampled_from([None, 2, 1, 3, 0])),
    )

    def interval() -> st.SearchStrategy[tuple[dt.datetime, dt.datetime]]:
        return st.tuples(st.integers(-12 * 12, 3 * 24 * 12), st.integers(1, 36)).map(
            lambda p: (
                window_start + dt.timedelta(minutes=5 * p[0]),
                window_start + dt.timedelta(minutes=5 * (p[0] + p[1])),
            )
        )

    bookings = [Booking(s, e) for s, e in draw(st.lists(interval(), max_size=12))]
    unavailable = [UnavailablePeriod(s, e) for s, e in draw(st.lists(interval(), max_size=3))]
    return {
        "availability": availability,
        "bookings": bookings,
        "unavailable": unavailable,
        "now": now,
        "window": (window_start, window_end),
        "horizon_zone": draw(ZONES),
    }


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_listing_matches_the_rules_and_the_recheck_agrees(scenario: dict[str, object]) -> None:
    availability = scenario["availability"]
    bookings = scenario["bookings"]
    unavailable = scenario["unavailable"]
    now = scenario["now"]
    window = scenario["window"]
    horizon_zone = scenario["horizon_zone"]
    assert isinstance(availability, Availability)
    assert isinstance(bookings, list) and isinstance(unavailable, list)
    assert isinstance(now, dt.datetime) and isinstance(window, tuple)
    assert isinstance(horizon_zone, str)
    inputs = {
        "now_utc": now,
        "expert_id": "e1",
        "window_start_utc": window[0],
        "window_end_utc": window[1],
        "horizon_timezone": horizon_zone,
    }
    listed = free_slots(availability, bookings, unavailable, **inputs)
    expected, candidates = oracle(availability, bookings, unavailable, now, window, horizon_zone)
    assert [(s.start_utc, s.end_utc) for s in listed] == expected
    listed_starts = {s.start_utc for s in listed}
    # Every grid candidate (free or not) and every quarter of an hour around the window.
    probes = set(candidates)
    probe = window[0] - dt.timedelta(hours=1)
    while probe < window[1] + dt.timedelta(hours=1):
        probes.add(probe)
        probe += dt.timedelta(minutes=15)
    for probe in sorted(probes):
        result = is_slot_free(availability, bookings, unavailable, start_utc=probe, **inputs)
        assert result.free == (probe in listed_starts), (probe, result.reason)
        if result.free:
            assert result.slot is not None
            assert result.slot.end_utc - probe == dt.timedelta(minutes=availability.slot_minutes)
