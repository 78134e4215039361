"""Languages of the public pages: gettext catalogs (Babel) and one Jinja2 environment each.

Catalogs live in ``app/web/locale/<lang>/LC_MESSAGES/messages.po`` with the compiled ``.mo``
beside them (committed; ``tests/web/test_web_i18n.py`` checks that they match). To change texts::

    .venv/bin/pybabel extract -F app/web/babel.cfg -o app/web/locale/messages.pot app/web
    .venv/bin/pybabel update -i app/web/locale/messages.pot -d app/web/locale
    .venv/bin/pybabel compile -d app/web/locale

Texts written by the project carry the translator comment "needs review by a native speaker".
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2
from babel import Locale
from babel.support import Translations

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
