"""Time zone and language in a real browser (Chromium): at 360 px without JavaScript a staff
member picks Asia/Bishkek and Arabic; the desk turns right to left, names the zone in its header,
and nothing scrolls sideways; axe finds nothing serious on the Arabic page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import AXE, _axe_serious, _require, fits_360, run_in_service, sign_in
from tests.browser.test_account_page import SEED
from tests.processes import Service

pytestmark = pytest.mark.slow


def test_a_zone_and_arabic_are_chosen_at_360_px_without_javascript(
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
    page.goto("/my-account")
    fits_360(page)
    page.select_option("#timezone", "Asia/Bishkek")
    page.select_option("#language", "ar")
    page.click("#settings button[type=submit]")
    page.wait_for_url(re.compile(r"/my-account\?done=settings$"))
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.get_attribute("html", "lang") == "ar"
    assert "Asia/Bishkek, UTC+06:00" in page.inner_text("#viewer-zone")
    fits_360(page)


def test_the_arabic_account_page_has_no_serious_axe_violations(
    new_page: Any, service: Service
) -> None:
    _require(AXE, "axe-core (npm)")
    email = run_in_service(service, SEED)
    page = new_page(bypass_csp=True)  # axe is injected as a script
    sign_in(page, email)
    page.wait_for_url(re.compile(r"/staff/queue"))
    page.goto("/my-account")
    page.select_option("#language", "ar")
    page.click("#settings button[type=submit]")
    page.wait_for_url(re.compile(r"/my-account\?done=settings$"))
    assert _axe_serious(page, "my_account_ar") == []
