"""Replying on WhatsApp from the staff case page, in a real Chromium at 360 px, with the service
connected to the local fake of the WhatsApp Cloud API: inside the 24-hour window (Russian UI)
staff write free text and it reaches WhatsApp once; outside it (Arabic UI) the page says only
approved templates may go, and why. No sideways scroll, no serious axe violation; screenshots
in artifacts/browser/."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import (
    ARTIFACTS,
    AXE,
    CHROMIUM,
    _axe_serious,
    _require,
    fits_360,
    run_in_service,
    sign_in,
)
from tests.fakes.whatsapp_fake import FakeWhatsApp
from tests.processes import Service, free_port, start_service, wait_for
from tests.whatsapp.conftest import env_for

pytestmark = pytest.mark.slow

NUMBER = "79161234567"

# A staff member reading ``lang``; a request that chose WhatsApp, whose number last wrote
# ``hours`` ago (the window: 24 hours).
SEED = """
import datetime as dt, json, sys
sys.path.insert(0, {root!r})
from app.core.database import session_scope
from app.core.time import now
from app.models import Role, UserLanguage, WhatsAppContact
from app.whatsapp import service as whatsapp
from tests.factories import create_user, submit

with session_scope() as s:
    staff = create_user(s, role=Role.staff, display_name="Staff {lang}")
    staff.language = UserLanguage({lang!r})
    staff.timezone = "Europe/Berlin"
    req = submit(s, country_of_origin="RU", language="ru", preferred_channel="whatsapp",
                 whatsapp="+{number}")
    s.add(WhatsAppContact(phone_lookup=whatsapp.phone_lookup(s, "{number}"), request_id=req.id,
                          last_inbound_at=now() - dt.timedelta(hours={hours}), updated_at=now()))
    s.flush()
    print(json.dumps({{"staff": staff.email, "ref": req.reference}}))
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWhatsApp]:
    wa = FakeWhatsApp().start()
    yield wa
    wa.stop()


@pytest.fixture(scope="module")
def service(fake: FakeWhatsApp) -> Iterator[Service]:
    """The service as the shared one is started, connected to the fake."""
    _require(CHROMIUM, "Chromium")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="intake-browser-wa-"))
    env = {"INTAKE_PUBLIC_URL": f"http://127.0.0.1:{port}", **env_for(fake)}
    try:
        with start_service(workdir, env=env, port=port) as svc:
            yield svc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _seed(service: Service, lang: str, hours: int, number: str = NUMBER) -> dict[str, Any]:
    script = (
        SEED.replace("{lang}", lang)
        .replace("{lang!r}", repr(lang))
        .replace("{number}", number)
        .replace("{hours}", str(hours))
    )
    data: dict[str, Any] = json.loads(run_in_service(service, script))
    return data


def _phone(new_page: Any) -> Any:
    return new_page(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, bypass_csp=True
    )


def test_inside_the_window_staff_reply_on_whatsapp_in_russian(
    new_page: Any, service: Service, fake: FakeWhatsApp
) -> None:
    _require(AXE, "axe-core (npm)")
    seeded = _seed(service, "ru", hours=1)
    page = _phone(new_page)
    sign_in(page, seeded["staff"])
    page.wait_for_url(re.compile(r"/staff/queue"))
    page.goto(f"/staff/cases/{seeded['ref']}")
    assert page.get_attribute("html", "lang") == "ru"
    # The preferred channel is shown first; the e-mail is the other choice.
    assert page.locator('#reply-channels a[aria-current="true"]').inner_text() == "WhatsApp"
    window = page.inner_text("#wa-window")
    assert window.startswith("Свободный текст — до ") and "Берлин" in window
    fits_360(page)
    assert _axe_serious(page, "case_whatsapp_window_open_ru_360") == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "case_whatsapp_window_open_ru_360.png"), full_page=True)

    page.fill("#reply_wa_text", "Здравствуйте, мы получили ваши документы.")
    page.click("#wa-form button[type=submit]")
    page.wait_for_url(re.compile(r"done=whatsapp"))
    assert "Сообщение WhatsApp поставлено в очередь" in page.inner_text(".flash")
    assert "Ответ отправлен в WhatsApp" in page.inner_text("#latest")

    def sent() -> bool:
        return any(
            s["type"] == "text" and s["text"]["body"].startswith("Здравствуйте")
            for s in list(fake.sent)
        )

    wait_for(sent, timeout=20, what="the reply sent to the WhatsApp fake")
    texts = [s for s in fake.sent if s["type"] == "text" and s["to"] == NUMBER]
    assert len(texts) == 1


def test_outside_the_window_the_page_says_templates_only_in_arabic(
    new_page: Any, service: Service
) -> None:
    _require(AXE, "axe-core (npm)")
    seeded = _seed(service, "ar", hours=30, number="963944123456")
    page = _phone(new_page)
    sign_in(page, seeded["staff"])
    page.wait_for_url(re.compile(r"/staff/queue"))
    page.goto(f"/staff/cases/{seeded['ref']}")
    assert page.get_attribute("html", "lang") == "ar"
    assert page.inner_text("#wa-window") == (
        "القوالب المعتمدة فقط: آخر رسالة من مقدّم الطلب مضى عليها أكثر من 24 ساعة."
    )
    assert page.locator("#reply_wa_text").count() == 0
    assert page.locator('input[name="wa_template"]').count() == 2
    # The templates' texts are shown in the requester's language (Russian here).
    assert "Мы пытались связаться" in page.inner_text("#reply_wa")
    fits_360(page)
    assert _axe_serious(page, "case_whatsapp_templates_only_ar_360") == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "case_whatsapp_templates_only_ar_360.png"), full_page=True)
