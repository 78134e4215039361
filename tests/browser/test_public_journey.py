"""The requester's journey in a real browser (Chromium), in English, Russian and Arabic: the
lost-link page at 360 px, a refused withdrawal opening at its focused error summary, the quick
exit on Escape pressed three times, and axe-core on the changed pages."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, AXE, _axe_serious, _require
from tests.factories import form
from tests.processes import Service

pytestmark = pytest.mark.slow

LANGS = ["en", "ru", "ar"]
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _opened(page: Any, service: Service, lang: str) -> str:
    """A request sent through the API in ``lang``, opened from its link; returns its reference."""
    reply = httpx.post(
        f"{service.url}/api/v1/requests", json=form(language=lang, email=f"{lang}@example.org")
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    page.goto(f"/r/{body['reference']}#token={body['access_token']}")
    page.wait_for_selector("#status")
    return str(body["reference"])


def _no_sideways_scroll(page: Any) -> None:
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == 360, widths


@pytest.mark.parametrize("lang", LANGS)
def test_the_lost_link_page_works_at_360_px(new_page: Any, service: Service, lang: str) -> None:
    page = new_page(**PHONE)
    page.goto(f"/apply/all?lang={lang}")
    page.click("#recover-link")  # every requester page's footer links to it
    page.wait_for_selector("#recover-form")
    assert page.get_attribute("html", "lang") == lang
    _no_sideways_scroll(page)
    # Mistakes: the summary on top has the focus and links to the fields.
    page.fill("#f-email", "not an address")
    page.click("#recover-form button[type=submit]")
    page.wait_for_selector("#error-summary")
    expect(page.locator("#error-summary")).to_be_focused()
    assert page.locator("#error-summary a[href='#f-reference']").count() == 1
    _no_sideways_scroll(page)
    _shot(page, f"recover_errors_{lang}")
    page.fill("#f-reference", "ZZZZZZZZ")
    page.fill("#f-email", "nobody@example.org")
    page.click("#recover-form button[type=submit]")
    page.wait_for_selector("#recover-sent")
    assert page.url.endswith(f"/recover?lang={lang}&sent=1#recover-sent")
    _no_sideways_scroll(page)


@pytest.mark.parametrize("lang", LANGS)
def test_withdraw_without_the_tick_focuses_the_summary_at_the_top(
    new_page: Any, service: Service, lang: str
) -> None:
    page = new_page()
    reference = _opened(page, service, lang)
    page.click("#withdraw button[type=submit]")
    page.wait_for_selector("#error-summary")
    expect(page.locator("#error-summary")).to_be_focused()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    # In view at the top, not a thousand pixels below.
    box = page.locator("#error-summary").bounding_box()
    assert box is not None and 0 <= box["y"] < 400, box
    page.click("#error-summary a[href='#f-confirm']")
    assert page.url.endswith("#f-confirm")
    assert page.get_attribute("#status", "data-status") == "new"  # nothing withdrawn
    assert f"/r/{reference}/withdraw" in page.url
    _shot(page, f"withdraw_error_{lang}")


def test_withdraw_without_javascript_still_opens_at_the_summary(
    new_page: Any, service: Service
) -> None:
    page = new_page()
    reference = _opened(page, service, "ru")  # the link's fragment needs JavaScript
    plain = page.context.browser.new_context(
        java_script_enabled=False, base_url=service.url, viewport={"width": 800, "height": 600}
    )
    plain.add_cookies(page.context.cookies())
    other = plain.new_page()
    other.goto(f"/r/{reference}")
    other.click("#withdraw button[type=submit]")
    other.wait_for_selector("#error-summary")
    assert other.url.endswith("#error-summary")
    box = other.locator("#error-summary").bounding_box()
    assert box is not None and 0 <= box["y"] < 400, box
    _shot(other, "withdraw_error_no_js_ru")
    plain.close()


@pytest.mark.parametrize("lang", LANGS)
def test_escape_three_times_leaves_the_page(new_page: Any, service: Service, lang: str) -> None:
    page = new_page()
    page.goto("/privacy")
    page.goto(f"/apply/all?lang={lang}")
    hint = page.locator("#quick-exit-hint")
    assert hint.count() == 1 and page.get_attribute("#quick-exit", "aria-describedby") == (
        "quick-exit-hint"
    )
    _shot(page, f"quick_exit_{lang}")
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    # leave() blanks the page at once, in the key's own handler: twice is not enough.
    assert page.evaluate("document.body.hidden") is False
    page.keyboard.press("Escape")
    page.wait_for_url(f"http://localhost:{service.port}/healthz")
    page.go_back()
    assert page.url.endswith("/privacy"), page.url  # replaced in the history


def test_escape_presses_far_apart_do_not_leave(new_page: Any) -> None:
    page = new_page()
    page.goto("/apply/all?lang=en")
    page.clock.install()
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.clock.run_for(2000)
    page.keyboard.press("Escape")
    # leave() blanks the page at once, in the key's own handler.
    assert page.evaluate("document.body.hidden") is False
    assert page.url.endswith("/apply/all?lang=en")


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_axe_finds_no_serious_violations_on_the_changed_pages(
    new_page: Any, service: Service, lang: str
) -> None:
    _require(AXE, "axe-core (npm)")
    page = new_page(bypass_csp=True)
    found = {}
    page.goto(f"/recover?lang={lang}")
    page.click("#recover-form button[type=submit]")
    page.wait_for_selector("#error-summary")
    found["recover"] = _axe_serious(page, f"recover_{lang}")
    _opened(page, service, lang)
    page.click("#withdraw button[type=submit]")
    page.wait_for_selector("#error-summary")
    found["withdraw"] = _axe_serious(page, f"withdraw_{lang}")
    page.goto(f"/apply/all?lang={lang}")
    assert re.search(r"<optgroup", page.content())
    found["apply"] = _axe_serious(page, f"apply_zones_{lang}")
    assert all(v == [] for v in found.values()), found
