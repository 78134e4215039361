"""Staff and expert pages in a real browser (Chromium): sign in as staff, find the request in the
queue, assign it, reply; sign in as an expert and see only their own requests."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.conftest import (
    AXE,
    _axe_serious,
    _require,
    fits_360,
    run_in_service,
    sign_in,
)
from tests.factories import DEFAULT_PASSWORD
from tests.processes import Service

pytestmark = pytest.mark.slow

# Runs in the service's own directory and settings (its embedded database and master key), so
# the people and requests exist as if an admin and two requesters had made them. Countries no
# other browser module's expert covers: the service is shared, and routing offers a request to
# the least loaded of the experts for its country.
SEED = """
import json, sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.models import Role
from tests.factories import create_expert, create_user, submit

with session_scope() as s:
    staff = create_user(s, role=Role.staff, display_name="Nadia Staff")
    kg = create_expert(s, countries=["UZ"], name="Dr Uzbekistan")
    sy = create_expert(s, countries=["SY"], name="Dr Syria")
    kg_req = submit(s, country_of_origin="UZ")
    sy_req = submit(s, country_of_origin="SY")
    out = {{
        "staff": staff.email, "kg": kg.email, "sy": sy.email,
        "kg_ref": kg_req.reference, "sy_ref": sy_req.reference,
    }}
print(json.dumps(out))
"""


NEW_REQUEST = """
import sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from tests.factories import submit

with session_scope() as s:
    print(submit(s, country_of_origin="AM").reference)
"""


# Two staff members, one reading Arabic; requests with long country names and every "asked for".
QUEUE_SEED = """
import json, sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.models import Role, UserLanguage
from tests.factories import create_user, submit

with session_scope() as s:
    en = create_user(s, role=Role.staff, display_name="Queue Reader")
    ar = create_user(s, role=Role.staff, display_name="قارئة الطابور")
    ar.language = UserLanguage.ar
    wants = ["consultation", "sample_report", "expert_cv"]
    refs = [submit(s, country_of_origin=c, wants=wants).reference for c in ("CD", "BA", "KG")]
    print(json.dumps({{"en": en.email, "ar": ar.email, "refs": refs}}))
