"""In Chromium: Swagger UI works from the service's own files under the pages' CSP, a name with a
right-to-left override reaches staff isolated and visible, and an Arabic page lays a time out
left to right."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.browser.conftest import run_in_service, sign_in
from tests.factories import submission
from tests.processes import Service

pytestmark = pytest.mark.slow

SEED = """
import json, sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.models import Role
from tests.factories import create_user, submit

with session_scope() as s:
    staff = create_user(s, role=Role.staff, display_name="Bidi Staff")
    req = submit(s, full_name="Ali \\u202eReza", case_summary="Before \\u202eafter")
    print(json.dumps({{"staff": staff.email, "ref": req.reference}}))
"""

# Where each part of an element's text is drawn: the left edge of each substring.
LEFT_EDGES = """(e, parts) => parts.map((part) => {
    const node = e.firstChild;
    const start = node.textContent.indexOf(part);
    const range = document.createRange();
    range.setStart(node, start);
    range.setEnd(node, start + part.length);
    return range.getBoundingClientRect().left;
})"""


def left_edges(locator: Any, parts: list[str]) -> list[float]:
    edges: list[float] = locator.evaluate(LEFT_EDGES, parts)
    return edges


def test_swagger_ui_renders_from_the_service_under_the_csp(new_page: Any, service: Service) -> None:
    page = new_page()
    refused: list[str] = []
    elsewhere: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.on(
        "request",
        lambda r: None if r.url.startswith((service.url, "data:")) else elsewhere.append(r.url),
    )
    page.goto("/docs")
    page.wait_for_selector('.opblock-summary-path[data-path="/api/v1/requests"]')
    assert page.locator(".opblock").count() > 50
    assert refused == [] and elsewhere == []


def test_staff_see_a_reversed_name_isolated_and_shown_as_typed(
    new_page: Any, service: Service
) -> None:
    data = json.loads(run_in_service(service, SEED))
    page = new_page()
    sign_in(page, data["staff"])
    page.wait_for_url("**/staff/queue")
    page.goto(f"/staff/cases/{data['ref']}")
    name = page.locator("bdi", has_text="Ali [U+202E]Reza")
    assert name.count() == 1
    assert name.evaluate("e => getComputedStyle(e).unicodeBidi") == "isolate"
    assert "\u202e" not in page.content()
    # Drawn in the order typed: "Ali" left of "Reza".
    ali, reza = left_edges(name, ["Ali", "Reza"])
    assert ali < reza


def test_an_arabic_page_keeps_the_promised_time_whole_in_arabic_words(
    new_page: Any, service: Service
) -> None:
    body = submission(language="ar", timezone="Europe/London").model_dump(
        mode="json", exclude_none=True
    )
    created = httpx.post(f"{service.url}/api/v1/requests", json=body, timeout=30)
    assert created.status_code == 201, created.text
    reply = created.json()
    page = new_page(locale="ar")
    page.goto(f"/r/{reply['reference']}?token={reply['access_token']}")
    page.wait_for_url(f"**/r/{reply['reference']}")
    assert page.locator("html").get_attribute("dir") == "rtl"
    # "الاثنين، 1 يونيو 2026 الساعة 9:00 ص (توقيت لندن)": one isolated piece, drawn right to
    # left as Arabic is, the zone (named in words) left of the date.
    due = page.locator("dd bdi", has_text="(توقيت لندن)").last
    assert due.evaluate("e => getComputedStyle(e).unicodeBidi") == "isolate"
    assert due.evaluate("e => getComputedStyle(e).direction") == "rtl"
    text = due.inner_text()
    date = text.split(" ")[0]
    [zone_edge, date_edge] = left_edges(due, ["توقيت لندن", date])
    assert zone_edge < date_edge, (text, zone_edge, date_edge)
