"""Browser tests: Playwright for Python driving Debian's Chromium headless shell
(/usr/bin/chromium-headless-shell; ``CHROMIUM`` names another build, e.g. /usr/bin/chromium).
The headless shell is the same Blink engine and DevTools protocol without the desktop browser
around it (Playwright's own default for headless runs): the browser tests take about 40 % less
CPU with it than with the full browser in its headless mode.

Never ``playwright install``: `.ci/run` installs Chromium from Debian's packages and axe-core
from the npm registry into ``.cache/npm``. Without Chromium the tests skip with the reason, but
not under CI (``CI`` set): there they fail loudly. One real service (``asylum-intake run``, the
embedded default) per test process, shared by the modules it runs (each start costs seconds of
CPU; tests seed their own data under their own names, so they do not meet); a module that needs
a service of its own (first run, a fresh database) starts it. One Chromium per test process
while its browser tests follow each other (each test has contexts of its own). A failing test saves
a screenshot of its last page under ``artifacts/browser/`` (git-ignored); every test does with
``INTAKE_BROWSER_SCREENSHOTS=all``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import DEFAULT_PASSWORD
from tests.processes import ROOT, Service, free_port, start_service

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium-headless-shell"))
AXE = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "artifacts" / "browser"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
MIN_FILL_SECONDS = 2.0


def _require(path: Path, what: str) -> None:
    if path.exists():
        return
    reason = f"{what} not found at {path}: run .ci/run (it installs it) or install it yourself"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; under CI the browser tests must run", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _closed_at_the_end() -> Iterator[None]:
    # The shared Chromium too, for a run stopped before its last browser test's teardown.
    yield
    close_seed_servers()
    SHARED_BROWSER.close()


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    with own_service() as svc:
        yield svc


@contextlib.contextmanager
def own_service() -> Iterator[Service]:
    """A service as the shared one is started, for a module that overrides ``service`` with a
    database of its own (what it checks is about the whole organisation)."""
    _require(CHROMIUM, "Chromium")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="intake-browser-"))
    env = {
        "INTAKE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        # A "neutral site" on another origin that needs no network.
        "INTAKE_QUICK_EXIT_URL": f"http://localhost:{port}/healthz",
        "INTAKE_FORM_MIN_FILL_SECONDS": str(MIN_FILL_SECONDS),
        "INTAKE_SUBMIT_RATE_LIMIT": "1000",
    }
    try:
        with start_service(workdir, env=env, port=port) as svc:
            yield svc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _SharedBrowser:
    """One Playwright and one Chromium per test process, for as long as its browser tests run
    one after the other (starting them costs about 0.7 s of CPU, once per module before). While
    Playwright's sync API is open it keeps an event loop running on this thread, so a later test
    of the process calling asyncio.run() would fail: ``close()`` runs as soon as the next test
    is not a browser test (``pytest_runtest_teardown`` below)."""

    def __init__(self) -> None:
        self.playwright: Any = None
        self.browser: Any = None

    def get(self) -> Any:
        if self.browser is None:
            from playwright.sync_api import sync_playwright

            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=LAUNCH_ARGS
            )
        return self.browser

    def close(self) -> None:
        browser, playwright = self.browser, self.playwright
        self.browser = self.playwright = None
        try:
            if browser is not None:
                browser.close()
        finally:
            if playwright is not None:
                playwright.stop()

    @property
    def open(self) -> bool:
        return self.browser is not None


SHARED_BROWSER = _SharedBrowser()
BROWSER_TESTS = Path(__file__).parent


def is_browser_test(item: pytest.Item | None) -> bool:
    return item is not None and BROWSER_TESTS in item.path.parents


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    # After the test's own teardown (its pages and contexts are closed by then).
    yield
    if not is_browser_test(nextitem):
        SHARED_BROWSER.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # The outcome of each phase, for ``new_page``'s screenshot on failure.
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        item.stash[FAILED] = True


FAILED = pytest.StashKey[bool]()
#: ``all``: every test saves its last page, not only a failing one.
SCREENSHOTS_ALL = os.environ.get("INTAKE_BROWSER_SCREENSHOTS") == "all"


@pytest.fixture
def browser() -> Any:
    """Chromium, shared by the browser tests of the process that run one after the other (the
    same one each time while it is open; state lives in ``SHARED_BROWSER``, not the fixture)."""
    _require(CHROMIUM, "Chromium")
    return SHARED_BROWSER.get()


@pytest.fixture
def new_page(browser: Any, service: Service, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``new_page(**context_options)``; the last page of the test is saved as a screenshot."""
    contexts: list[Any] = []
    pages: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("base_url", service.url)
        options.setdefault("timezone_id", "Asia/Bishkek")
        context = browser.new_context(**options)
        # Nothing leaves the machine: any other host is refused.
        context.route(
            lambda url: not url.startswith(("http://127.0.0.1:", "http://localhost:")),
            lambda route: route.abort(),
        )
        contexts.append(context)
        page = context.new_page()
        # Generous: the suite runs services and browsers side by side on two cores.
        page.set_default_timeout(30000)
        pages.append(page)
        return page

    yield make
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # A full-page screenshot costs Chromium a few tenths of a second of CPU: taken when the
    # test failed (or with INTAKE_BROWSER_SCREENSHOTS=all).
    if pages and (SCREENSHOTS_ALL or request.node.stash.get(FAILED, False)):
        try:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
            pages[-1].screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        except Exception as exc:
            print(f"screenshot failed: {type(exc).__name__}")
    for context in contexts:
        context.close()


