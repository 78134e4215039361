"""The booking pages in a real browser (Chromium): the e-mail's booking link, book a slot, then
reschedule and cancel it from the request page; without JavaScript; at 360 px; Arabic right to
left; axe-core on the book page. The expert and their hours are set up over the real API by an
admin made with ``asylum-intake create-admin``, as an operator would."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, AXE, _require
from tests.factories import form
from tests.processes import Service, create_admin, sign_in

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "booking-admin@example.org"
ADMIN_PASSWORD = "correct horse battery staple 42"
LINK = "https://meet.example.org/dr-browser"
ZONE = "Asia/Bishkek"
# No other browser module's expert covers it: requests sent here reach this module's expert
# whichever modules shared the service before (another's expert without hours has no slots).
COUNTRY = "GE"


@pytest.fixture(scope="module")
def expert(service: Service) -> str:
    """An expert for Georgia, every day 08:00-20:00 London time, with a personal link."""
    create_admin(service.cwd, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    headers = sign_in(service.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    with httpx.Client(base_url=service.url, headers=headers, timeout=15) as api:
        user = api.post(
            "/api/v1/admin/users",
            json={"email": "dr.browser@example.org", "display_name": "Dr B", "role": "expert"},
        )
        assert user.status_code == 201, user.text
        expert_id = user.json()["id"]
        profile = api.post(
            "/api/v1/admin/experts",
            json={
                "user_id": expert_id,
                "public_name": "Dr Browser",
                "email": "dr.browser@example.org",
                "timezone": "Europe/London",
                "countries": [COUNTRY],
                "personal_meeting_link": LINK,
            },
        )
        assert profile.status_code == 201, profile.text
        hours = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]
        availability = api.put(
            f"/api/v1/experts/{expert_id}/availability",
            json={"weekly": hours, "slot_minutes": 60},
        )
        assert availability.status_code == 200, availability.text
    return str(expert_id)


def _request(service: Service, **overrides: Any) -> tuple[str, str]:
    body = form(timezone=ZONE, country_of_origin=COUNTRY, **overrides)
    resp = httpx.post(f"{service.url}/api/v1/requests", json=body, timeout=15)
    assert resp.status_code == 201, resp.text
    data = resp.json()
    return str(data["reference"]), str(data["access_token"])


def _open_book_page(page: Any, service: Service, lang: str = "en") -> str:
    """As the booking e-mail's link does: /r/<ref>/book#token=...; returns the reference."""
    reference, token = _request(service, language=lang)
    page.goto(f"/r/{reference}/book#token={token}")
    page.wait_for_selector("button.slot")
    assert page.url == f"{service.url}/r/{reference}/book"  # in the request's language
    assert "token" not in page.evaluate("location.href")
    return reference


def test_book_a_slot_from_the_emails_link(new_page: Any, service: Service, expert: str) -> None:
    page = new_page()
    reference = _open_book_page(page, service)
    assert page.get_attribute("#slots", "data-zone") == ZONE
    first_day = page.locator(".day").first
    day_label = first_day.locator("h3").inner_text()
    slot = first_day.locator("button.slot").first
    start, label = slot.get_attribute("data-start"), slot.inner_text().split(",")[0].strip()
    slot.click()
    page.click("#confirm-booking")  # the confirm step: the time is held until then
    page.wait_for_selector("#booking-facts")
    assert page.url.startswith(f"{service.url}/r/{reference}/booked?")
    assert page.inner_text("h1") == "Your consultation is booked"
    assert page.inner_text("#booked-day") == day_label
    assert page.inner_text("#booked-time").startswith(label)
    assert page.get_attribute("#join-link", "href") == LINK
    # The calendar file downloads with the booked instant in UTC.
    with page.expect_download() as info:
        page.click("#add-to-calendar")
    ics = Path(info.value.path()).read_text(encoding="utf-8")
    assert start is not None
    utc = re.sub(r"[-:]", "", start.replace("+00:00", ""))
    assert f"DTSTART:{utc}Z" in ics
    page.click("#to-request")
    page.wait_for_selector("#status[data-status=consultation_scheduled]")
    assert page.get_attribute("#booking", "data-booked") == start