"""


def seed(service: Service) -> dict[str, str]:
    data: dict[str, str] = json.loads(run_in_service(service, SEED))
    return data


def test_staff_signs_in_finds_the_request_assigns_it_and_replies(
    new_page: Any, service: Service
) -> None:
    people = seed(service)
    ref = people["kg_ref"]
    page = new_page()
    # A staff page without a session leads to the sign-in and back.
    page.goto("/staff/queue")
    assert "/staff/sign-in" in page.url
    page.fill("#email", people["staff"])
    page.fill("#password", "not the password")
    page.click("button:has-text('Sign in')")
    assert "incorrect" in page.inner_text("#password-error")
    page.fill("#password", DEFAULT_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/staff/queue"))
    # Newest first: the service is shared, and the modules before this one may have filled
    # more than the first page of the default order (due soonest) with requests of their own.
    page.goto("/staff/queue?sort=received_desc")

    # The countdown ticks in the browser (m:ss under an hour) and the state is in words.
    row = page.locator(f"tr:has(a[href='/staff/cases/{ref}'])")
    row.wait_for()
    page.wait_for_function(
        "ref => /\\d+:\\d\\d left/.test(document.querySelector("
        "`a[href='/staff/cases/${ref}']`).closest('tr').innerText)",
        arg=ref,
    )
    assert "On track" in row.inner_text()

    # A request that arrives meanwhile appears without reloading the page.
    page.evaluate("window.__notReloaded = true")
    fresh = run_in_service(service, NEW_REQUEST)
    page.click("#queue-refresh-now")
    page.locator(f"a[href='/staff/cases/{fresh}']").wait_for()
    assert page.evaluate("window.__notReloaded") is True

    page.fill("#q", ref)
    page.click("button:has-text('Filter')")
    page.wait_for_url(re.compile(rf"q={ref}"))
    assert page.locator("table.queue tbody tr").count() == 1
    page.click(f"a[href='/staff/cases/{ref}']")
    page.wait_for_url(re.compile(rf"/staff/cases/{ref}$"))
    assert "Aigul" in page.inner_text("main")  # the decrypted request

    page.select_option("#expert_id", label="Dr Syria")
    page.fill("#assign_reason", "speaks the language")
    page.click("#assign-form button[type=submit]")  # "Send the offer": it offers, not assigns
    page.wait_for_url(re.compile(r"done=assigned"))
    assert "The request is offered to the expert." in page.inner_text(".flash")
    assert "Dr Syria" in page.inner_text("#routing")

    page.click("#reply-form button[type=submit]")  # empty: refused next to the field
    assert "empty" in page.inner_text("#reply_body-error")
    assert page.get_attribute("#reply_body", "aria-invalid") == "true"
    page.fill("#reply_body", "Thank you for writing. An expert will call you today.")
    page.click("#reply-form button[type=submit]")  # the exact e-mail first, then sent
    page.wait_for_selector("#preview-text")
    assert "An expert will call you today." in page.inner_text("#preview-text")
    page.click("#send-form button[type=submit]")
    page.wait_for_url(re.compile(r"done=reply"))
    assert "An expert will call you today." in page.inner_text("#conversation")
    assert "Answered in time" in page.inner_text("#case-sla")
    history = page.text_content("#history") or ""  # folded: read, not seen
    assert "Reply queued" in history and "Nadia Staff" in history


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_the_queue_at_360_px_is_one_card_per_request_without_sideways_scroll(
    new_page: Any, service: Service, lang: str
) -> None:
    seeded = json.loads(run_in_service(service, QUEUE_SEED))
    page = new_page(
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
        java_script_enabled=False,
    )
    sign_in(page, seeded[lang])
    page.wait_for_url(re.compile(r"/staff/queue"))
    assert page.get_attribute("html", "lang") == lang
    fits_360(page)
    row = page.locator(f"tr:has(a[href='/staff/cases/{seeded['refs'][0]}'])")
    # One card per request: the row a block, each cell named by its column.
    assert row.evaluate("r => getComputedStyle(r).display") == "block"
    country = row.locator("td[data-label]").nth(2)
    label = country.evaluate("c => getComputedStyle(c, '::before').content")
    assert ("Country" if lang == "en" else "البلد") in label
    page.goto(f"/staff/queue?q={seeded['refs'][1]}")
    fits_360(page)


def test_an_expert_sees_only_their_own(new_page: Any, service: Service) -> None:
    people = seed(service)
    page = new_page(viewport={"width": 390, "height": 800})
    sign_in(page, people["kg"])
    page.wait_for_url(re.compile(r"/expert/assignments"))
    listing = page.inner_text("main")
    assert people["kg_ref"] in listing
    assert people["sy_ref"] not in listing
    # Accept: the person's details appear.
    page.locator(f"li.card:has(a[href='/expert/cases/{people['kg_ref']}'])").locator(
        "button:has-text('Accept')"
    ).click()
    page.wait_for_url(re.compile(rf"/expert/cases/{people['kg_ref']}\?done=accepted"))
    assert "Aigul" in page.inner_text("main")
    # Another expert's request is not there at all, and staff pages are not for experts.
    resp = page.goto(f"/expert/cases/{people['sy_ref']}")
    assert resp is not None and resp.status == 404
    assert "Aigul" not in page.inner_text("main")
    resp = page.goto("/staff/queue")
    assert resp is not None and resp.status == 403
    page.goto("/expert/notifications")
    assert people["kg_ref"] in page.inner_text("main")
    assert people["sy_ref"] not in page.inner_text("main")


def test_axe_finds_no_serious_violations_on_the_desk_pages(new_page: Any, service: Service) -> None:
    _require(AXE, "axe-core (npm)")
    people = seed(service)
    # bypass_csp: the page's CSP rightly refuses injected scripts; axe is the test's own.
    page = new_page(bypass_csp=True)
    sign_in(page, people["staff"])
    page.wait_for_url(re.compile(r"/staff/queue"))
    found = {"queue": _axe_serious(page, "staff_queue")}
    page.goto(f"/staff/cases/{people['kg_ref']}")
    page.click("#reply-form button[type=submit]")  # with an error shown next to its field
    page.wait_for_selector("#reply_body-error")
    found["case"] = _axe_serious(page, "staff_case")
    expert = new_page(bypass_csp=True)
    sign_in(expert, people["kg"])
    expert.wait_for_url(re.compile(r"/expert/assignments"))
    found["assignments"] = _axe_serious(expert, "expert_assignments")
    expert.goto("/expert/availability")
    found["availability"] = _axe_serious(expert, "expert_availability")
    assert all(v == [] for v in found.values()), found
