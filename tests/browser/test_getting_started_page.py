"""The first-run checklist in a real browser (Chromium): an admin's first sign-in lands on it, at
360 px nothing scrolls sideways, it works without JavaScript, and axe finds nothing serious."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import AXE, _axe_serious, _require, own_service, run_in_service, sign_in
from tests.processes import Service

pytestmark = pytest.mark.slow

# A fresh admin and an expert (with a meeting link, without hours) in the service's own database.
SEED = """
import sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.models import ExpertProfile, Role
from tests.factories import create_expert, create_user

with session_scope() as s:
    expert = create_expert(s, regions=("middle_east",))
    s.get(ExpertProfile, expert.id).personal_meeting_link = "https://meet.example.org/dr-x"
    admin = create_user(s, role=Role.admin, display_name="First Admin")
    print(admin.email)
"""


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    """The checklist is about the whole organisation (every active expert, every region): a
    database of this module's own, without the experts other modules leave in the shared one."""
    with own_service() as svc:
        yield svc


def test_first_sign_in_lands_on_the_checklist_at_360_px_without_javascript(
    new_page: Any, service: Service
) -> None:
    admin = run_in_service(service, SEED)
    page = new_page(
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
        java_script_enabled=False,
    )
    sign_in(page, admin)
    page.wait_for_url(re.compile(r"/staff/getting-started$"))
    checklist = page.inner_text("#checklist")
    assert "Add experts" in checklist and "Set the experts' hours" in checklist
    assert page.inner_text("#item-experts h2").startswith("✓ Done")
    assert page.inner_text("#item-hours h2").startswith("To do")
    assert "middle_east" in page.inner_text("#samples-missing")
    # The directions name the admin page and what to press there; the link opens that page.
    assert 'On Experts, open each expert and, under "Weekly hours"' in page.inner_text(
        "#item-hours"
    )
    page.click("#item-hours >> text=Go to Experts")
    page.wait_for_url(re.compile(r"/admin/experts$"))
    assert page.inner_text("h1") == "Experts"


def test_the_checklist_fits_360_px_and_axe_finds_nothing_serious(
    new_page: Any, service: Service
) -> None:
    admin = run_in_service(service, SEED)
    page = new_page(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    sign_in(page, admin)
    page.wait_for_url(re.compile(r"/staff/getting-started$"))
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == 360, widths
    _require(AXE, "axe-core (npm)")
    checked = new_page(bypass_csp=True)  # axe is injected as a script
    sign_in(checked, admin)
    checked.wait_for_url(re.compile(r"/staff/getting-started$"))
    assert _axe_serious(checked, "getting_started") == []
