"""The application form in steps in a real browser (Chromium): the whole journey at 360 px in
Russian and Arabic (screenshots in ``artifacts/apply-steps-<lang>-*.png``), a mistake shown in
a focused summary, answers kept on the browser's back button and the pages' Back links, a
change from the check page, axe on every step, the law firm's branch without JavaScript, and
the clicks and typed fields it takes to apply, before (one page) and after (steps)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import AXE, Timer, _axe_serious, _require, fits_360
from tests.processes import ROOT

pytestmark = pytest.mark.slow

SHOTS = ROOT / "artifacts"
PHONE = {"width": 360, "height": 740}
STEP_TITLES_EN = {"Who you are", "How to reach you", "Your case", "What you need"}


class Counted:
    """Does what a person does on the page and counts it: ``clicks`` (a radio, a box, a
    choice in a list, a button or link) and ``typed`` (text fields typed into)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.clicks = 0
        self.typed = 0

    def type(self, selector: str, text: str) -> None:
        self.page.fill(selector, text)
        self.typed += 1

    def check(self, selector: str) -> None:
        self.page.check(selector)
        self.clicks += 1

    def choose(self, selector: str, value: str) -> None:
        self.page.select_option(selector, value)
        self.clicks += 1

    def click(self, selector: str) -> None:
        self.page.click(selector)
        self.clicks += 1


def _screens(page: Any) -> float:
    """How many phone screens the page is tall."""
    height = float(page.evaluate("document.documentElement.scrollHeight"))
    return round(height / PHONE["height"], 1)


def _step(page: Any, lang: str, n: int, name: str, axe: bool) -> list[Any]:
    """At a step: 360 px without sideways scroll, in the page's language, a screenshot; axe's
    serious findings (when asked)."""
    fits_360(page)
    assert page.get_attribute("html", "lang") == lang
    assert page.title() not in STEP_TITLES_EN
    page.screenshot(path=str(SHOTS / f"apply-steps-{lang}-{n}-{name}.png"), full_page=True)
    return _axe_serious(page, f"apply_steps_{lang}_{name}") if axe else []


