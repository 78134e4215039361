"""The admin console's Experts pages in a real browser (Chromium): at 360 px without JavaScript
nothing scrolls sideways while an admin adds an expert (a mistake shown by its field first),
sets their weekly hours and uploads their CV, and the list then shows both; axe finds nothing
serious on the list or on one expert's page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import AXE, _axe_serious, _require, fits_360, run_in_service, sign_in
from tests.factories import tiny_pdf
from tests.processes import Service

pytestmark = pytest.mark.slow

# An admin and an expert with a profile whose name holds a right-to-left override.
SEED = """
import json, secrets, sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.models import Role
from tests.factories import create_expert, create_user

tag = secrets.token_hex(3)
with session_scope() as s:
    admin = create_user(s, role=Role.admin, display_name="Experts Admin")
    expert = create_expert(
        s, countries=["KG", "KZ"], regions=["eastern_europe_post_soviet"],
        name="Eve\\u202egnp.exe " + tag,
    )
    print(json.dumps({{"admin": admin.email, "expert": str(expert.id), "tag": tag}}))
"""


def test_experts_at_360_px_without_javascript_add_set_hours_and_upload_a_cv(
    new_page: Any, service: Service, tmp_path: Path
) -> None:
    seeded = json.loads(run_in_service(service, SEED))
    page = new_page(
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
        java_script_enabled=False,
    )
    sign_in(page, seeded["admin"])
    page.wait_for_load_state()
    page.goto("/admin/experts")
    fits_360(page)
    assert page.get_attribute("#nav-experts", "aria-current") == "page"
    assert "Eve[U+202E]gnp.exe" in page.inner_text(f"#expert-{seeded['expert']}")

    # Someone new, invited and given a profile in one go; a mistake first.
    email = f"new-expert-{seeded['tag']}@example.org"
    page.select_option("#user_id", "new")
    page.fill("#display_name", "Nadia New")
    page.fill("#email", email)
    page.fill("#timezone", "Mars/Olympus")
    page.fill("#languages", "ru, en")
    page.fill("#countries", "KG")
    page.check("#region-eastern_europe_post_soviet")
    page.click("#add-form button[type=submit]")
    page.wait_for_selector("#timezone-error")
    assert "time zone" in page.inner_text("#timezone-error")
    assert page.is_visible("#error-summary")
    fits_360(page)
    page.fill("#timezone", "Asia/Bishkek")
    page.click("#add-form button[type=submit]")
    page.wait_for_selector("#done:has-text('The expert is invited')")
    assert page.inner_text("h1") == "Nadia New"
    fits_360(page)

    # Weekly hours, in the expert's own zone.
    page.fill("#day0", "09:00-12:00, 14:00-17:00")
    page.fill("#day2", "10:00-13:00")
    page.click("#hours-form button[type=submit]")
    page.wait_for_selector("#done:has-text('The weekly hours are saved.')")
    assert page.input_value("#day0") == "09:00-12:00, 14:00-17:00"
    assert page.input_value("#hours_timezone") == "Asia/Bishkek"
    fits_360(page)

    # The CV: a file that is not a PDF is refused beside the field, then a PDF goes through.
    fake = tmp_path / "cv.pdf"
    fake.write_bytes(b"MZ this is not a PDF")
    page.set_input_files("#cv", str(fake))
    page.click("#cv-form button[type=submit]")
    page.wait_for_selector("#cv-error")
    assert "not a readable PDF" in page.inner_text("#cv-error")
    fits_360(page)
    real = tmp_path / "Nadia CV.pdf"
    real.write_bytes(tiny_pdf())
    page.set_input_files("#cv", str(real))
    page.click("#cv-form button[type=submit]")
    page.wait_for_selector("#done:has-text('The CV is saved.')")
    assert "Nadia CV.pdf" in page.inner_text("#cv-on-file")
    fits_360(page)

    page.click("text=All experts")
    page.wait_for_selector("#experts")
    card = page.locator(".expert-card", has_text="Nadia New")
    assert card.locator(".expert-cv").inner_text() == "Yes"
    assert card.locator(".expert-hours").inner_text() == "Set"
    assert "0 open of 10" in card.locator(".expert-load").inner_text()
    fits_360(page)


def test_axe_finds_no_serious_violations_on_the_experts_pages(
    new_page: Any, service: Service
) -> None:
    _require(AXE, "axe-core (npm)")
    seeded = json.loads(run_in_service(service, SEED))
    for width in (1280, 360):
        page = new_page(viewport={"width": width, "height": 800}, bypass_csp=True)
        sign_in(page, seeded["admin"])
        page.wait_for_load_state()
        page.goto("/admin/experts")
        found = {"list": _axe_serious(page, f"experts_{width}")}
        page.goto(f"/admin/experts/{seeded['expert']}")
        found["expert"] = _axe_serious(page, f"expert_{width}")
        # With errors shown beside their fields (hours and a period that ends before it starts).
        page.fill("#day1", "09:00-12:00, 11:00-13:00")
        page.click("#hours-form button[type=submit]")
        page.wait_for_selector("#day1-error")
        found["expert_errors"] = _axe_serious(page, f"expert_errors_{width}")
        assert found == {"list": [], "expert": [], "expert_errors": []}
