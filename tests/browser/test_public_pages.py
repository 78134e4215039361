"""The public pages in a real browser (Chromium): apply with mistakes and fix them, Arabic
right to left, 360 px, without JavaScript, quick exit, the link's cookie, withdraw, honeypot and
fill time, and an axe-core accessibility check."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, AXE, Timer, _require, fill_valid
from tests.processes import Service

pytestmark = pytest.mark.slow

REFERENCE = re.compile(r"^[0-9A-Z]{8}$")


def _confirmed(page: Any) -> tuple[str, str]:
    page.wait_for_selector("#reference")
    reference = page.inner_text("#reference").strip()
    link = page.inner_text("#private-link").strip()
    assert REFERENCE.match(reference), reference
    assert re.search(rf"/r/{reference}#token=rl_[A-Za-z0-9_-]+$", link), link
    return reference, link


def _invalid(page: Any, field: str) -> str:
    """The control is marked invalid and described by its visible error; returns the text."""
    control = page.locator(f"#f-{field}")
    assert control.get_attribute("aria-invalid") == "true", field
    described = (control.get_attribute("aria-describedby") or "").split()
    assert f"f-{field}-error" in described, (field, described)
    error = page.locator(f"#f-{field}-error")
    assert error.is_visible()
    return str(error.inner_text())


def test_apply_with_mistakes_shows_errors_by_the_fields_then_a_reference(new_page: Any) -> None:
    page = new_page()
    page.goto("/apply/all?lang=en")
    timer = Timer()
    # The browser's zone (Asia/Bishkek in this context) is pre-selected by public.js.
    assert page.input_value("#f-timezone") == "Asia/Bishkek"
    fill_valid(page, email="not an address")
    page.fill("#f-full_name", "   ")
    page.check("#f-preferred_channel-phone")
    page.uncheck("#f-consent_data_processing")
    timer.wait()
    page.click("button[type=submit]")
    page.wait_for_selector("#error-summary")
    assert page.title().startswith("Error: ")
    # Moved by the deferred script, possibly after the summary shows: wait for it.
    expect(page.locator("#error-summary")).to_be_focused()
    assert "e-mail address" in _invalid(page, "email")
    assert "required" in _invalid(page, "full_name").lower()
    assert "preferred way" in _invalid(page, "phone")
    assert "consent" in _invalid(page, "consent_data_processing")
    assert page.input_value("#f-email") == "not an address"  # answers are kept
    # Fix them.
    timer = Timer()
    page.fill("#f-full_name", "Aigerim Test")
    page.fill("#f-email", "aigerim@example.org")
    page.fill("#f-phone", "+996 555 123 456")
    page.check("#f-consent_data_processing")
    timer.wait()
    page.click("button[type=submit]")
    _confirmed(page)
    assert "shown only once" in page.inner_text("main")


def test_arabic_is_laid_out_right_to_left(new_page: Any) -> None:
    page = new_page(locale="ar")
    page.goto("/apply/all")  # Accept-Language from the browser's locale
    timer = Timer()
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.get_attribute("html", "lang") == "ar"
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    # Right-aligned: the label's text ends at the control's right edge, far from its left.
    text_left, text_right, left, right = page.evaluate(
        """() => {
          const range = document.createRange();
          range.selectNodeContents(document.querySelector('label[for=f-full_name]'));
          const t = range.getBoundingClientRect();
          const c = document.getElementById('f-full_name').getBoundingClientRect();
          return [t.left, t.right, c.left, c.right];
        }"""
    )
    assert abs(text_right - right) < 4, (text_right, right)
    assert text_left > left + 40, (text_left, left)
    exit_box = page.locator("#quick-exit").bounding_box()
    assert exit_box is not None and exit_box["x"] < 200  # the exit sits at the far (left) end
    fill_valid(page, email="خطأ")
    timer.wait()
    page.click("button[type=submit]")
    page.wait_for_selector("#error-summary")
    assert "اكتب عنوان بريد إلكتروني صحيحًا" in _invalid(page, "email")
    timer = Timer()
    page.fill("#f-email", "arabic@example.org")
    timer.wait()
    page.click("button[type=submit]")
    _confirmed(page)
    assert page.get_attribute("html", "dir") == "rtl"
    assert "يُعرض هذا الرابط مرة واحدة فقط" in page.inner_text("main")


@pytest.mark.parametrize("path", ["/apply/all?lang=en", "/apply/all?lang=ar", "/privacy?lang=ru"])
def test_at_360_px_nothing_scrolls_sideways(new_page: Any, path: str) -> None:
    page = new_page(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page.goto(path)
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == 360, widths
    assert page.locator("#quick-exit").is_visible()


def test_the_form_and_the_link_work_without_javascript(new_page: Any) -> None:
    page = new_page(java_script_enabled=False)
    page.goto("/apply/all?lang=es")
    timer = Timer()
    assert page.input_value("#f-timezone") == ""  # nothing detected without JavaScript
    fill_valid(page)
    page.select_option("#f-timezone", "America/Bogota")
    timer.wait()
    page.click("button[type=submit]")
    reference, link = _confirmed(page)
    # The link's fragment needs JavaScript; without it the page asks to paste the link.
    page.goto(f"/r/{reference}")
    page.fill("#f-token", link)
    page.click("#open-form button[type=submit]")
    page.wait_for_selector("#status")
    assert page.url.endswith(f"/r/{reference}")
    assert page.get_attribute("html", "lang") == "es"  # the language the request was made in
    assert page.get_attribute("#status", "data-status") == "new"


def test_quick_exit_leaves_and_replaces_the_page_in_history(
    new_page: Any, service: Service
) -> None:
    page = new_page()
    page.goto("/privacy")
    page.goto("/apply/all")
    page.click("#quick-exit")
    exit_url = f"http://localhost:{service.port}/healthz"
    page.wait_for_url(exit_url)
    page.go_back()
    assert page.url.endswith("/privacy"), page.url  # /apply is no longer in the history


def test_the_link_keeps_the_token_in_a_cookie_and_strips_it_then_withdraw(
    new_page: Any, service: Service
) -> None:
    page = new_page()
    page.goto("/apply/all")
    timer = Timer()
    fill_valid(page)
    timer.wait()
    page.click("button[type=submit]")
    reference, _ = _confirmed(page)
    page.click("#open-request")  # /r/<ref>#token=rl_...
    page.wait_for_selector("#status")
    assert page.url == f"{service.url}/r/{reference}"
    assert "token" not in page.evaluate("location.href")
    cookies = {c["name"]: c for c in page.context.cookies()}
    link = cookies["requester_link"]
    assert link["value"].startswith("rl_")
    assert link["httpOnly"] and link["secure"] and link["sameSite"] == "Strict"
    assert link["path"] == f"/r/{reference}"
    assert page.evaluate("document.cookie") == ""  # nothing readable by scripts
    # Withdraw: first without the confirmation, then with it.
    page.click("#withdraw button[type=submit]")
    assert "Tick the box" in page.inner_text("#f-confirm-error")
    page.check("#f-confirm")
    page.click("#withdraw button[type=submit]")
    page.wait_for_selector("#status[data-status=withdrawn]")
    assert page.locator("#withdraw").count() == 0


def test_a_bot_filling_the_honeypot_or_sending_at_once_stores_nothing(new_page: Any) -> None:
    page = new_page()
    page.goto("/apply/all")
    page.fill("#f-full_name", "Quick Bot")
    page.click("button[type=submit]")  # at once: faster than a person
    page.wait_for_selector("#form-notice")
    assert page.locator("#reference").count() == 0
    assert page.input_value("#f-full_name") == "Quick Bot"
    timer = Timer()
    fill_valid(page)
    page.evaluate("document.getElementById('f-website').value = 'http://spam.example'")
    timer.wait()
    page.click("button[type=submit]")
    page.wait_for_selector("#form-notice")
    assert page.locator("#reference").count() == 0
    # Laid out with the stylesheet: the new page's elements can be there before it loaded.
    page.wait_for_load_state("load")
    hp = page.locator(".hp")
    assert hp.get_attribute("aria-hidden") == "true"
    assert page.get_attribute("#f-website", "tabindex") == "-1"
    box = hp.bounding_box()
    assert box is not None and box["width"] <= 1 and box["height"] <= 1
    # A person sending the same form again, after a moment, gets through.
    timer = Timer()
    timer.wait()
    page.click("button[type=submit]")
    _confirmed(page)


@pytest.mark.parametrize("path", ["/apply/all?lang=en", "/apply/all?lang=ar", "/privacy?lang=en"])
def test_axe_finds_no_serious_violations(new_page: Any, path: str) -> None:
    _require(AXE, "axe-core (npm)")
    # bypass_csp: the page's CSP rightly refuses injected scripts; axe is the test's own.
    page = new_page(bypass_csp=True)
    page.goto(path)
    if path.startswith("/apply"):  # check the page with its errors shown too
        fill_valid(page, email="bad")
        page.uncheck("#f-consent_data_processing")
        page.wait_for_timeout(2200)
        page.click("button[type=submit]")
        page.wait_for_selector("#error-summary")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"\W+", "_", path)
    (ARTIFACTS / f"axe{name}.json").write_text(json.dumps(result["violations"], indent=1))
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], bad
    assert len(result["passes"]) > 10  # axe did check the page
    # The harness itself: a control without a label is found.
    page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<input id=zz>')")
    probe = page.evaluate("axe.run('#zz', {resultTypes: ['violations']})")
    assert "label" in {v["id"] for v in probe["violations"]}
    page.evaluate("document.getElementById('zz').remove()")


@pytest.mark.parametrize("form", ["fragment", "query"])
def test_the_link_opens_when_clicked_on_another_site(
    new_page: Any, service: Service, form: str
) -> None:
    """As from a webmail: a navigation started by another site (localhost is another site
    than 127.0.0.1), where SameSite=Strict cookies are not sent along a redirect chain."""
    page = new_page()
    page.goto("/apply/all")
    timer = Timer()
    fill_valid(page)
    timer.wait()
    page.click("button[type=submit]")
    reference, link = _confirmed(page)
    token = link.split("#token=", 1)[1]
    target = link if form == "fragment" else f"{service.url}/r/{reference}?token={token}"
    other = page.context.new_page()
    other.goto(f"http://localhost:{service.port}/privacy")
    other.evaluate("url => { window.location.href = url; }", target)
    other.wait_for_selector("#status", timeout=10000)
    assert other.url == f"{service.url}/r/{reference}"
    page.close()
