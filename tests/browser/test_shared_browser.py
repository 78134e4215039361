"""The browser tests of a test process share one Chromium while they follow each other, and it
is closed before any other test of the process runs (Playwright's sync API holds this thread's
event loop while it is open)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from tests.browser import conftest
from tests.browser.conftest import SHARED_BROWSER, is_browser_test


async def _nothing() -> None:
    return None


def test_the_shared_browser_holds_the_event_loop_until_it_is_closed(browser: Any) -> None:
    assert SHARED_BROWSER.open and browser.is_connected()
    coroutine = _nothing()
    with pytest.raises(RuntimeError):
        asyncio.run(coroutine)  # what a later test of the process would meet
    coroutine.close()
    SHARED_BROWSER.close()
    assert not SHARED_BROWSER.open and not browser.is_connected()
    asyncio.run(_nothing())


def _teardown_before(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """The browser conftest's teardown hook, as pytest runs it between two tests."""
    hook = conftest.pytest_runtest_teardown(item, nextitem)
    next(hook)
    with contextlib.suppress(StopIteration):
        hook.send(None)


def test_it_stays_open_for_a_next_browser_test_and_closes_before_any_other(
    browser: Any, request: pytest.FixtureRequest
) -> None:
    assert is_browser_test(request.node) and SHARED_BROWSER.open and browser.is_connected()
    _teardown_before(request.node, request.node)
    assert SHARED_BROWSER.open and browser.is_connected()
    others = [item for item in request.session.items if not is_browser_test(item)]
    _teardown_before(request.node, others[0] if others else None)
    assert not SHARED_BROWSER.open and not browser.is_connected()
