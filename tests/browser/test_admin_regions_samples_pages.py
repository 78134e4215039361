"""The admin console's Regions and countries and Sample reports pages in a real browser
(Chromium): at 360 px without JavaScript nothing scrolls sideways, the tables read as one card
per row, a file that is not a PDF is refused beside the field, a sample report uploaded for a
region covers a country of it (on both pages); axe finds nothing serious."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import AXE, _axe_serious, _require, fits_360, run_in_service, sign_in
from tests.factories import tiny_pdf
from tests.processes import Service

pytestmark = pytest.mark.slow

# An admin; a region of its own with one country of the ISO list that was not in the table
# (so no earlier test's report for the country or region covers it).
SEED = """
import json, secrets, sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.models import Role
from app.reference import service as reference
from tests.factories import create_user

tag = secrets.token_hex(3)
with session_scope() as s:
    admin = create_user(s, role=Role.admin, display_name="Regions Admin")
    region = "browser_" + tag
    reference.create_region(s, code=region, name="Browser region " + tag)
    taken = {{c.code for c in reference.list_countries(s)}}
    code = next(c for c in sorted(reference.iso_countries()) if c not in taken)
    reference.create_country(
        s, code=code, name="Browserland " + tag, region_code=region,
        civic_space_rating=None, staff_notes="A long note " * 20,
    )
    print(json.dumps({{"admin": admin.email, "region": region, "country": code}}))
"""


def test_at_360_px_without_javascript_a_region_report_covers_its_country(
    new_page: Any, service: Service, tmp_path: Path
) -> None:
    seeded = json.loads(run_in_service(service, SEED))
    country, region = seeded["country"], seeded["region"]
    not_pdf = tmp_path / "notes.pdf"
    not_pdf.write_bytes(b"just some text, not a PDF")
    report = tmp_path / "region-report.pdf"
    report.write_bytes(tiny_pdf(2))
    page = new_page(
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
        java_script_enabled=False,
    )
    sign_in(page, seeded["admin"])
    page.wait_for_load_state()

    page.goto("/admin/regions")
    fits_360(page)
    assert page.get_attribute("#nav-regions", "aria-current") == "page"
    row = page.locator(f"#region-{region}")
    assert row.evaluate("r => getComputedStyle(r).display") == "block"  # one card per region
    assert page.is_visible(f"#no-expert-{country}")
    # No report for it yet, unless an earlier test left a general one.
    no_sample_before = page.locator(f"#no-sample-{country}").count()

    page.goto("/admin/sample-reports")
    fits_360(page)
    assert page.locator(f"#uncovered-{country}").count() == no_sample_before
    if not no_sample_before:
        assert page.get_attribute(f"#covered-{country}", "data-tier") == "general"

    page.select_option("#tag", f"region:{region}")
    page.set_input_files("#file", str(not_pdf))
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#file-error")
    assert "not a readable PDF" in page.inner_text("#file-error")
    assert page.is_visible("#error-summary")
    fits_360(page)

    page.select_option("#tag", f"region:{region}")  # kept, chosen again for clarity
    page.set_input_files("#file", str(report))
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#done:has-text('The sample report is uploaded.')")
    fits_360(page)
    assert page.get_attribute(f"#covered-{country}", "data-tier") == "region"
    assert "region-report.pdf" in page.inner_text(f"#covered-{country}")
    assert page.locator(f"#uncovered-{country}").count() == 0
    assert page.locator("tr.report", has_text="region-report.pdf").count() == 1

    page.goto("/admin/regions")
    fits_360(page)
    assert page.locator(f"#no-sample-{country}").count() == 0


def test_axe_finds_no_serious_violations_on_the_regions_and_sample_reports_pages(
    new_page: Any, service: Service
) -> None:
    _require(AXE, "axe-core (npm)")
    seeded = json.loads(run_in_service(service, SEED))
    for width in (1280, 360):
        page = new_page(viewport={"width": width, "height": 800}, bypass_csp=True)
        sign_in(page, seeded["admin"])
        page.wait_for_load_state()
        found = {}
        for name, url in (
            ("regions", "/admin/regions"),
            ("country", f"/admin/regions/countries/{seeded['country']}"),
            ("samples", "/admin/sample-reports"),
        ):
            page.goto(url)
            found[name] = _axe_serious(page, f"admin_{name}_{width}")
        # With an error shown beside its field.
        page.goto("/admin/regions")
        page.fill("#code", "Not A Code")
        page.click("#add-region button[type=submit]")
        page.wait_for_selector("#code-error")
        found["regions_error"] = _axe_serious(page, f"admin_regions_error_{width}")
        assert found == {name: [] for name in found}, found
