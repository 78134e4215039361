"""The expert's case page on a 360 px phone, in Russian and Arabic: the expert reads the
conversation (newest first) and replies: the e-mail is previewed (greeting, text, signature),
a text that greets again gets no Send button, then the previewed e-mail is sent; an empty reply
comes back with its error; no sideways scroll and no serious axe violation; screenshots of the
preview and the sent reply in artifacts/."""

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

# An expert reading ``lang`` who accepted a request with two messages from the requester.
SEED = """
import datetime as dt, json, secrets, sys
sys.path.insert(0, {root!r})
from sqlalchemy import select
from app.cases.replies import seal_message
from app.core.database import session_scope
from app.core.time import now
from app.flows import request as flows
from app.models import Assignment, UserLanguage
from app.models.messages import MessageDirection, MessageKind, RequestMessage
from tests.factories import create_expert, submit

with session_scope() as s:
    expert = create_expert(s, countries=["TJ"], name="Dr Phone {lang}")
    expert.language = UserLanguage({lang!r})
    req = submit(s, country_of_origin="TJ")
    a = s.scalar(select(Assignment).where(
        Assignment.request_id == req.id, Assignment.expert_id == expert.id))
    flows.answer_offer(s, a.id, expert, accept=True, via="page")
    for minutes, body in ((40, "First question from the requester"), (5, "Second, later one")):
        at = now() - dt.timedelta(minutes=minutes)
        s.add(RequestMessage(
            request_id=req.id, direction=MessageDirection.inbound,
            kind=MessageKind.requester, message_id=f"in-{{secrets.token_hex(6)}}@example.org",
            at=at, recorded_at=at,
            data_enc=seal_message(req, {{"from": "a@example.org", "subject": "Hi", "body": body}}),
        ))
    print(json.dumps({{"expert": expert.email, "ref": req.reference}}))
"""

# What the page says in each language (from the catalogs).
SENT = {"ru": "Ответ поставлен в очередь", "ar": "وُضع الرد في قائمة الإرسال"}
EMPTY = {
    "ru": "Ответ пуст. Напишите сообщение, которое нужно отправить.",
    "ar": "الرد فارغ. اكتب الرسالة المراد إرسالها.",
}


@pytest.mark.parametrize("lang", ["ru", "ar"])
def test_the_expert_reads_the_conversation_and_replies_on_a_phone(
    new_page: Any, service: Service, lang: str
) -> None:
    _require(AXE, "axe-core (npm)")
    seeded = json.loads(
        run_in_service(service, SEED.replace("{lang}", lang).replace("{lang!r}", repr(lang)))
    )
    ref = seeded["ref"]
    # bypass_csp: the page's CSP rightly refuses injected scripts; axe is the test's own.
    page = new_page(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, bypass_csp=True
    )
    sign_in(page, seeded["expert"])
    page.wait_for_url(re.compile(r"/expert/assignments"))
    page.goto(f"/expert/cases/{ref}")
    assert page.get_attribute("html", "lang") == lang
    fits_360(page)
    messages = page.inner_text("#messages")
    assert messages.index("Second, later one") < messages.index("First question")

    page.click("#reply-form button[type=submit]")  # empty: refused beside the message
    page.wait_for_selector("#reply_body-error")
    assert page.inner_text("#reply_body-error") == EMPTY[lang]
    assert page.is_visible("#error-summary")
    fits_360(page)
    assert _axe_serious(page, f"expert_case_error_{lang}") == []

    # The reply is previewed first: the whole e-mail, greeting and signature, as it will go.
    typed = "Я могу помочь" if lang == "ru" else "يمكنني المساعدة"
    page.fill("#reply_body", typed)
    page.click("#reply-form button[type=submit]")
    page.wait_for_selector("#preview-text")
    assert re.search(rf"/expert/cases/{ref}/reply/preview$", page.url)
    shown = page.inner_text("#preview-text")
    # The requester writes Russian: the template greets in Russian and the expert signs.
    assert shown.startswith("Здравствуйте") and typed in shown and f"Dr Phone {lang}" in shown
    assert page.is_visible("#send-form button[type=submit]")
    fits_360(page)
    assert _axe_serious(page, f"expert_case_preview_{lang}") == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"expert_case_preview_{lang}.png"), full_page=True)

    # A text that greets again gets no Send button; without the greeting it can be sent.
    page.fill("#reply_body", ("Здравствуйте!\n" if lang == "ru" else "مرحبا\n") + typed)
    page.click("#reply-form button[type=submit]")
    page.wait_for_selector("#reply_body-error")
    assert page.locator("#send-form").count() == 0
    assert page.is_visible("#error-summary")
    page.fill("#reply_body", typed)
    page.click("#reply-form button[type=submit]")
    page.wait_for_selector("#send-form")

    page.click("#send-form button[type=submit]")
    page.wait_for_url(re.compile(r"done=reply"))
    assert SENT[lang] in page.inner_text(".flash")
    assert typed in page.inner_text("#messages")
    fits_360(page)
    assert _axe_serious(page, f"expert_case_{lang}") == []
    page.screenshot(path=str(ARTIFACTS / f"expert_case_replied_{lang}.png"), full_page=True)
