"""Counting Zoom meeting writes per host per UTC day (pure logic)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from app.meetings.quota import (
    DailyMeetingQuota,
    InMemoryUsageStore,
    seconds_until_reset,
    usage_day,
)


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def test_nearing_cap_from_80_and_at_cap_at_100() -> None:
    quota = DailyMeetingQuota(
        InMemoryUsageStore(), clock=Clock(dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC))
    )
    statuses = [quota.record("expert@example.org") for _ in range(100)]
    assert [s.count for s in statuses] == list(range(1, 101))
    assert statuses[78].nearing_cap is False  # 79
    assert statuses[79].nearing_cap is True  # 80
    assert statuses[98].at_cap is False and statuses[98].remaining == 1
    assert statuses[99].at_cap is True and statuses[99].remaining == 0
    assert quota.status("expert@example.org").count == 100
    assert quota.status("other@example.org").count == 0


def test_the_day_turns_at_midnight_utc_not_local_time() -> None:
    clock = Clock(dt.datetime(2026, 11, 23, 23, 59, 59, tzinfo=dt.UTC))
    quota = DailyMeetingQuota(InMemoryUsageStore(), clock=clock)
    quota.record("expert@example.org")
    quota.record("expert@example.org")
    # 00:30 in Berlin on the 24th is still the 23rd in UTC.
    clock.at = dt.datetime(2026, 11, 24, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert quota.status("expert@example.org").count == 2
    clock.at = dt.datetime(2026, 11, 24, 0, 0, tzinfo=dt.UTC)
    assert quota.status("expert@example.org").count == 0
    assert quota.record("expert@example.org").day == dt.date(2026, 11, 24)


def test_hosts_are_counted_case_insensitively() -> None:
    quota = DailyMeetingQuota(
        InMemoryUsageStore(), clock=Clock(dt.datetime(2026, 11, 23, tzinfo=dt.UTC))
    )
    quota.record("Expert@Example.org")
    quota.record(" expert@example.org ")
    assert quota.status("EXPERT@EXAMPLE.ORG").count == 2


def test_seconds_until_reset_and_usage_day() -> None:
    at = dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.UTC)
    assert seconds_until_reset(at) == 3600
    assert usage_day(
        dt.datetime(2026, 11, 24, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    ) == dt.date(2026, 11, 23)
    with pytest.raises(ValueError):
        usage_day(dt.datetime(2026, 11, 23))


def test_the_in_memory_store_counts_concurrent_writes() -> None:
    store = InMemoryUsageStore()
    quota = DailyMeetingQuota(store, clock=Clock(dt.datetime(2026, 11, 23, tzinfo=dt.UTC)))

    def work() -> None:
        for _ in range(50):
            quota.record("expert@example.org")

    threads = [threading.Thread(target=work) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert quota.status("expert@example.org").count == 1000


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError):
        DailyMeetingQuota(InMemoryUsageStore(), limit=100, warn_at=101)
