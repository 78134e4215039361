"""The SLA reports page (/staff/reports) in Russian and Arabic, with regions whose labels are
long: in real Chromium every <text> of each server-drawn chart lies inside its <svg>, at 1280 px
and at 360 px, the longest label cut with an ellipsis and whole in its <title>. No serious axe
violation; screenshots in artifacts/browser/reports-ru.png and reports-ar.png."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, AXE, _axe_serious, _require, run_in_service, sign_in
from tests.processes import Service

pytestmark = pytest.mark.slow

# Two regions with long codes (the report's group keys, 64 characters at most) and long names,
# one in Russian, one in Arabic, each with requests answered in time and late; a staff member
# reading each language. The regions are removed afterwards: the service is shared, and every
# region counts on the roster.
REGIONS = {
    "vostochnaya_evropa_kavkaz_i_postsovetskie_gosudarstva_tsentr_azii": (
        "Восточная Европа, Кавказ и постсоветские государства Центральной Азии"
    ),
    "alsharq_alawsat_wa_shamal_afriqya_wa_aldual_almujawira_lilkhalij": (
        "الشرق الأوسط وشمال أفريقيا والدول المجاورة للخليج العربي والقرن الأفريقي"
    ),
}
SEED = """
import datetime as dt, json, sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.core.time import now
from app.models import Region, Role, UserLanguage
from tests.factories import create_user, make_request

regions = json.loads({regions!r})
with session_scope() as s:
    people = {{}}
    for lang in ("ru", "ar"):
        staff = create_user(s, role=Role.staff, display_name=f"Reports {{lang}}")
        staff.language = UserLanguage(lang)
        people[lang] = staff.email
    for n, (code, name) in enumerate(regions.items()):
        s.add(Region(code=code, name=name))
        for k in range(n + 3):  # over a few days, every other one answered in time
            req = make_request(s, region=code, country="XK")
            req.received_at = now() - dt.timedelta(days=k, hours=3)
            req.first_response_due_at = req.received_at + dt.timedelta(hours=1)
            if k % 2:
                req.first_responded_at = req.received_at + dt.timedelta(minutes=40)
print(json.dumps(people))
"""
CLEANUP = """
import json, sys
sys.path.insert(0, {root!r})
from sqlalchemy import delete
from app.core.database import session_scope
from app.models import Region

with session_scope() as s:
    s.execute(delete(Region).where(Region.code.in_(json.loads({codes!r}))))
print("{{}}")
"""

# Each chart's texts against its own box (transforms included), with half a pixel for rounding.
OUTSIDE = """() => [...document.querySelectorAll('main figure svg')].flatMap((svg, k) => {
  const b = svg.getBoundingClientRect();
  return [...svg.querySelectorAll('text')].flatMap(t => {
    const r = t.getBoundingClientRect();
    const inside = r.width > 0 && r.left >= b.left - 0.5 && r.right <= b.right + 0.5
      && r.top >= b.top - 0.5 && r.bottom <= b.bottom + 0.5;
    return inside ? [] : [{chart: k, text: t.firstChild && t.firstChild.textContent,
      box: [r.left, r.top, r.right, r.bottom].map(Math.round),
      svg: [b.left, b.top, b.right, b.bottom].map(Math.round)}];
  });
})"""
# The breaches chart's labels as drawn, and the whole text of those cut.
LABELS = """() => [...document.querySelectorAll('#h-breaches ~ figure svg text[transform]')].map(
  t => [t.firstChild.textContent, t.querySelector('title')?.textContent ?? null])"""


def test_the_report_charts_keep_every_label_inside_in_russian_and_arabic(
    new_page: Any, service: Service
) -> None:
    _require(AXE, "axe-core (npm)")
    regions = json.dumps(REGIONS)
    # run_in_service fills in {root}: the JSON's braces are doubled.
    script = SEED.replace("{regions!r}", repr(regions).replace("{", "{{").replace("}", "}}"))
    people = json.loads(run_in_service(service, script))
    try:
        for lang, direction in (("ru", "ltr"), ("ar", "rtl")):
            page = new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            sign_in(page, people[lang])
            page.wait_for_url(re.compile(r"/staff/"))
            for width in (360, 1280):
                page.set_viewport_size({"width": width, "height": 900})
                resp = page.goto("/staff/reports")
                assert resp is not None and resp.status == 200
                assert page.get_attribute("html", "lang") == lang
                assert page.get_attribute("html", "dir") == direction
                assert page.locator("main figure svg").count() == 3
                # Every kind drawn, none "no data": lines, bars, bars with a line.
                assert page.locator("#h-times ~ figure svg circle").count() > 0
                assert page.locator("#h-breaches ~ figure svg rect").count() > 0
                assert page.locator("#h-coverage ~ figure svg polyline").count() == 1
                assert page.evaluate(OUTSIDE) == [], (lang, width)
                # The long regions are drawn: cut with an ellipsis, whole in the <title> (by
                # their names or, where the page shows the codes, by those).
                cut = {full: shown for shown, full in page.evaluate(LABELS) if full}
                for code, name in REGIONS.items():
                    full = name if name in cut else code
                    assert full in cut, (lang, sorted(cut))
                    assert cut[full].endswith("…") and full.startswith(cut[full][:-1])
            assert _axe_serious(page, f"reports_{lang}") == []
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"reports-{lang}.png"), full_page=True)
    finally:
        run_in_service(service, CLEANUP.replace("{codes!r}", repr(json.dumps(list(REGIONS)))))