class Timer:
    """The form must have been open for the minimum fill time before it is sent."""

    def __init__(self) -> None:
        self.opened = time.monotonic()

    def wait(self) -> None:
        left = MIN_FILL_SECONDS + 0.2 - (time.monotonic() - self.opened)
        if left > 0:
            time.sleep(left)


def fill_valid(page: Any, **overrides: str) -> None:
    """Fill the apply form with valid answers, by the controls' ids (any language)."""
    values = {
        "full_name": "Aigerim Test",
        "email": f"browser-{time.time_ns()}@example.org",
        "country_of_origin": "KG",
        "country_of_residence": "GB",
        "case_stage": "filed_pending",
        **overrides,
    }
    page.check("#f-requester_type-applicant")
    page.fill("#f-full_name", values["full_name"])
    page.fill("#f-email", values["email"])
    page.check("#f-preferred_channel-email")
    page.select_option("#f-country_of_origin", values["country_of_origin"])
    page.select_option("#f-country_of_residence", values["country_of_residence"])
    page.select_option("#f-case_stage", values["case_stage"])
    page.check("#f-wants-consultation")
    page.check("#f-consent_data_processing")


def fits_360(page: Any) -> None:
    """The page is laid out at 360 px wide without sideways scroll. Measured after the load
    event: an element of the new page can be there before its stylesheet."""
    page.wait_for_load_state("load")
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == 360, (page.url, widths)


SEED_SERVER = Path(__file__).with_name("seed_server.py")


class SeedServer:
    """One ``seed_server.py`` per service (its directory and environment): each script runs in
    a fork of a process that imported the app once, as it would in a process of its own."""

    def __init__(self, service: Service) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="intake-seed-"))
        self.proc = subprocess.Popen(
            [sys.executable, str(SEED_SERVER)],
            cwd=service.cwd,
            env=service.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        out, err = self.folder / "out", self.folder / "err"
        request = {"script": script, "out": str(out), "err": str(err)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise AssertionError(f"the seed server gave no answer (exit {self.proc.returncode})")
        return subprocess.CompletedProcess(
            self.proc.args, int(line), out.read_text(), err.read_text()
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the server's loop ends
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_seed_servers: dict[int, tuple[Service, SeedServer]] = {}


def run_in_service(service: Service, script: str) -> str:
    """Run a seed script against the service's database, as a process of the service would;
    returns the last line it printed."""
    entry = _seed_servers.get(id(service))
    if entry is None or entry[0] is not service:
        entry = _seed_servers[id(service)] = (service, SeedServer(service))
    result = entry[1].run(script.format(root=str(ROOT)))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def close_seed_servers() -> None:
    for _, server in _seed_servers.values():
        server.close()
    _seed_servers.clear()


def sign_in(page: Any, email: str) -> None:
    page.goto("/staff/sign-in")
    page.fill("#email", email)
    page.fill("#password", DEFAULT_PASSWORD)
    page.click("button:has-text('Sign in')")


def _axe_serious(page: Any, name: str) -> list[Any]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"axe_{name}.json").write_text(json.dumps(result["violations"], indent=1))
    assert len(result["passes"]) > 10  # axe did check the page
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
