"""Your account in a real browser (Chromium): at 360 px without JavaScript a staff member turns
the second factor on with the QR code the page draws (allowed by the page's CSP), gets the
recovery codes, and nothing scrolls sideways; axe finds nothing serious."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import AXE, _axe_serious, _require, fits_360, run_in_service, sign_in
from tests.processes import Service

pytestmark = pytest.mark.slow

SEED = """
import sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.models import Role
from tests.factories import create_user

with session_scope() as s:
    print(create_user(s, role=Role.staff, display_name="Desk Person").email)
"""

# The code on the service's own clock (the suite may move it).
CODE = """
import sys
sys.path.insert(0, {root!r})
import pyotp
from app.core.time import now

print(pyotp.TOTP("%s").at(now()))
"""


def test_second_factor_is_turned_on_at_360_px_without_javascript(
    new_page: Any, service: Service
) -> None:
    email = run_in_service(service, SEED)
    page = new_page(
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
        java_script_enabled=False,
    )
    sign_in(page, email)
    page.wait_for_url(re.compile(r"/staff/queue"))
    page.click("a:has-text('Your account')")
    page.wait_for_url(re.compile(r"/my-account$"))
    fits_360(page)
    page.click("button:has-text('Turn on the second factor')")
    page.wait_for_url(re.compile(r"/my-account/second-factor$"))
    box = page.locator("#qr svg").bounding_box()
    assert box is not None and box["width"] >= 100 and box["height"] >= 100
    fits_360(page)
    key = page.inner_text("#manual-key").replace(" ", "")
    page.fill("#code", run_in_service(service, CODE % key))
    page.click("button:has-text('Turn on')")
    page.wait_for_selector("#recovery-codes")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    fits_360(page)
    page.click("a:has-text('back to your account')")
    assert "Recovery codes left: 10." in page.inner_text("#second-factor-state")
    fits_360(page)


def test_the_account_page_has_no_serious_axe_violations(new_page: Any, service: Service) -> None:
    _require(AXE, "axe-core (npm)")
    email = run_in_service(service, SEED)
    page = new_page(bypass_csp=True)  # axe is injected as a script
    sign_in(page, email)
    page.wait_for_url(re.compile(r"/staff/queue"))
    page.goto("/my-account")
    assert _axe_serious(page, "my_account") == []
    page.click("button:has-text('Turn on the second factor')")
    page.wait_for_url(re.compile(r"/my-account/second-factor$"))
    assert _axe_serious(page, "my_account_second_factor") == []
