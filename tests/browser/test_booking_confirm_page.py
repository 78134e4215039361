"""The booking confirm step in a real browser (Chromium): choosing a time holds it and shows
date, time, zone in words, length and the expert's public name; "Confirm" books it; while it
is held another requester is not offered it, the holder still is; Russian and Arabic (right to
left) screenshots under ``artifacts/browser/``; axe-core finds nothing serious; 360 px wide.
The clicks it takes to book from the request page are counted (before the confirm step: two)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ARTIFACTS, AXE, _require, fits_360
from tests.factories import form
from tests.processes import Service, create_admin, sign_in

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "confirm-admin@example.org"
ADMIN_PASSWORD = "correct horse battery staple 43"
COUNTRY = "MN"  # no other browser module's expert covers it: the pool is this expert alone
ZONE = "Europe/Berlin"
EXPERT_NAME = "Dr Confirmation"
WORDS = {
    "en": ("Confirm your consultation", "Berlin time", "60 minutes"),
    "ru": ("Подтвердите консультацию", "часовой пояс: Берлин", "60 минут"),
    "ar": ("أكِّدوا استشارتكم", "توقيت برلين", "60 دقيقة"),
}


@pytest.fixture(scope="module")
def expert(service: Service) -> str:
    """An expert for Mongolia, every day 08:00-20:00 Berlin time, 60-minute consultations."""
    create_admin(service.cwd, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    headers = sign_in(service.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    with httpx.Client(base_url=service.url, headers=headers, timeout=15) as api:
        user = api.post(
            "/api/v1/admin/users",
            json={"email": "dr.confirm@example.org", "display_name": "Dr C", "role": "expert"},
        )
        assert user.status_code == 201, user.text
        expert_id = user.json()["id"]
        profile = api.post(
            "/api/v1/admin/experts",
            json={
                "user_id": expert_id,
                "public_name": EXPERT_NAME,
                "email": "dr.confirm@example.org",
                "timezone": ZONE,
                "countries": [COUNTRY],
                "personal_meeting_link": "https://meet.example.org/dr-confirm",
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


class Clicks:
    """Clicks a person makes, counted."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.count = 0

    def click(self, target: Any) -> None:
        self.count += 1
        if isinstance(target, str):
            self.page.click(target)
        else:
            target.click()


def _open_request(page: Any, service: Service, lang: str) -> str:
    body = form(timezone=ZONE, language=lang, country_of_origin=COUNTRY)
    resp = httpx.post(f"{service.url}/api/v1/requests", json=body, timeout=15)
    assert resp.status_code == 201, resp.text
    data = resp.json()
    page.goto(f"/r/{data['reference']}?token={data['access_token']}")
    page.wait_for_selector("#status")
    return str(data["reference"])


@pytest.mark.parametrize("lang", ["ru", "ar"])
def test_book_through_the_confirm_step_in_russian_and_arabic_at_360_px(
    new_page: Any, service: Service, expert: str, lang: str
) -> None:
    _require(AXE, "axe-core (npm)")
    # bypass_csp: the page's CSP rightly refuses the injected axe script.
    page = new_page(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, bypass_csp=True
    )
    reference = _open_request(page, service, lang)
    clicks = Clicks(page)
    clicks.click("#book-link")  # "Choose a time"
    slot = page.locator("button.slot").first
    start = slot.get_attribute("data-start")
    clicks.click(slot)
    page.wait_for_selector("#held-facts")
    assert page.url.startswith(f"{service.url}/r/{reference}/book/confirm?")
    assert page.get_attribute("html", "dir") == ("rtl" if lang == "ar" else "ltr")
    heading, zone_words, length = WORDS[lang]
    assert page.inner_text("h1") == heading
    assert page.inner_text("#held-zone") == zone_words
    assert page.inner_text("#held-length") == length
    assert page.inner_text("#held-expert") == EXPERT_NAME
    assert page.inner_text("#held-day").strip()
    fits_360(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"booking_confirm_{lang}.png"), full_page=True)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    (ARTIFACTS / f"axe_booking_confirm_{lang}.json").write_text(
        json.dumps(result["violations"], indent=1)
    )
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], bad
    assert len(result["passes"]) > 10  # axe did check the page
    box = page.locator("#confirm-booking").bounding_box()
    assert box is not None and box["height"] >= 44  # a touch target
    clicks.click("#confirm-booking")
    page.wait_for_selector("#booking-facts")
    assert page.url.startswith(f"{service.url}/r/{reference}/booked?")
    fits_360(page)
    page.screenshot(path=str(ARTIFACTS / f"booking_booked_{lang}.png"), full_page=True)
    # From the request page: "Choose a time", a time, "Confirm" (two before the confirm step).
    assert clicks.count == 3
    (ARTIFACTS / f"booking_clicks_{lang}.txt").write_text(f"{clicks.count}\n")
    page.goto(f"/r/{reference}")
    assert page.get_attribute("#booking", "data-booked") == start


def test_a_held_time_is_hidden_from_others_and_not_from_its_holder(
    new_page: Any, service: Service, expert: str
) -> None:
    mine, theirs = new_page(), new_page()
    _open_request(mine, service, "en")
    _open_request(theirs, service, "en")
    mine.click("#book-link")
    theirs.click("#book-link")
    slot = mine.locator("button.slot").nth(1)
    start = slot.get_attribute("data-start")
    slot.click()
    mine.wait_for_selector("#held-facts")
    assert mine.inner_text("h1") == WORDS["en"][0]
    theirs.reload()
    theirs.wait_for_selector("button.slot")
    assert theirs.locator(f"button.slot[data-start='{start}']").count() == 0
    # "Choose another time" goes back to the list, where the holder still sees it ...
    mine.click("#choose-another")
    mine.wait_for_selector("button.slot")
    assert mine.locator(f"button.slot[data-start='{start}']").count() == 1
    # ... and, released, everyone does again.
    theirs.reload()
    theirs.wait_for_selector("button.slot")
    assert theirs.locator(f"button.slot[data-start='{start}']").count() == 1
