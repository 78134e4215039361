"""Languages of the pages (public, staff, expert and admin alike): gettext catalogs (Babel) and
one Jinja2 environment each.

Catalogs live in ``app/web/locale/<lang>/LC_MESSAGES/messages.po`` with the compiled ``.mo``
beside them (committed; ``tests/web/test_web_i18n.py`` checks that they list every marked text,
that ru/es/ar translate each one and that the ``.mo`` match). Texts are marked with ``_()`` and
``ngettext()`` in templates, ``N_()`` in page modules (``t()``/``tr()`` in the public ones);
``app/web/babel.cfg`` reads every ``app/web/*.py`` and every template. After changing texts::

    .venv/bin/python app/web/locale/catalogs.py        # extract, update, compile, list the missing
    # translate what it lists in the ru/es/ar messages.po (no fuzzy flag), then run it again
    .venv/bin/python app/web/locale/catalogs.py check  # only the list

Texts written by the project carry the translator comment "needs review by a native speaker".
"""

from __future__ import annotations

import datetime as dt
import gettext
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale
from babel.support import Translations
from markupsafe import Markup

from app.notifications.facts import TimeForm, local_time, zone_of
from app.web import bidi

LOCALE_DIR = Path(__file__).parent / "locale"
TEMPLATE_DIR = Path(__file__).parent / "templates"
DEFAULT = "en"


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # in the language itself
    rtl: bool = False

    @property
    def dir(self) -> str:
        return "rtl" if self.rtl else "ltr"


LANGUAGES: dict[str, Language] = {
    "en": Language("en", "English"),
    "ru": Language("ru", "Русский"),
    "es": Language("es", "Español"),
    "ar": Language("ar", "العربية", rtl=True),
}


def _parse_accept_language(header: str) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for part in header.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag:
            out.append((tag.strip().lower(), q))
    return sorted(out, key=lambda item: -item[1])


def negotiate(chosen: str | None, accept_language: str | None, fallback: str | None = None) -> str:
    """The URL's choice (``?lang=``) if supported, else ``fallback`` (e.g. the language a
    request was made in), else the best of Accept-Language, else English."""
    for candidate in (chosen, fallback):
        if candidate:
            base = candidate.strip().lower().split("-")[0]
            if base in LANGUAGES:
                return base
    for tag, q in _parse_accept_language(accept_language or ""):
        base = tag.split("-")[0]
        if q > 0 and base in LANGUAGES:
            return base
    return DEFAULT


def N_(text: str) -> str:
    """Marks a text of a page module for the catalogs; ``page()`` translates it when shown."""
    return text


def pN_(context: str, text: str) -> str:
    """``N_()`` for a text whose English has two meanings ("Open": a verb, or a rating): the
    catalogs keep it apart by ``context``; a template shows it with
    ``pgettext(context, text)``."""
    return text


@dataclass(frozen=True)
class Text:
    """A page module's text with values (a title, a flash, a field error), marked with
    ``N_()``: ``page()`` translates ``msgid`` into the viewer's language, then fills in the
    values, so "Case %(reference)s" becomes "Дело K7M-4QX-2P"."""

    msgid: str
    values: Mapping[str, object]

    def translated(self, gettext: Callable[[str], str]) -> str:
        return gettext(self.msgid) % dict(self.values)

    def __str__(self) -> str:
        return self.msgid % dict(self.values)


def filled(msgid: str, **values: object) -> Text:
    """``filled(N_("Case %(reference)s"), reference=req.reference)``."""
    return Text(msgid, values)


# Times on the desk pages, in the viewer's zone and language ---------------------------------
# ``page()`` (app/web/auth.py) puts ``viewer_zone`` and ``lang`` in every desk page's context;
# the page names the zone once (base.html), so a time stands alone: "Sun 28 Mar 2027, 06:30".


@jinja2.pass_context
def _local(ctx: Any, value: dt.datetime | None, form: TimeForm = "datetime") -> Markup:
    """``{{ when|local }}`` (or ``|local("time")``, ``"date"``, ``"seconds"``): isolated, so a
    right-to-left page keeps it whole."""
    if value is None:
        return Markup("—")
    lang = ctx.get("lang")
    return bidi.bdi(
        local_time(value, ctx.get("viewer_zone", "UTC"), getattr(lang, "code", DEFAULT), form)
    )


def local_input_value(value: dt.datetime | None, zone: str) -> str:
    """A ``datetime-local`` input's value: the instant as wall-clock time in ``zone``."""
    if value is None:
        return ""
    return value.astimezone(zone_of(zone)).strftime("%Y-%m-%dT%H:%M")


def from_local_input(text: str, zone: str) -> dt.datetime:
    """What a ``datetime-local`` input sent, read as wall-clock time in ``zone``, as aware UTC.
    A time the clocks skip is read with the offset before the change; a repeated hour means
    its first occurrence. Raises ``ValueError`` when it is not a date and time."""
    naive = dt.datetime.fromisoformat(text.strip())
    if naive.tzinfo is not None:
        raise ValueError("a local date and time without an offset")
    return naive.replace(tzinfo=zone_of(zone)).astimezone(dt.UTC)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    if lang == DEFAULT:
        return gettext.NullTranslations()
    return Translations.load(str(LOCALE_DIR), [lang], domain="messages")


@cache
def environment(lang: str) -> jinja2.Environment:
    """One environment per language (thread-safe: translations are installed once)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(bidi.FILTERS)
    env.filters["local"] = _local
    return env


def gettext_for(lang: str) -> gettext.NullTranslations:
    return translations(lang)


@cache
def country_names(lang: str) -> list[tuple[str, str]]:
    """(code, name in ``lang``) for every code the API accepts, sorted by name."""
    from app.reference.service import iso_countries

    locale = Locale.parse(lang)
    names = [
        (code, locale.territories.get(code, english)) for code, english in iso_countries().items()
    ]
    return sorted(names, key=lambda item: item[1].casefold())


REQUEST_LANGUAGES = ("en", "ru", "es", "ar", "fr", "uk", "fa", "ps", "tr", "ur", "zh", "ti", "so")


@cache
def language_names(lang: str) -> list[tuple[str, str]]:
    """Languages a requester may ask to be answered in, named in ``lang``."""
    locale = Locale.parse(lang)
    return [(code, locale.languages.get(code, code)) for code in REQUEST_LANGUAGES]
