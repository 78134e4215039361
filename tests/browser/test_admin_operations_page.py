"""The admins' Operations page in a real browser (Chromium): at 360 px without JavaScript an
admin retries a dead letter and searches the audit trail; nothing scrolls sideways; axe finds
nothing serious on the page or the audit search."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import AXE, _axe_serious, _require, fits_360, run_in_service, sign_in
from tests.processes import Service

pytestmark = pytest.mark.slow

# An admin, a dead letter and a Zoom count in the service's own database.
SEED = """
import secrets
import sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.core.time import now
from app.meetings.quota import usage_day
from app.models import OutboxMessage, OutboxStatus, Role, ZoomDailyUsage
from tests.factories import create_user

with session_scope() as s:
    admin = create_user(s, role=Role.admin, display_name="Ops Admin")
    row = OutboxMessage(
        kind="notifications.test_email", params={{"user_id": "gone"}}, status=OutboxStatus.dead,
        due_at=now(), attempts=5, last_error="PermanentFailure: 550 no such user " + "x" * 120,
        created_at=now(), updated_at=now(),
    )
    s.add(row)
    host = "a-very-long-zoom-host-address-" + secrets.token_hex(4) + "@example.org"
    s.add(ZoomDailyUsage(host=host, day=usage_day(now()), count=91))
    s.flush()
    print(admin.email + " " + str(row.id))
"""


def test_an_admin_retries_a_dead_letter_and_searches_the_trail_at_360_px_without_javascript(
    new_page: Any, service: Service
) -> None:
    email, row_id = run_in_service(service, SEED).split()
    page = new_page(
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
        java_script_enabled=False,
    )
    sign_in(page, email)
    page.wait_for_url(re.compile(r"/staff/"))
    page.click("#nav-operations")
    page.wait_for_url(re.compile(r"/admin/operations$"))
    assert "91 / 100" in page.inner_text("#zoom-usage")
    assert "database: ok" in page.inner_text("#dependencies")
    fits_360(page)
    page.click(f"#dead-letter-{row_id} button[type=submit]")
    page.wait_for_url(re.compile(r"done=retried"))
    assert "due again" in page.inner_text(".flash")
    page.click("#audit-link")
    page.fill("#f-action", "/dead-letters/")
    page.click("button:has-text('Search')")
    page.wait_for_url(re.compile(r"/admin/operations/audit\?"))
    assert "POST /admin/operations/dead-letters/{message_id}/retry" in page.inner_text(
        "#audit-rows"
    )
    fits_360(page)


def test_axe_finds_nothing_serious_on_operations_and_the_audit_search(
    new_page: Any, service: Service
) -> None:
    _require(AXE, "axe-core (npm)")
    email, _ = run_in_service(service, SEED).split()
    page = new_page(bypass_csp=True)  # axe is injected as a script
    sign_in(page, email)
    page.wait_for_url(re.compile(r"/staff/"))
    page.goto("/admin/operations")
    found = {"operations": _axe_serious(page, "admin_operations")}
    page.goto("/admin/operations/audit?from=2026-13-01")  # with an error next to its field
    found["audit"] = _axe_serious(page, "admin_audit")
    assert found == {"operations": [], "audit": []}
