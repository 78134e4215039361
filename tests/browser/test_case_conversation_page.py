"""The staff case page, conversation first, in a real Chromium, in Russian and Arabic: at 360 px
the conversation comes first with the reply box under it and the facts below; on a wide screen
the facts are a side column (on the right in Russian, on the left in Arabic). A saved reply is
inserted into the box, the e-mail is previewed and sent; "Take it" from the queue's card. No
sideways scroll, no serious axe violation; screenshots in artifacts/browser/."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.conftest import (
    ARTIFACTS,
    AXE,
    _axe_serious,
    _require,
    fits_360,
    run_in_service,
    sign_in,
)
from tests.processes import Service

pytestmark = pytest.mark.slow

# A staff member reading ``lang``; a Russian-speaking requester with two messages, an internal
# note, and a saved reply in Russian.
SEED = """
import datetime as dt, json, secrets, sys
sys.path.insert(0, {root!r})
from app.cases import service as cases
from app.cases.replies import seal_message
from app.core.database import session_scope
from app.core.time import now
from app.models import Role, SavedReply, UserLanguage
from app.models.messages import MessageDirection, MessageKind, RequestMessage
from tests.factories import create_user, submit

with session_scope() as s:
    staff = create_user(s, role=Role.staff, display_name="Staff {lang}")
    staff.language = UserLanguage({lang!r})
    req = submit(s, country_of_origin="TM", language="ru")
    for minutes, body in ((40, "First question from the requester"), (5, "Second, later one")):
        at = now() - dt.timedelta(minutes=minutes)
        s.add(RequestMessage(
            request_id=req.id, direction=MessageDirection.inbound,
            kind=MessageKind.requester, message_id=f"in-{{secrets.token_hex(6)}}@example.org",
            at=at, recorded_at=at,
            data_enc=seal_message(req, {{"from": "a@example.org", "subject": "Hi", "body": body}}),
        ))
    s.flush()
    cases.add_note(s, req, staff, "Internal only")
    saved = SavedReply(title=f"Documents {{secrets.token_hex(3)}}", language="ru",
                       body="Пришлите, пожалуйста, решение по делу.")
    s.add(saved)
    s.flush()
    print(json.dumps({{"staff": staff.email, "ref": req.reference, "saved": saved.id}}))
"""

SENT = {"ru": "Ответ поставлен в очередь", "ar": "وُضع الرد في قائمة الإرسال"}


def _seed(service: Service, lang: str) -> dict[str, Any]:
    script = SEED.replace("{lang}", lang).replace("{lang!r}", repr(lang))
    data: dict[str, Any] = json.loads(run_in_service(service, script))
    return data


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return dict(box)


@pytest.mark.parametrize("lang", ["ru", "ar"])
def test_the_case_conversation_on_a_phone_and_a_wide_screen(
    new_page: Any, service: Service, lang: str
) -> None:
    _require(AXE, "axe-core (npm)")
    seeded = _seed(service, lang)
    ref = seeded["ref"]
    page = new_page(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, bypass_csp=True
    )
    sign_in(page, seeded["staff"])
    page.wait_for_url(re.compile(r"/staff/queue"))
    page.goto(f"/staff/cases/{ref}")
    assert page.get_attribute("html", "lang") == lang
    fits_360(page)
    # Conversation first, the reply box right under it, the facts below them on a phone.
    conversation, reply, facts = (_box(page, s) for s in ("#conversation", "#reply", "#facts"))
    assert conversation["y"] < reply["y"] < facts["y"]
    # The newest entry (here the acknowledgement the service sent after the seeding) is last.
    assert page.locator("#timeline > li").last.get_attribute("id") == "latest"
    timeline = page.inner_text("#timeline")
    assert timeline.index("First question") < timeline.index("Second, later one")
    assert page.locator(".tl-note.tl-internal").count() == 1
    assert _axe_serious(page, f"case_conversation_{lang}_360") == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"case_conversation_{lang}_360.png"), full_page=True)

    # A saved reply goes into the box (JavaScript: no reload), then the preview, then sending.
    page.select_option("#saved", str(seeded["saved"]))
    page.click("#saved-form button[type=submit]")
    assert page.input_value("#reply_body") == "Пришлите, пожалуйста, решение по делу."
    assert f"/staff/cases/{ref}" in page.url and "saved=" not in page.url
    page.click("#reply-form button[type=submit]")
    page.wait_for_selector("#preview-text")
    fits_360(page)
    shown = page.inner_text("#preview-text")
    assert "Пришлите, пожалуйста, решение по делу." in shown and "Здравствуйте" in shown
    assert _axe_serious(page, f"case_reply_preview_{lang}_360") == []
    page.screenshot(path=str(ARTIFACTS / f"case_reply_preview_{lang}_360.png"), full_page=True)
    page.click("#send-form button[type=submit]")
    page.wait_for_url(re.compile(r"done=reply"))
    assert SENT[lang] in page.inner_text(".flash")
    assert "решение по делу" in page.inner_text("#latest")

    # On a wide screen the facts are a column beside the conversation.
    wide = new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    sign_in(wide, seeded["staff"])
    wide.wait_for_url(re.compile(r"/staff/queue"))
    wide.goto(f"/staff/cases/{ref}")
    main, side = _box(wide, ".case-main"), _box(wide, ".case-side")
    assert side["y"] < main["y"] + main["height"]  # beside, not below
    if lang == "ar":
        assert side["x"] + side["width"] <= main["x"] + 1
    else:
        assert side["x"] >= main["x"] + main["width"] - 1
    assert _axe_serious(wide, f"case_conversation_{lang}_wide") == []
    wide.screenshot(path=str(ARTIFACTS / f"case_conversation_{lang}_wide.png"), full_page=True)


@pytest.mark.parametrize("lang", ["ru", "ar"])
def test_take_it_from_the_queue_card_on_a_phone(new_page: Any, service: Service, lang: str) -> None:
    _require(AXE, "axe-core (npm)")
    seeded = _seed(service, lang)
    ref = seeded["ref"]
    page = new_page(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, bypass_csp=True
    )
    sign_in(page, seeded["staff"])
    page.wait_for_url(re.compile(r"/staff/queue"))
    page.goto(f"/staff/queue?q={ref}")
    card = page.locator("table.queue tbody tr", has=page.locator(f'a[href="/staff/cases/{ref}"]'))
    card.locator(".take-form button").click()
    page.wait_for_url(re.compile(rf"/staff/queue\?q={ref}$"))
    card = page.locator("table.queue tbody tr", has=page.locator(f'a[href="/staff/cases/{ref}"]'))
    assert card.locator(".take-form").count() == 0
    assert card.locator(".queue-owner strong").count() == 1
    fits_360(page)
    assert _axe_serious(page, f"queue_taken_{lang}_360") == []
    page.screenshot(path=str(ARTIFACTS / f"queue_taken_{lang}_360.png"), full_page=True)
    mine = page.locator('a[href="/staff/queue?view=mine"]')
    mine.click()
    page.wait_for_url(re.compile(r"view=mine"))
    assert page.locator(f'a[href="/staff/cases/{ref}"]').count() == 1
