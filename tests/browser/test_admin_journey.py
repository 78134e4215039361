"""An admin's first hour, in a real browser (Chromium) on a fresh service of its own: from
``asylum-intake create-admin`` (run as README says, its printed sign-in address followed) to a
requester booking the expert the admin added, with pages only.

The admin lands on the Getting started checklist, invites an expert on the Experts page (who sets
their password through the e-mailed link), gives them a meeting link, sets their weekly hours,
uploads their CV, adds a leave, uploads a sample report for every region the expert covers,
fills the roster so that the next 7 days have no gap, turns on their own second factor, and sees
every item of the checklist ticked.
A requester then applies for Kyrgyzstan asking for a consultation and books that expert.

On the way every admin page is saved as a screenshot under ``artifacts/admin/`` (1280 px wide) and
laid out at 360 px without sideways scroll; axe checks the state no page test reaches (the
checklist all ticked): each page has its own axe test.
With ``INTAKE_DOCS_SCREENSHOTS=1`` the same run also writes the README's pictures,
``docs/images/admin-*.png`` (1280 px wide, one viewport high)::

    INTAKE_DOCS_SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_admin_journey.py -p no:randomly
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from app.core.settings import Settings
from app.core.time import now
from tests.browser.conftest import AXE, CHROMIUM, _axe_serious, _require, fill_valid
from tests.factories import tiny_pdf
from tests.mail_reader import messages, text_of
from tests.processes import ROOT, Service, free_port, run_cli, start_service, wait_for

pytestmark = pytest.mark.slow

SHOTS = ROOT / "artifacts" / "admin"
DOC_IMAGES = ROOT / "docs" / "images"
DOCS = os.environ.get("INTAKE_DOCS_SCREENSHOTS") == "1"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}

ADMIN_NAME = "Amira Haddad"
ADMIN_EMAIL = "amira.haddad@example.org"
ADMIN_PASSWORD = "tea kettle on the north window 7"
EXPERT_NAME = "Dr Aida Sadykova"
EXPERT_EMAIL = "aida.sadykova@example.org"
EXPERT_PASSWORD = "seven quiet rivers under Bishkek"
EXPERT_ZONE = "Asia/Bishkek"
MEETING_LINK = "https://meet.example.org/aida-sadykova"
AXE_HERE = ("getting-started-done",)
CHECKLIST = ("experts", "hours", "samples", "roster", "second_factor")
# The apply form refuses answers sent sooner than this after it was shown (the default here).
MIN_FILL_SECONDS = Settings.model_fields["form_min_fill_seconds"].default


@pytest.fixture(scope="module")
def fresh() -> Iterator[Service]:
    """A service of this module's own on the embedded defaults (SQLite, mail as .eml files):
    nothing in it but the seeded regions and countries. ``INTAKE_API_PORT`` is the port it
    serves, so ``create-admin`` (another process) prints the address really served."""
    _require(CHROMIUM, "Chromium")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="intake-journey-"))
    try:
        with start_service(workdir, env={"INTAKE_API_PORT": str(port)}, port=port) as svc:
            yield svc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def open_page(browser: Any, fresh: Service) -> Iterator[Callable[..., Any]]:
    """``open_page(**context_options)``: a page in a browser context of its own (one person),
    on the fresh service; the contexts close with the test."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(base_url=fresh.url, viewport=DESKTOP, **options)
        contexts.append(context)
        # Nothing leaves the machine: any other host is refused.
        context.route(
            lambda url: not url.startswith(("http://127.0.0.1:", "http://localhost:")),
            lambda route: route.abort(),
        )
        page = context.new_page()
        page.set_default_timeout(15000)
        return page

    yield make
    for context in contexts:
        context.close()


