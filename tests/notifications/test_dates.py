"""Dates and times in words (``app/notifications/dates.py``): each language, the zone named by
its city, around the clocks going forward and back (Berlin, spring 2027 and autumn 2026), the
hour that happens twice told apart by its offset, and aware instants only."""

from __future__ import annotations

import datetime as dt

import pytest

from app.notifications import dates

UTC = dt.UTC
BERLIN = "Europe/Berlin"
WINTER = dt.datetime(2026, 12, 6, 0, 11, tzinfo=UTC)  # 01:11 in Berlin (UTC+1)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "Sunday 6 December 2026 at 01:11 (Berlin time)"),
        ("ru", "воскресенье, 6 декабря 2026\u202fг. в 01:11 (часовой пояс: Берлин)"),  # noqa: RUF001
        ("es", "domingo, 6 de diciembre de 2026, 1:11 (hora de Berlín)"),
        ("ar", "الأحد، 6 ديسمبر 2026 الساعة 1:11 ص (توقيت برلين)"),
        ("ru-RU", "воскресенье, 6 декабря 2026\u202fг. в 01:11 (часовой пояс: Берлин)"),  # noqa: RUF001
        ("fa", "Sunday 6 December 2026 at 01:11 (Berlin time)"),  # no words of its own: English
    ],
)
def test_a_moment_in_words_in_each_language(lang: str, expected: str) -> None:
    assert dates.when_in_words(WINTER, BERLIN, lang) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # The clocks go forward at 01:00 UTC on 28 March 2027: 01:59 CET, then 03:00 CEST.
        (
            dt.datetime(2027, 3, 28, 0, 59, tzinfo=UTC),
            "Sunday 28 March 2027 at 01:59 (Berlin time)",
        ),
        (dt.datetime(2027, 3, 28, 1, 0, tzinfo=UTC), "Sunday 28 March 2027 at 03:00 (Berlin time)"),
        # They go back at 01:00 UTC on 25 October 2026: 02:30 happens twice.
        (
            dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            "Sunday 25 October 2026 at 02:30 (Berlin time, UTC+02:00)",
        ),
        (
            dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            "Sunday 25 October 2026 at 02:30 (Berlin time, UTC+01:00)",
        ),
        (
            dt.datetime(2026, 10, 25, 2, 30, tzinfo=UTC),
            "Sunday 25 October 2026 at 03:30 (Berlin time)",
        ),
    ],
)
def test_around_the_clock_changes(moment: dt.datetime, expected: str) -> None:
    assert dates.when_in_words(moment, BERLIN, "en") == expected


def test_the_repeated_hour_in_arabic_and_a_span_across_it() -> None:
    first = dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert dates.when_in_words(first, BERLIN, "ar").endswith("(توقيت برلين, UTC+02:00)")
    span = dates.span_in_words(first, first + dt.timedelta(minutes=60), BERLIN, "en")
    assert span == "Sunday 25 October 2026, 02:30\u201302:30 (Berlin time, UTC+02:00)"


@pytest.mark.parametrize(
    ("zone", "lang", "expected"),
    [
        ("Asia/Kolkata", "ru", "часовой пояс: Калькутта"),  # CLDR keys it as Asia/Calcutta
        ("Europe/Kyiv", "es", "hora de Kyiv"),
        ("America/Mexico_City", "ar", "توقيت مكسيكو سيتي"),
        ("UTC", "en", "UTC"),
        ("Not/AZone", "en", "AZone time"),
    ],
)
def test_zones_are_named_by_their_city(zone: str, lang: str, expected: str) -> None:
    assert dates.zone_in_words(zone, lang) == expected


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        dates.when_in_words(dt.datetime(2026, 12, 6, 0, 11), BERLIN, "en")
