"""The "Mail set aside" staff page in a real browser (Chromium): at 360 px nothing scrolls
sideways, the sender is masked, "Open as a request" opens it, and axe finds nothing serious."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import AXE, _axe_serious, _require, run_in_service, sign_in
from tests.processes import Service

pytestmark = pytest.mark.slow

# A staff user, a newsletter and a person who wrote through a Google Group (set aside as list
# mail) in the service's own database.
SEED = """
import sys
sys.path.insert(0, {root!r})
from email.message import EmailMessage
from app.core.database import session_scope
from app.flows.request import inbound_message
from app.models import Role
from tests.factories import create_user
from tests.factories import fixture

def grouped():
    msg = EmailMessage()
    msg["From"] = "Amina Kerimova-Abdrakhmanova <amina.kerimova-abdrakhmanova@example.net>"
    msg["To"] = "requests@example.org"
    msg["Subject"] = "Expert report needed before my appeal hearing on 14 December, please help"
    msg["Message-ID"] = "<grouped-1@mail.example.net>"
    msg["List-Id"] = "<intake.groups.example.org>"
    msg.set_content("My hearing is on 14 December.")
    return msg.as_bytes()

with session_scope() as s:
    staff = create_user(s, role=Role.staff, display_name="Nadia Staff")
    inbound_message(s, fixture("newsletter_list_unsubscribe.eml"))
    inbound_message(s, grouped())
    print(staff.email)
"""


def test_the_set_aside_page_fits_360_px_and_opens_a_message_as_a_request(
    new_page: Any, service: Service
) -> None:
    staff = run_in_service(service, SEED)
    page = new_page(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    sign_in(page, staff)
    page.wait_for_url(re.compile(r"/staff/queue"))
    page.click("a[href='/staff/inbound/set-aside']")
    page.wait_for_url(re.compile(r"/staff/inbound/set-aside$"))
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == 360, widths
    listed = page.inner_text("#set-aside-list")
    assert "Mailing list or newsletter" in listed
    assert "a***@example.net" in listed and "amina.kerimova" not in listed

    item = page.locator("li.set-aside-item", has_text="Expert report needed")
    item.locator("button:has-text('Open as a request')").click()
    page.wait_for_url(re.compile(r"done=opened"))
    flash = page.inner_text("#opened")
    assert "Opened as request" in flash
    page.click("#opened a")
    page.wait_for_url(re.compile(r"/staff/cases/"))
    assert "My hearing is on 14 December." in page.inner_text("main")


def test_axe_finds_no_serious_violations_on_the_set_aside_page(
    new_page: Any, service: Service
) -> None:
    _require(AXE, "axe-core (npm)")
    staff = run_in_service(service, SEED.replace("grouped-1@", "grouped-2@"))
    page = new_page(bypass_csp=True)
    sign_in(page, staff)
    page.wait_for_url(re.compile(r"/staff/queue"))
    page.goto("/staff/inbound/set-aside")
    assert _axe_serious(page, "staff_set_aside") == []