@pytest.mark.parametrize("lang", ["ru", "ar"])
def test_the_whole_journey_at_360_px_with_back_change_and_axe(new_page: Any, lang: str) -> None:
    _require(AXE, "axe-core (npm)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    # bypass_csp: the page's CSP rightly refuses injected scripts; axe is the test's own.
    page = new_page(viewport=PHONE, locale=lang, bypass_csp=True)
    found: dict[str, list[Any]] = {}
    page.goto(f"/apply?lang={lang}")
    if lang == "ar":
        assert page.get_attribute("html", "dir") == "rtl"
    found["who"] = _step(page, lang, 1, "who", True)
    page.fill("#f-full_name", f"Айгерим {lang}")
    page.click("#continue")
    timer = Timer()  # the fill time counts from the first answer

    # A mistake: the summary comes first, is focused and names the field.
    page.wait_for_url(re.compile(r"/apply/contact"))
    page.select_option("#f-country_of_residence", "DE")
    page.fill("#f-email", "not an address")
    page.check("#f-preferred_channel-email")
    page.click("#continue")
    page.wait_for_selector("#error-summary")
    expect(page.locator("#error-summary")).to_be_focused()
    assert page.locator("#error-summary a[href='#f-email']").count() == 1
    assert page.get_attribute("#f-email", "aria-invalid") == "true"
    found["contact_error"] = _step(page, lang, 2, "contact-error", True)
    page.fill("#f-email", f"steps-{lang}-{time.time_ns()}@example.org")
    assert page.input_value("#f-timezone") == "Asia/Bishkek"  # the browser's, by public.js
    assert page.input_value("#f-language") == lang  # replies in the page's language
    found["contact"] = _step(page, lang, 2, "contact", True)
    page.click("#continue")

    page.wait_for_url(re.compile(r"/apply/case"))
    page.select_option("#f-country_of_origin", "KG")
    page.select_option("#f-case_stage", "refused_appeal")
    page.check("#f-topics-political_repression")
    found["case"] = _step(page, lang, 3, "case", True)
    page.click("#continue")

    # The browser's back button and the page's Back link: every answer is still there.
    page.wait_for_url(re.compile(r"/apply/needs"))
    page.go_back()
    page.wait_for_url(re.compile(r"/apply/case"))
    assert page.input_value("#f-country_of_origin") == "KG"
    assert page.is_checked("#f-topics-political_repression")
    page.click("#back-link")
    page.wait_for_url(re.compile(r"/apply/contact"))
    assert page.input_value("#f-email").startswith(f"steps-{lang}-")
    page.go_back()  # the link made a new entry: back is the case again, still answered
    page.wait_for_url(re.compile(r"/apply/case"))
    assert page.input_value("#f-case_stage") == "refused_appeal"
    page.click("#continue")

    page.wait_for_url(re.compile(r"/apply/needs"))
    page.check("#f-wants-consultation")
    found["needs"] = _step(page, lang, 4, "needs", True)
    page.click("#continue")

    # Check your answers, then a change that comes back here.
    page.wait_for_url(re.compile(r"/apply/check"))
    found["check"] = _step(page, lang, 5, "check", True)
    assert "Айгерим" in page.inner_text("#answer-full_name")
    page.click("#change-full_name")
    page.wait_for_url(re.compile(r"/apply\?lang=.*change=1"))
    page.fill("#f-full_name", f"Айгерим Изменённая {lang}")
    page.click("#continue")
    page.wait_for_url(re.compile(r"/apply/check"))
    assert "Изменённая" in page.inner_text("#answer-full_name")
    page.click("#continue")

    page.wait_for_url(re.compile(r"/apply/send"))
    page.check("#f-consent_data_processing")
    found["send"] = _step(page, lang, 6, "send", True)
    timer.wait()
    page.click("#continue")
    page.wait_for_selector("#reference")
    fits_360(page)
    page.screenshot(path=str(SHOTS / f"apply-steps-{lang}-7-sent.png"), full_page=True)
    assert re.match(r"^[0-9A-Z]{8}$", page.inner_text("#reference").strip())
    # The draft is gone: the first step is empty again.
    page.goto(f"/apply?lang={lang}")
    assert page.input_value("#f-full_name") == ""
    assert all(v == [] for v in found.values()), found


def test_a_law_firm_applies_without_javascript(new_page: Any) -> None:
    page = new_page(viewport=PHONE, java_script_enabled=False)
    page.goto("/apply?lang=en")
    page.check("#f-requester_type-law_firm")
    page.fill("#f-full_name", "Client Without Script")
    page.click("#continue")
    timer = Timer()
    page.wait_for_url(re.compile(r"/apply/firm"))
    fits_360(page)
    page.click("#continue")  # the firm's name is required: the summary, without script
    page.wait_for_selector("#error-summary a[href='#f-law_firm_name']")
    page.fill("#f-law_firm_name", "Smith & Partners")
    page.click("#continue")
    page.wait_for_url(re.compile(r"/apply/contact"))
    page.select_option("#f-country_of_residence", "GB")
    page.fill("#f-email", f"nojs-{time.time_ns()}@example.org")
    page.check("#f-preferred_channel-email")
    page.select_option("#f-timezone", "Europe/London")  # no script to fill it in
    page.click("#continue")
    page.wait_for_url(re.compile(r"/apply/case"))
    page.select_option("#f-country_of_origin", "SY")
    page.select_option("#f-case_stage", "not_filed")
    page.click("#continue")
    page.wait_for_url(re.compile(r"/apply/needs"))
    page.check("#f-wants-sample_report")
    page.click("#continue")
    page.wait_for_url(re.compile(r"/apply/check"))
    assert "Smith & Partners" in page.inner_text("#answer-law_firm_name")
    fits_360(page)
    page.click("#continue")
    page.check("#f-consent_data_processing")
    timer.wait()
    page.click("#continue")
    page.wait_for_selector("#reference")
    fits_360(page)


def test_clicks_and_typed_fields_to_apply_before_and_after(new_page: Any) -> None:
    """The same answers (an applicant asking for a consultation) on the one-page form and
    through the steps; the numbers go to ``artifacts/apply-steps-measured.json``."""
    page = new_page(viewport=PHONE)
    page.goto("/apply/all?lang=en")
    timer = Timer()
    one = Counted(page)
    screens_one = _screens(page)
    one.type("#f-full_name", "Measured Once")
    one.type("#f-email", f"once-{time.time_ns()}@example.org")
    one.check("#f-preferred_channel-email")
    one.choose("#f-country_of_origin", "KG")
    one.choose("#f-country_of_residence", "GB")
    one.choose("#f-case_stage", "filed_pending")
    one.check("#f-wants-consultation")
    one.check("#f-consent_data_processing")
    timer.wait()
    one.click("button[type=submit]")
    page.wait_for_selector("#reference")

    page = new_page(viewport=PHONE)
    steps = Counted(page)
    screens: list[float] = []
    page.goto("/apply?lang=en")
    screens.append(_screens(page))
    steps.type("#f-full_name", "Measured Steps")
    steps.click("#continue")
    timer = Timer()
    page.wait_for_url(re.compile(r"/apply/contact"))
    screens.append(_screens(page))
    steps.choose("#f-country_of_residence", "GB")
    steps.type("#f-email", f"steps-{time.time_ns()}@example.org")
    steps.check("#f-preferred_channel-email")
    steps.click("#continue")
    page.wait_for_url(re.compile(r"/apply/case"))
    screens.append(_screens(page))
    steps.choose("#f-country_of_origin", "KG")
    steps.choose("#f-case_stage", "filed_pending")
    steps.click("#continue")
    page.wait_for_url(re.compile(r"/apply/needs"))
    screens.append(_screens(page))
    steps.check("#f-wants-consultation")
    steps.click("#continue")
    page.wait_for_url(re.compile(r"/apply/check"))
    screens.append(_screens(page))
    steps.click("#continue")
    page.wait_for_url(re.compile(r"/apply/send"))
    screens.append(_screens(page))
    steps.check("#f-consent_data_processing")
    timer.wait()
    steps.click("#continue")
    page.wait_for_selector("#reference")

    measured = {
        "one_page": {"clicks": one.clicks, "typed": one.typed, "screens_at_360": screens_one},
        "steps": {
            "clicks": steps.clicks,
            "typed": steps.typed,
            "pages": len(screens),
            "screens_at_360_per_page": screens,
        },
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "apply-steps-measured.json").write_text(json.dumps(measured, indent=1))
    print(json.dumps(measured))
    assert one.typed == steps.typed == 2  # nothing asked twice
    assert steps.clicks == one.clicks + 5  # one Continue per page, nothing else more
    assert max(screens) < screens_one  # each page shorter than the one page
