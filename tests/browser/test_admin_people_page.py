"""The admin console's People page in a real browser (Chromium): at 360 px without JavaScript
the table reads as one card per person, nothing scrolls sideways, an invite with a mistake
shows the error by the field and then goes through, a deactivation is confirmed after the
redirect; axe finds nothing serious."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import AXE, _axe_serious, _require, fits_360, run_in_service, sign_in
from tests.processes import Service

pytestmark = pytest.mark.slow

# An admin, a staff member whose name holds a right-to-left override, someone invited.
SEED = """
import json, secrets, sys
sys.path.insert(0, {root!r})
from app.accounts import service as accounts
from app.core.database import session_scope
from app.models import Role
from tests.factories import create_user

tag = secrets.token_hex(3)
with session_scope() as s:
    admin = create_user(s, role=Role.admin, display_name="People Admin")
    staff = create_user(s, role=Role.staff, display_name="Eve\\u202egnp.exe " + tag)
    accounts.invite_user(
        s, email=f"invited-{{tag}}@example.org", display_name="Invited " + tag, role=Role.expert
    )
    print(json.dumps({{"admin": admin.email, "staff": str(staff.id), "tag": tag}}))
"""


def test_people_at_360_px_without_javascript_invite_and_deactivate(
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
    page.goto("/admin/people")
    fits_360(page)
    row = page.locator(f"#person-{seeded['staff']}")
    # One card per person: the row is as wide as the list, its cells stacked.
    assert row.evaluate("r => getComputedStyle(r).display") == "block"
    assert "Eve[U+202E]gnp.exe" in row.inner_text()
    assert page.inner_text("#nav-people")  # in the navigation, marked as the current page
    assert page.get_attribute("#nav-people", "aria-current") == "page"

    page.fill("#display_name", "")
    page.fill("#email", f"new-{seeded['tag']}@example.org")
    page.select_option("#role", "staff")
    page.click("#invite button[type=submit]")
    page.wait_for_selector("#display_name-error")
    assert "Enter their name" in page.inner_text("#display_name-error")
    assert page.is_visible("#error-summary")
    fits_360(page)
    page.fill("#display_name", "New Person")
    page.click("#invite button[type=submit]")
    page.wait_for_selector("#done:has-text('The invitation is sent.')")
    assert f"new-{seeded['tag']}@example.org" in page.inner_text("#people")
    fits_360(page)

    page.locator(f"#person-{seeded['staff']} button:has-text('Deactivate')").click()
    page.wait_for_selector("#done:has-text('The account is deactivated')")
    assert "Deactivated" in page.inner_text(f"#person-{seeded['staff']} .person-state")
    fits_360(page)


def test_axe_finds_no_serious_violations_on_the_people_page(
    new_page: Any, service: Service
) -> None:
    _require(AXE, "axe-core (npm)")
    seeded = json.loads(run_in_service(service, SEED))
    for width in (1280, 360):
        page = new_page(viewport={"width": width, "height": 800}, bypass_csp=True)
        sign_in(page, seeded["admin"])
        page.wait_for_load_state()
        page.goto("/admin/people")
        assert _axe_serious(page, f"people_{width}") == []
