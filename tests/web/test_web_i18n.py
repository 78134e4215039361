"""The pages' message catalogs (public, staff, expert and admin pages alike): every marked text
extracted, translated in ru/es/ar (not fuzzy, not empty), marked for review, with the same
placeholders, compiled, and shown in the signed-in person's language."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.util import pathmatch
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Role, UserLanguage
from app.reports import svg
from app.web import i18n
from app.web.i18n import LANGUAGES, LOCALE_DIR
from app.web.locale import catalogs
from tests.factories import create_expert, create_user, signed_in, submit, title_of

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "app" / "web"
REVIEW = "needs review by a native speaker"
TRANSLATED = ("ru", "es", "ar")
# %(name)s / %(num)d (gettext) and {name} (literal braces some texts show, e.g. API paths).
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|\{(\w+)\}")


def _po(lang: str) -> Catalog:
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=lang)


def _pot(path: Path = LOCALE_DIR / "messages.pot") -> Catalog:
    with open(path, "rb") as fh:
        return read_po(fh)


def _ids(catalog: Any) -> set[tuple[str, str | None]]:
    """Each text with its context: "Open" (a verb) and "Open" (a rating) are two texts."""
    return {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in catalog if m.id}


def _texts(value: object) -> list[str]:
    """A message's id or string as a list (one text, or the plural forms)."""
    return [str(v) for v in value] if isinstance(value, (tuple, list)) else [str(value or "")]


def _placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def test_the_extraction_reads_every_page_module_and_every_template() -> None:
    """A page module or template left out of babel.cfg would keep its texts English."""
    with open(WEB / "babel.cfg", encoding="utf-8") as fh:
        method_map, _options = parse_mapping_cfg(fh)  # type: ignore[no-untyped-call]
    sources = [*WEB.glob("*.py"), *(WEB / "templates").rglob("*.html")]
    assert len(sources) > 40
    for path in sources:
        relative = path.relative_to(ROOT).as_posix()
        assert any(pathmatch(pattern, relative) for pattern, _method in method_map), relative


def test_the_catalogs_list_every_text_marked_in_the_pages(tmp_path: Path) -> None:
    """A text added to a page module or a template without re-extracting fails here: run
    ``.venv/bin/python app/web/locale/catalogs.py``."""
    fresh_path = tmp_path / "messages.pot"
    catalogs.extract(fresh_path)
    fresh, stored = _ids(_pot(fresh_path)), _ids(_pot())
    assert fresh == stored, {"new": sorted(fresh - stored), "gone": sorted(stored - fresh)}
    for lang in LANGUAGES:
        assert _ids(_po(lang)) == stored, lang


def test_the_extraction_finds_texts_of_every_kind_of_page() -> None:
    """Spot checks that the keywords reach each kind of source: N_() in a desk module, _() in a
    staff, an expert and a report template, ngettext() with its plural."""
    pot = _pot()
    for msgid in (
        "Answered in time",  # N_() in app/web/staff.py
        "Intake desk",  # _() in templates/staff/base.html
        "My availability",  # templates/expert/
        "SLA reports",  # templates/reports/
        "Ask for an expert report",  # t() in app/web/public.py
    ):
        assert pot.get(msgid) is not None, msgid
    plural = pot.get("%(num)d active expert has no weekly hours yet.")
    assert plural is not None and plural.pluralizable
    # pN_() in a page module and pgettext() in a template keep their context.
    assert pot.get("Open", context="civic space") is not None  # app/web/admin_regions.py
    assert pot.get("Open", context="requests") is not None  # templates/staff/_queue_live.html
    # The charts' own text (app/reports/svg.py) is marked in app/web/reports.py.
    assert pot.get(svg.NO_DATA) is not None


@pytest.mark.parametrize("lang", TRANSLATED)
def test_a_text_with_two_meanings_has_a_translation_for_each(lang: str) -> None:
    """ "Open" the verb, the open requests and the civic-space rating; "Name" of a region and of
    a person; "From" a date and a sender: each context gets its own entry in the catalog."""
    po = _po(lang)
    for msgid, contexts in (
        ("Open", ("civic space", "requests")),
        ("Closed", ("civic space",)),
        ("Name", ("person",)),
        ("From", ("sender",)),
        ("accepted", ("assignment",)),
    ):
        plain = po.get(msgid)
        assert plain is not None and plain.string, (lang, msgid)
        for context in contexts:
            entry = po.get(msgid, context=context)
            assert entry is not None and entry.string, (lang, msgid, context)
    ru = i18n.translations("ru")
    assert ru.pgettext("civic space", "Open") == "Открытое" != ru.gettext("Open")
    assert ru.pgettext("person", "Name") == "Имя" != ru.gettext("Name")


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_text_is_translated_not_fuzzy_and_marked_for_review(lang: str) -> None:
    po = _po(lang)
    assert catalogs.missing(lang) == [], f"run app/web/locale/catalogs.py check ({lang})"
    for message in po:
        if not message.id:
            continue
        ids, strings = _texts(message.id), _texts(message.string)
        assert all(strings), (lang, ids[0])
        assert not message.fuzzy, (lang, ids[0])
        assert REVIEW in message.user_comments, (lang, ids[0])
        wanted = set().union(*map(_placeholders, ids))
        if message.pluralizable:
            assert len(strings) == po.num_plurals, (lang, ids[0])
            # A form for exactly one or two may say the number in words.
            assert all(_placeholders(s) <= wanted for s in strings), (lang, ids[0])
        assert set().union(*map(_placeholders, strings)) == wanted, (lang, ids[0])