def _create_admin(svc: Service) -> str:
    """README's ``create-admin`` (the password on stdin, as for scripts); the printed address."""
    result = run_cli(
        [
            "create-admin",
            "--email",
            ADMIN_EMAIL,
            "--name",
            ADMIN_NAME,
            "--password-stdin",
        ],
        cwd=svc.cwd,
        env={"INTAKE_API_PORT": str(svc.port)},
        input=ADMIN_PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Admin created: {ADMIN_EMAIL}" in result.stdout
    found = re.search(r"^Sign in at (\S+)$", result.stdout, re.MULTILINE)
    assert found, result.stdout
    return found.group(1)


def _check(page: Any, name: str, docs_from: str = "") -> list[Any]:
    """The page as it is: a screenshot (and the README's, one viewport high, from the top or
    from ``docs_from``), axe's serious findings (returned), and no sideways scroll at 360 px."""
    page.wait_for_load_state("load")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if DOCS:
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        if docs_from:
            # Just below the page's header, which stays on top as the page scrolls.
            page.locator(docs_from).evaluate(
                "e => window.scrollTo(0, e.getBoundingClientRect().top + window.scrollY"
                " - document.querySelector('header').offsetHeight - 16)"
            )
        page.screenshot(path=str(DOC_IMAGES / f"admin-{name}.png"), full_page=False)
        page.evaluate("window.scrollTo(0, 0)")
    # Every admin page has its own axe test with seeded data (tests/browser/test_admin_*.py);
    # here axe reads only the states no other test reaches (the checklist all ticked).
    found = _axe_serious(page, f"admin_journey_{name}") if name in AXE_HERE else []
    page.set_viewport_size(PHONE)
    try:
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1] == PHONE["width"], (name, widths)
    finally:
        page.set_viewport_size(DESKTOP)
    return found


def _done(page: Any, text: str) -> None:
    page.wait_for_selector(f"#done:has-text({text!r})")


def _invitation_link(svc: Service) -> str:
    def invitations() -> list[str]:
        return [text_of(m) for m in messages(svc.mail_dir) if EXPERT_EMAIL in str(m["To"])]

    wait_for(lambda: bool(invitations()), timeout=30, what="the expert's invitation e-mail")
    found = re.search(r"http://\S+/account/set-password\?token=\S+", invitations()[0])
    assert found, invitations()[0]
    return found.group(0)


