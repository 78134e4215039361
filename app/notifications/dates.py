# ruff: noqa: RUF001, RUF002, RUF003 - Russian and Arabic words and the en dash on purpose
"""Dates and times for requesters, in words, in their language and zone (Babel's CLDR data).

One place for every page and e-mail a requester reads: "Sunday 6 December 2026 at 01:11
(Berlin time)", "воскресенье, 6 декабря 2026 г. в 01:11 (часовой пояс: Берлин)",
"domingo, 6 de diciembre de 2026, 1:11 (hora de Berlín)", "الأحد، 6 ديسمبر 2026 الساعة 1:11 ص
(توقيت برلين)". Instants stay aware UTC everywhere else; they are converted here, at the edge.

The zone is named by its city in the reader's language, not by its IANA identifier. A wall-clock
time that happens twice (the hour the clocks go back) also carries its UTC offset, so the two
are told apart: "02:30 (Berlin time, UTC+02:00)".

Babel 2.x has no "at" form of the date-and-time pattern and keeps Russian's daylight region
format ("{0}, летнее время") as the generic one, so the words around the parts are ours
(``JOIN``, ``ZONE``); the date, the time and the city are CLDR's.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache

from babel import Locale
from babel.core import get_global
from babel.dates import format_date, format_time

# The CLDR locale each language formats with (British English: 24-hour clock, day first).
LOCALES = {"en": "en_GB", "ru": "ru", "es": "es", "ar": "ar"}
# The date pattern: CLDR's full date, except English's without commas (GOV.UK style).
DATE_PATTERNS = {"en": "EEEE d MMMM y"}
# A date and a time: "{date} at {time}".
JOIN = {
    "en": "{date} at {time}",
    "ru": "{date} в {time}",
    "es": "{date}, {time}",
    "ar": "{date} الساعة {time}",
}
# A date and a span of time: "{date}, {start}–{end}".
SPAN = {"en": "{date}, {start}–{end}", "ar": "{date}، {start}–{end}"}
# The zone, by its city.
ZONE = {
    "en": "{city} time",
    "ru": "часовой пояс: {city}",
    "es": "hora de {city}",
    "ar": "توقيت {city}",
}
UTC_NAMES = {"UTC", "Etc/UTC", "Etc/UCT", "Etc/Zulu", "UCT", "Zulu", "Universal", "Etc/Universal"}


def language(lang: str | None) -> str:
    """The language whose words are used: the tag's primary language if known, else English."""
    primary = (lang or "en").split("-", 1)[0].split("_", 1)[0].lower()
    return primary if primary in LOCALES else "en"


def zone_of(name: str) -> zoneinfo.ZoneInfo:
    """The zone, or UTC for a name this machine does not know (never an error in a page or an
    e-mail; zones are validated when saved)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _local(moment: dt.datetime, zone: str) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("an aware instant is needed (UTC inside, converted only here)")
    return moment.astimezone(zone_of(zone))


@cache
def _old_names() -> dict[str, str]:
    """CLDR keys its city names by the older identifiers (Asia/Calcutta for Asia/Kolkata)."""
    return {new: old for old, new in get_global("zone_aliases").items()}


@cache
def city(zone: str, lang: str) -> str:
    """The zone's city in ``lang``: "Berlin", "Берлин", "Berlín", "برلين"."""
    locale = Locale.parse(LOCALES[language(lang)])
    for key in (zone, _old_names().get(zone, zone)):
        names = locale.time_zones.get(key)
        found = names.get("city") if names is not None else None
        if found:
            return str(found)
    english = Locale.parse("en").time_zones.get(_old_names().get(zone, zone))
    if english is not None and english.get("city"):
        return str(english["city"])
    return zone.rsplit("/", 1)[-1].replace("_", " ")


def _offset(local: dt.datetime) -> str:
    raw = local.strftime("%z") or "+0000"
    return f"UTC{raw[:3]}:{raw[3:]}"


def _repeated(local: dt.datetime) -> bool:
    """This wall-clock time happens twice in its zone (the hour the clocks go back)."""
    other = local.replace(fold=1 - local.fold)
    return other.utcoffset() != local.utcoffset()


def zone_in_words(zone: str, lang: str, at: dt.datetime | None = None) -> str:
    """ "Berlin time"; with ``at`` in a repeated hour: "Berlin time, UTC+02:00"."""
    lang = language(lang)
    words = "UTC" if zone in UTC_NAMES else ZONE[lang].format(city=city(zone, lang))
    if at is not None:
        local = _local(at, zone)
        if _repeated(local):
            words += f", {_offset(local)}"
    return words


def date_in_words(day: dt.date, lang: str) -> str:
    """A local date: "Sunday 6 December 2026" (in ``lang``)."""
    lang = language(lang)
    pattern = DATE_PATTERNS.get(lang, "full")
    return str(format_date(day, format=pattern, locale=LOCALES[lang]))


def day_in_words(moment: dt.datetime, zone: str, lang: str) -> str:
    """The local date of an instant in ``zone``: "Sunday 6 December 2026"."""
    return date_in_words(_local(moment, zone).date(), lang)


def time_in_words(moment: dt.datetime, zone: str, lang: str) -> str:
    """The wall-clock time of an instant in ``zone``, as ``lang`` writes it: "01:11", "1:11 ص"."""
    local = _local(moment, zone)
    naive = local.replace(tzinfo=None)
    return str(format_time(naive, format="short", locale=LOCALES[language(lang)]))


def when_in_words(moment: dt.datetime, zone: str, lang: str) -> str:
    """ "Sunday 6 December 2026 at 01:11 (Berlin time)", in ``lang`` and ``zone``."""
    lang = language(lang)
    text = JOIN[lang].format(
        date=day_in_words(moment, zone, lang), time=time_in_words(moment, zone, lang)
    )
    return f"{text} ({zone_in_words(zone, lang, moment)})"


def span_in_words(start: dt.datetime, end: dt.datetime, zone: str, lang: str) -> str:
    """A consultation: "Sunday 6 December 2026, 01:11–01:56 (Berlin time)"."""
    lang = language(lang)
    text = SPAN.get(lang, SPAN["en"]).format(
        date=day_in_words(start, zone, lang),
        start=time_in_words(start, zone, lang),
        end=time_in_words(end, zone, lang),
    )
    return f"{text} ({zone_in_words(zone, lang, start)})"
