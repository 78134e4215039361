"""The admin console's Roster page in a real browser (Chromium): at 360 px without JavaScript
the week reads as one card per person and nothing scrolls sideways; a shift with an unknown zone
shows the error by the field, then the shift goes in and the staff gap it fills leaves the gap
list; axe finds nothing serious on the page nor on a shift's page."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import AXE, _axe_serious, _require, fits_360, run_in_service, sign_in
from tests.processes import Service

pytestmark = pytest.mark.slow

# An admin and a staff member on duty around the clock on every day but one: the day three days
# from now (UTC), which is wholly inside the next 7 days whatever the hour.
SEED = """
import datetime as dt, json, sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.core.time import now
from app.models import Role
from tests.factories import create_user, shift

missing = (now().astimezone(dt.UTC) + dt.timedelta(days=3)).weekday()
with session_scope() as s:
    admin = create_user(s, role=Role.admin, display_name="Roster Admin")
    staff = create_user(s, role=Role.staff, display_name="Nora Night\\u202eevil")
    for day in range(7):
        if day != missing:
            shift(s, staff, day, "00:00", "00:00")
    print(json.dumps({{"admin": admin.email, "staff": str(staff.id), "missing": missing}}))
"""

# A shift in another zone, with a one-off change, for axe to read.
AXE_SEED = """
import datetime as dt, json, sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.core.time import now
from app.models import DutyLevel, OverrideKind, Role
from tests.factories import create_user, override, shift

with session_scope() as s:
    admin = create_user(s, role=Role.admin, display_name="Axe Admin")
    staff = create_user(s, role=Role.staff, display_name="Axe Staff")
    row = shift(s, staff, 2, "22:00", "06:00", tz="Asia/Bishkek", level=DutyLevel.lead)
    start = now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=2)
    override(s, staff, OverrideKind.extra, start, start + dt.timedelta(hours=3))
    print(json.dumps({{"admin": admin.email, "shift": row.id}}))
"""


def test_roster_at_360_px_without_javascript_a_shift_fills_a_gap(
    new_page: Any, service: Service
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
    page.goto("/admin/roster")
    fits_360(page)
    assert page.get_attribute("#nav-roster", "aria-current") == "page"
    row = page.locator(f"#person-{seeded['staff']}")
    # One card per person: the row is as wide as the list, its days stacked.
    assert row.evaluate("r => getComputedStyle(r).display") == "block"
    assert "Nora Night[U+202E]evil" in row.inner_text()
    staff_gaps = page.locator("#gap-list .gap-staff")
    assert staff_gaps.count() >= 1
    assert "nobody on duty" in staff_gaps.first.inner_text()
    all_gaps = page.locator("#gap-list .gap").count()

    form = page.locator("#add-shift form")
    form.locator("#shift-user_id").select_option(seeded["staff"])
    form.locator("#shift-weekday").select_option(str(seeded["missing"]))
    form.locator("#shift-starts_local").fill("00:00")
    form.locator("#shift-ends_local").fill("00:00")
    form.locator("#shift-timezone").fill("Mars/Olympus")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#shift-timezone-error")
    assert "time zone name" in page.inner_text("#shift-timezone-error")
    assert page.is_visible("#error-summary")
    fits_360(page)

    page.fill("#shift-timezone", "UTC")
    page.click("#add-shift button[type=submit]")
    page.wait_for_selector("#done:has-text('The shift is added.')")
    fits_360(page)
    assert page.locator("#gap-list .gap-staff").count() == 0
    assert page.locator("#gap-list .gap").count() < all_gaps
    assert "00:00\u201324:00" in page.inner_text(f"#person-{seeded['staff']}")


def test_axe_finds_no_serious_violations_on_the_roster_pages(
    new_page: Any, service: Service
) -> None:
    _require(AXE, "axe-core (npm)")
    seeded = json.loads(run_in_service(service, AXE_SEED))
    for width in (1280, 360):
        page = new_page(viewport={"width": width, "height": 800}, bypass_csp=True)
        sign_in(page, seeded["admin"])
        page.wait_for_load_state()
        page.goto("/admin/roster")
        assert _axe_serious(page, f"roster_{width}") == []
        page.goto(f"/admin/roster/shifts/{seeded['shift']}")
        page.fill("#shift-timezone", "Nowhere/Town")
        page.click("#change-shift button[type=submit]")
        page.wait_for_selector("#shift-timezone-error")
        assert _axe_serious(page, f"roster_shift_{width}") == []
