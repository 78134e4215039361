"""The live countdown (staff.js) on the staff case page speaks the page's language, with the
right plural: the sentence from the server's catalog, the minutes in words from the browser's
CLDR (Intl). Russian "2 минуты" and "121 минута", Arabic's dual "دقيقتان"; the SLA label is
the catalog's, never English. No serious axe violation; screenshots in artifacts/browser/."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, AXE, _axe_serious, _require, run_in_service, sign_in
from tests.processes import Service

pytestmark = pytest.mark.slow

# A staff member reading ``lang``; one request 65 s past its deadline (2 minutes overdue, the
# count rounded up), one due in 121 min 55 s (121 minutes left, rounded down): both hold for
# about 55 seconds.
SEED = """
import datetime as dt, json, sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.core.time import now
from app.models import Role, UserLanguage
from tests.factories import create_user, submit

with session_scope() as s:
    staff = create_user(s, role=Role.staff, display_name="Staff {lang}")
    staff.language = UserLanguage({lang!r})
    late, early = submit(s, country_of_origin="TM"), submit(s, country_of_origin="TM")
    late.first_response_due_at = now() - dt.timedelta(seconds=65)
    late.received_at = late.first_response_due_at - dt.timedelta(hours=1)
    early.first_response_due_at = now() + dt.timedelta(minutes=121, seconds=55)
    print(json.dumps({{"staff": staff.email, "late": late.reference, "early": early.reference}}))
"""

EXPECTED = {
    "ru": ("просрочено: 2 минуты", "осталось: 121 минута"),
    "ar": ("التأخير: دقيقتان", "الوقت المتبقي: 121 دقيقة"),
}
ENGLISH = re.compile(r"\b(min|minutes?|left|overdue|On track|Due soon|Breached)\b")


@pytest.mark.parametrize("lang", ["ru", "ar"])
def test_the_countdown_speaks_the_pages_language_with_its_plurals(
    new_page: Any, service: Service, lang: str
) -> None:
    _require(AXE, "axe-core (npm)")
    script = SEED.replace("{lang}", lang).replace("{lang!r}", repr(lang))
    seeded = json.loads(run_in_service(service, script))
    page = new_page(viewport={"width": 360, "height": 740}, is_mobile=True, bypass_csp=True)
    sign_in(page, seeded["staff"])
    page.wait_for_url(re.compile(r"/staff/queue"))
    overdue, left = EXPECTED[lang]
    for ref, expected, state in (
        (seeded["late"], overdue, "breached"),
        (seeded["early"], left, "awaiting"),
    ):
        page.goto(f"/staff/cases/{ref}")
        assert page.get_attribute("html", "lang") == lang
        # staff.js rewrites the countdown every second: wait for its words.
        page.wait_for_function(
            "([want]) => document.querySelector('#case-sla .countdown').textContent === want",
            arg=[expected],
            timeout=10_000,
        )
        label = page.inner_text("#case-sla .sla-label")
        assert label == page.get_attribute("body", f"data-t-{state}")
        sla = page.inner_text("#case-sla")
        assert not ENGLISH.search(sla), sla
        assert _axe_serious(page, f"countdown_{state}_{lang}") == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator("#case-sla").screenshot(path=str(ARTIFACTS / f"countdown_{state}_{lang}.png"))
