"""The public pages' message catalogs: complete, marked for review, compiled, up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from app.web.i18n import LANGUAGES, LOCALE_DIR

ROOT = Path(__file__).resolve().parents[2]
REVIEW = "needs review by a native speaker"


def _po(lang: str):  # type: ignore[no-untyped-def]
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=lang)


def test_the_template_lists_every_text_of_the_sources(tmp_path: Path) -> None:
    """A text added to a page or public.py without re-extracting fails here."""
    out = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(
        [
            str(pybabel),
            "-q",
            "extract",
            "-F",
            "app/web/babel.cfg",
            "-k",
            "N_",
            "-k",
            "t",
            "-k",
            "tr:2",
            "--no-location",
            "-o",
            str(out),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    with open(out, "rb") as fresh_fh, open(LOCALE_DIR / "messages.pot", "rb") as fh:
        fresh = {m.id for m in read_po(fresh_fh) if m.id}
        stored = {m.id for m in read_po(fh) if m.id}
    assert fresh == stored, {"new": fresh - stored, "gone": stored - fresh}
    for lang in LANGUAGES:
        assert {m.id for m in _po(lang) if m.id} == stored, lang


@pytest.mark.parametrize("lang", ["ru", "es", "ar"])
def test_every_text_is_translated_marked_for_review_and_compiled(lang: str) -> None:
    po = _po(lang)
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.mo", "rb") as fh:
        mo = read_mo(fh)
    for message in po:
        if not message.id:
            continue
        assert message.string, (lang, message.id)
        assert not message.fuzzy, (lang, message.id)
        assert REVIEW in message.user_comments, (lang, message.id)
        compiled = mo.get(message.id)
        assert compiled is not None and compiled.string == message.string, (lang, message.id)
        if "%(" in message.id:  # the same placeholders
            import re

            names = set(re.findall(r"%\((\w+)\)s", message.id))
            assert names == set(re.findall(r"%\((\w+)\)s", message.string)), message.id