def test_from_create_admin_to_a_booked_expert_with_pages_only(
    fresh: Service, open_page: Callable[..., Any], tmp_path: Path
) -> None:
    sign_in_url = _create_admin(fresh)
    assert sign_in_url == f"{fresh.url}/staff/sign-in"

    # A requester opens the form now; it is sent at the end (the form counts how long it was
    # open before it takes it).
    requester = open_page(timezone_id="Europe/London")
    requester.goto("/apply/all?lang=en")
    form_opened = time.monotonic()

    # bypass_csp: axe is the test's own script, which the pages' CSP rightly refuses.
    admin = open_page(bypass_csp=True)
    axe: dict[str, list[Any]] = {}
    _require(AXE, "axe-core (npm)")

    # First sign-in at the printed address: the checklist, nothing ticked yet.
    admin.goto(sign_in_url)
    admin.fill("#email", ADMIN_EMAIL)
    admin.fill("#password", ADMIN_PASSWORD)
    admin.click("button:has-text('Sign in')")
    admin.wait_for_url(re.compile(r"/staff/getting-started$"))
    assert admin.locator(".checklist-state[data-state=done]").count() == 0
    assert admin.is_visible("#nav-getting-started")
    axe["getting-started"] = _check(admin, "getting-started")

    # Someone new, invited as an expert with their profile in one go. Every seeded region
    # counts for the roster (an expert or its lead on duty at every hour), so this first
    # expert covers them all.
    admin.click("#nav-experts")
    admin.wait_for_selector("#no-experts")
    admin.select_option("#user_id", "new")
    admin.fill("#display_name", EXPERT_NAME)
    admin.fill("#email", EXPERT_EMAIL)
    admin.fill("#timezone", EXPERT_ZONE)
    admin.fill("#languages", "ru, ky, en")
    admin.fill("#countries", "KG")
    regions = admin.locator("#add-form input[name=regions]")
    region_count = regions.count()
    assert region_count >= 1
    for i in range(region_count):
        regions.nth(i).check()
    admin.click("#add-form button[type=submit]")
    _done(admin, "The expert is invited")
    found = re.search(r"/admin/experts/([0-9a-f-]{36})\?", admin.url)
    assert found, admin.url
    expert_page = f"/admin/experts/{found.group(1)}"
    assert admin.inner_text("h1") == EXPERT_NAME

    # Where their consultations take place: without a Zoom user or a link of their own (and no
    # INTAKE_MEETING_LINK_TEMPLATE), a booked consultation would have no meeting.
    admin.fill("#personal_meeting_link", MEETING_LINK)
    admin.click("#profile-form button[type=submit]")
    _done(admin, "The profile is saved.")

    # Weekly hours, Monday to Friday, in the expert's own zone.
    for day in range(5):
        admin.fill(f"#day{day}", "09:00-13:00, 14:00-18:00")
    admin.click("#hours-form button[type=submit]")
    _done(admin, "The weekly hours are saved.")
    assert admin.input_value("#hours_timezone") == EXPERT_ZONE

    # The CV, a PDF.
    cv = tmp_path / "Aida Sadykova CV.pdf"
    cv.write_bytes(tiny_pdf())
    admin.set_input_files("#cv", str(cv))
    admin.click("#cv-form button[type=submit]")
    _done(admin, "The CV is saved.")
    assert "Aida Sadykova CV.pdf" in admin.inner_text("#cv-on-file")

    # A week of leave well after the dates requesters can book now.
    leave = (now() + dt.timedelta(days=45)).date()
    admin.fill("#absence_starts_at", f"{leave.isoformat()}T00:00")
    admin.fill("#absence_ends_at", f"{(leave + dt.timedelta(days=7)).isoformat()}T00:00")
    admin.select_option("#absence_kind", "leave")
    admin.fill("#absence_note", "Annual leave")
    admin.click("#absence-form button[type=submit]")
    _done(admin, "The unavailable period is added")
    assert "Annual leave" in admin.inner_text("#unavailable")

    # The expert chooses a password through the e-mailed link, then signs in.
    expert = open_page()
    expert.goto(_invitation_link(fresh))
    expert.fill("#password", EXPERT_PASSWORD)
    expert.fill("#confirm", EXPERT_PASSWORD)
    expert.click("button:has-text('Set password')")
    expert.wait_for_selector("text=Your password is set.")
    expert.goto("/staff/sign-in")
    expert.fill("#email", EXPERT_EMAIL)
    expert.fill("#password", EXPERT_PASSWORD)
    expert.click("button:has-text('Sign in')")
    expert.wait_for_url(re.compile(r"/expert/assignments"))

    # Every country has an expert now; none has a sample report yet.
    admin.click("#nav-regions")
    admin.wait_for_selector("#no-expert-none")
    assert admin.is_visible("#no-sample-KG")
    axe["regions"] = _check(admin, "regions")

    # A sample report for each region the expert covers.
    admin.click("#nav-sample-reports")
    admin.wait_for_selector("#no-reports")
    region_tags = admin.locator("#tag option[value^='region:']").evaluate_all(
        "options => options.map(o => o.value)"
    )
    assert len(region_tags) == region_count
    for tag in region_tags:
        report = tmp_path / f"Sample report {tag.removeprefix('region:')}.pdf"
        report.write_bytes(tiny_pdf(2))
        admin.select_option("#tag", tag)
        admin.set_input_files("#file", str(report))
        admin.click("#upload button[type=submit]")
        _done(admin, "The sample report is uploaded.")
    assert admin.is_visible("#uncovered-none")
    assert admin.get_attribute("#covered-KG", "data-tier") == "region"

    # The roster: the admin on staff duty and the expert for every region, round the clock
    # (a shift whose end equals its start lasts 24 hours), each in their own zone.
    admin.click("#nav-roster")
    admin.wait_for_selector("#roster-empty")
    for person, zone, level in (
        (f"{ADMIN_NAME} (admin)", "UTC", "lead"),
        (f"{EXPERT_NAME} (expert)", EXPERT_ZONE, "member"),
    ):
        for weekday in range(7):
            admin.select_option("#shift-user_id", label=person)
            admin.select_option("#shift-weekday", str(weekday))
            admin.fill("#shift-starts_local", "00:00")
            admin.fill("#shift-ends_local", "00:00")
            admin.fill("#shift-timezone", zone)
            admin.select_option("#shift-level", level)
            admin.click("#add-shift button[type=submit]")
            _done(admin, "The shift is added.")
    assert admin.is_visible("#no-gaps")

    # The admin's own second factor, with the code an authenticator app would show.
    admin.click("a:has-text('Your account')")
    admin.wait_for_url(re.compile(r"/my-account$"))
    admin.click("button:has-text('Turn on the second factor')")
    admin.wait_for_url(re.compile(r"/my-account/second-factor$"))
    key = admin.inner_text("#manual-key").replace(" ", "")
    admin.fill("#code", pyotp.TOTP(key).at(now()))
    admin.get_by_role("button", name="Turn on", exact=True).click()
    admin.wait_for_selector("#recovery-codes")
    assert admin.locator("#recovery-codes li").count() == 10
    admin.click("a:has-text('back to your account')")
    admin.wait_for_selector("#second-factor-state:has-text('Recovery codes left: 10.')")

    # Every item ticked.
    admin.goto("/staff/getting-started")
    admin.wait_for_selector("#setup-complete")
    states = admin.locator(".checklist-state").evaluate_all(
        "spans => spans.map(s => [s.closest('li').id, s.dataset.state])"
    )
    assert states == [[f"item-{key}", "done"] for key in CHECKLIST]
    assert admin.locator("#nav-getting-started").count() == 0

    # The requester applies for Kyrgyzstan with a consultation and books the expert.
    fill_valid(requester, country_of_origin="KG", email="aigerim.journey@example.org")
    # Long past by now (the admin's work took longer); waits only if it did not.
    time.sleep(max(0.0, MIN_FILL_SECONDS + 0.2 - (time.monotonic() - form_opened)))
    requester.click("button[type=submit]")
    requester.wait_for_selector("#reference")
    reference = requester.inner_text("#reference").strip()
    requester.click("#open-request")
    requester.wait_for_selector("#status")
    requester.click("#book-link")
    slot = requester.locator("button.slot").first
    slot.wait_for()
    slot.click()
    requester.click("#confirm-booking")  # the time is held while the requester confirms
    requester.wait_for_selector("#booking-facts")
    assert requester.inner_text("h1") == "Your consultation is booked"
    facts = requester.inner_text("#booking-facts")
    assert EXPERT_NAME in facts and reference in facts
    assert requester.get_attribute("#join-link", "href") == MEETING_LINK

    # The expert sees it on their desk.
    expert.goto("/expert/consultations")
    expert.wait_for_selector(f"text={reference}")

    # The admin console as it is now, page by page.
    admin.click("#nav-people")
    admin.wait_for_url(re.compile(r"/admin/people$"))  # count() below does not wait for it
    assert admin.locator(f"#people .person-active:has-text('{EXPERT_EMAIL}')").count() == 1
    axe["people"] = _check(admin, "people")
    admin.click("#nav-experts")
    card = admin.locator(".expert-card", has_text=EXPERT_NAME)
    assert card.locator(".expert-cv").inner_text() == "Yes"
    assert card.locator(".expert-hours").inner_text() == "Set"
    axe["experts"] = _check(admin, "experts")
    admin.goto(expert_page)
    assert reference in admin.inner_text("#consultations")
    axe["expert"] = _check(admin, "expert")
    admin.click("#nav-regions")
    admin.wait_for_selector("#no-sample-none")
    admin.click("#country-KG a")
    admin.wait_for_selector("#country-form")
    axe["country"] = _check(admin, "country")
    admin.click("#nav-sample-reports")
    axe["sample-reports"] = _check(admin, "sample-reports")
    admin.click("#nav-roster")
    admin.wait_for_selector("#no-gaps")
    axe["roster"] = _check(admin, "roster")
    admin.click("#nav-operations")
    assert admin.inner_text("#outbox-dead") == "0", admin.inner_text("#dead-letters")
    axe["operations"] = _check(admin, "operations")
    admin.goto("/staff/getting-started")
    axe["getting-started-done"] = _check(admin, "getting-started-done")
    admin.click("a:has-text('Your account')")
    admin.wait_for_url(re.compile(r"/my-account$"))
    axe["my-account"] = _check(admin, "my-account", docs_from="#second-factor")
    assert axe == {name: [] for name in axe}, axe
