"""Extract, update, compile and check the page catalogs (run from anywhere).

    .venv/bin/python app/web/locale/catalogs.py            # extract + update + compile + check
    .venv/bin/python app/web/locale/catalogs.py check      # only list what is missing

Extraction reads every page module ``app/web/*.py`` and every template under
``app/web/templates/`` (``app/web/babel.cfg``) with the keywords below. ``update`` merges the new
template into the en/ru/es/ar catalogs; a new or changed text comes in empty (no fuzzy guesses)
and counts as missing, as does one a translator flags fuzzy. ``check`` lists,
per language, every text that is missing, empty or fuzzy, and exits 1 if there is one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent
ROOT = LOCALE_DIR.parents[2]
CONFIG = LOCALE_DIR.parent / "babel.cfg"
TEMPLATE = LOCALE_DIR / "messages.pot"
# Python: N_() marks a text for later (pN_(context, text) one whose English has two meanings),
# t() is a page's translator, tr(lang, text) translates.
# Templates: _(), gettext(), ngettext(), pgettext() and {% trans %} (Babel's defaults).
KEYWORDS = ("N_", "pN_:1c,2", "t", "tr:2")
TRANSLATED = ("ru", "es", "ar")
WIDTH = "100"


def _pybabel(*args: str) -> None:
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), "-q", *args], cwd=ROOT, check=True)


def extract(out: Path = TEMPLATE) -> None:
    keywords = [arg for k in KEYWORDS for arg in ("-k", k)]
    _pybabel(
        "extract", "-F", str(CONFIG), *keywords, "--no-location", "-w", WIDTH, "-o", str(out), "."
    )


def update() -> None:
    # No fuzzy matching: a guess from a similar text would only mislead (and may carry another
    # text's placeholders); a new or changed text comes in empty.
    _pybabel(
        "update",
        "-i",
        str(TEMPLATE),
        "-d",
        str(LOCALE_DIR),
        "-w",
        WIDTH,
        "--ignore-obsolete",
        "--no-fuzzy-matching",
    )


def compile_all() -> None:
    _pybabel("compile", "-d", str(LOCALE_DIR))


def missing(lang: str) -> list[str]:
    """The template's texts that ``lang`` lacks, leaves empty or has only fuzzy."""
    from babel.messages.pofile import read_po

    with open(TEMPLATE, "rb") as fh:
        wanted = [(m.id, m.context) for m in read_po(fh) if m.id]
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        catalog = read_po(fh, locale=lang)
    out: list[str] = []
    for msgid, context in wanted:
        key = msgid if isinstance(msgid, str) else msgid[0]
        message = catalog.get(key, context=context)
        strings = message.string if message is not None else ""
        filled = all(strings) if isinstance(strings, tuple) else bool(strings)
        if message is None or message.fuzzy or not filled:
            out.append(key if context is None else f"{key} [{context}]")
    return out


def check() -> int:
    bad = 0
    for lang in TRANSLATED:
        for msgid in missing(lang):
            bad += 1
            print(f"{lang}: {msgid!r}")
    print(f"{bad} missing", file=sys.stderr)
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:
        return check()
    extract()
    update()
    compile_all()
    return check()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