@pytest.mark.parametrize("lang", [*TRANSLATED, "en"])
def test_the_compiled_catalog_matches_its_source(lang: str) -> None:
    """The committed .mo is what ``pybabel compile`` makes of the .po now."""
    fresh = io.BytesIO()
    write_mo(fresh, _po(lang))
    committed = (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.mo").read_bytes()
    assert committed == fresh.getvalue(), f"run app/web/locale/catalogs.py ({lang})"


def test_a_missing_empty_or_fuzzy_translation_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check the other tests rely on: an empty, a fuzzy and an absent text all count."""
    po = _po("ar")
    queue, desk = po.get("Queue"), po.get("Intake desk")
    assert queue is not None and desk is not None
    queue.string = ""
    desk.flags.add("fuzzy")
    po.delete("Sign out")
    copy = tmp_path / "ar" / "LC_MESSAGES" / "messages.po"
    copy.parent.mkdir(parents=True)
    with open(copy, "wb") as fh:
        write_po(fh, po)
    monkeypatch.setattr(catalogs, "LOCALE_DIR", tmp_path)
    assert set(catalogs.missing("ar")) == {"Queue", "Intake desk", "Sign out"}


# The pages in the person's own language -----------------------------------------------------


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_queue_page_is_shown_in_the_staff_members_language(
    db: Session, web: TestClient, lang: str
) -> None:
    user = create_user(db, role=Role.staff)
    user.language = UserLanguage(lang)
    db.commit()
    html = signed_in(web, user).get("/staff/queue").text
    gettext = i18n.translations(lang).gettext
    expected_dir = "rtl" if LANGUAGES[lang].rtl else "ltr"
    assert f'<html lang="{lang}" dir="{expected_dir}">' in html
    for text in ("Intake desk", "Queue", "Sign out", "All open", "Order"):
        assert gettext(text) != text and gettext(text) in html, (lang, text)
    assert "Skip to the content" not in html


def test_an_expert_page_is_right_to_left_in_arabic(db: Session, web: TestClient) -> None:
    user = create_expert(db)
    user.language = UserLanguage.ar
    db.commit()
    html = signed_in(web, user).get("/expert/availability").text
    assert '<html lang="ar" dir="rtl">' in html
    gettext = i18n.translations("ar").gettext
    for text in ("My availability", "Weekly hours", "Save hours"):
        assert gettext(text) in html, text
    assert "Weekly hours" not in html


def test_the_case_and_queue_pages_show_the_requests_values_in_the_viewers_language(
    db: Session, web: TestClient
) -> None:
    """The title with its reference, the country by Babel's name, the fixed values by their
    labels and the minutes left as a plural, in Russian; nothing raw from the database."""
    user = create_user(db, role=Role.staff)
    user.language = UserLanguage.ru
    req = submit(db, topics=["corruption"], wants=["consultation", "sample_report"])
    db.commit()
    client = signed_in(web, user)
    html = client.get(f"/staff/cases/{req.reference}").text
    assert title_of(html).startswith(f"Дело {req.reference}")
    for shown in ("Киргизия", "Консультация", "Образец заключения", "Коррупция", "Имя"):
        assert shown in html, shown
    assert re.search(r"осталось \d+ мин", html)
    for raw in ("sample_report", "refused_appeal", "corruption"):
        assert raw not in html, raw
    queue = client.get("/staff/queue").text
    assert "Киргизия" in queue and "Открытые" in queue and "Образец заключения" in queue
    assert re.search(r"осталось \d+ мин", queue)


def test_the_reports_page_draws_its_charts_in_the_viewers_language(
    db: Session, web: TestClient
) -> None:
    user = create_user(db, role=Role.staff)
    user.language = UserLanguage.es
    db.commit()
    html = signed_in(web, user).get("/staff/reports").text
    assert "Solicitudes fuera de plazo por región" in html
    assert "Llegadas por hora de la semana (UTC)" in html
    # Babel's weekday names on the hour axis, the charts' own text through the page's gettext.
    assert "lun 00:00" in html and "Mon 00:00" not in html
    assert "No data in this range" not in html
    assert "horas sin nadie de guardia" in html or "hora sin nadie de guardia" in html