def test_reschedule_then_cancel_from_the_request_page(
    new_page: Any, service: Service, expert: str
) -> None:
    page = new_page()
    reference = _open_book_page(page, service)
    page.locator("button.slot").first.click()
    page.click("#confirm-booking")
    page.wait_for_selector("#booking-facts")
    page.goto(f"/r/{reference}")
    first = page.get_attribute("#booking", "data-booked")
    # Reschedule: back to the slots, choose another.
    page.click("#reschedule")
    page.wait_for_selector("#current-booking")
    other = page.locator(f"button.slot:not([data-start='{first}'])").nth(2)
    moved_to = other.get_attribute("data-start")
    other.click()
    page.click("#confirm-booking")
    page.wait_for_selector("#booking-facts")
    assert "moved to the new time" in page.inner_text("main")
    page.click("#to-request")
    page.wait_for_selector("#booking")
    assert page.get_attribute("#booking", "data-booked") == moved_to != first
    # Cancel: a confirmation step first; "no" keeps it.
    page.click("#cancel-booking")
    page.click("#keep")
    page.wait_for_selector("#booking[data-booked]")
    page.click("#cancel-booking")
    page.click("#confirm-cancel")
    page.wait_for_selector("#cancelled-message")
    assert page.locator("#booking[data-booked]").count() == 0
    assert page.get_attribute("#status", "data-status") == "in_progress"
    assert page.locator("#book-link").is_visible()


def test_a_slot_taken_meanwhile_says_so_and_offers_the_fresh_list(
    new_page: Any, service: Service, expert: str
) -> None:
    mine, theirs = new_page(), new_page()
    _open_book_page(mine, service)
    _open_book_page(theirs, service)
    slot = mine.locator("button.slot").nth(1)
    start = slot.get_attribute("data-start")
    theirs.locator(f"button.slot[data-start='{start}']").click()
    theirs.click("#confirm-booking")
    theirs.wait_for_selector("#booking-facts")
    slot.click()  # the page still offers it
    mine.wait_for_selector("#error-summary")
    assert "just been taken" in mine.inner_text("#book-error")
    # The deferred script moves the focus once the page is parsed, possibly after the summary
    # shows: wait for it rather than read the focus at once.
    expect(mine.locator("#error-summary")).to_be_focused()
    assert mine.locator(f"button.slot[data-start='{start}']").count() == 0
    assert mine.locator("button.slot").count() > 0


def test_booking_works_without_javascript(new_page: Any, service: Service, expert: str) -> None:
    reference, token = _request(service, language="es")
    page = new_page(java_script_enabled=False)
    page.goto(f"/r/{reference}?token={token}")  # the cookie, then a refresh to the clean URL
    page.wait_for_selector("#status")
    page.click("#book-link")
    page.select_option("#f-tz", "America/Bogota")
    page.click(".zone-form button[type=submit]")
    page.wait_for_selector("#slots[data-zone='America/Bogota']")
    assert page.get_attribute("html", "lang") == "es"
    page.locator("button.slot").first.click()
    page.wait_for_selector("#held-facts")
    assert "hora de Bogotá" in page.inner_text("#held-zone")
    page.click("#confirm-booking")
    page.wait_for_selector("#booking-facts")
    assert "(hora de Bogotá)" in page.inner_text("main")


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_the_book_page_fits_360_px(new_page: Any, service: Service, expert: str, lang: str) -> None:
    page = new_page(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    _open_book_page(page, service, lang)
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == 360, widths
    assert page.locator("#quick-exit").is_visible()
    assert page.get_attribute("html", "dir") == ("rtl" if lang == "ar" else "ltr")
    box = page.locator("button.slot").first.bounding_box()
    assert box is not None and box["height"] >= 44  # a touch target


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_axe_finds_no_serious_violations_on_the_book_page(
    new_page: Any, service: Service, expert: str, lang: str
) -> None:
    _require(AXE, "axe-core (npm)")
    page = new_page(bypass_csp=True)  # the page's CSP rightly refuses injected scripts
    reference = _open_book_page(page, service, lang)
    results = {}
    for name in ("book", "request"):
        if name == "request":  # the request page with a booking shown
            page.locator("button.slot").first.click()
            page.click("#confirm-booking")
            page.wait_for_selector("#booking-facts")
            page.goto(f"/r/{reference}")
            page.wait_for_selector("#booking[data-booked]")
        page.add_script_tag(path=str(AXE))
        results[name] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        (ARTIFACTS / f"axe_{name}_{lang}.json").write_text(
            json.dumps(result["violations"], indent=1)
        )
        bad = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == [], (name, bad)
        assert len(result["passes"]) > 10  # axe did check the page
