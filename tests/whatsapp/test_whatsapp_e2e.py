"""WhatsApp on the one-hour clock with real processes: the service started as the README does,
API, worker and beat on the controlled clock, the Cloud API faked over HTTP and its webhook
posted to the running API, signed as Meta signs it. A message at 23:30 opens a request; the
reminders at +30 and +45 go to the staff on duty; a WhatsApp reply at +50 meets the promise."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from app.core.time import now
from tests.conftest import Clock
from tests.fakes.whatsapp_fake import FakeWhatsApp
from tests.mail_reader import messages
from tests.processes import create_admin, sign_in, start_service, stopping, wait_for
from tests.whatsapp.conftest import env_for

pytestmark = pytest.mark.slow

NUMBER = "963944123456"


def _reminders(folder: Path) -> list[str]:
    return [str(m["To"]) for m in messages(folder) if str(m["Subject"]).startswith("Reminder:")]


def test_message_at_2330_reminders_on_duty_and_a_whatsapp_reply_meets_the_promise(
    tmp_path: Path, clock: Clock
) -> None:
    today = now().astimezone(dt.UTC).date()
    clock.at(dt.datetime.combine(today, dt.time(23, 30), dt.UTC))
    fake = FakeWhatsApp().start()
    svc = start_service(tmp_path, env={**env_for(fake), "INTAKE_OUTBOX_POLL_SECONDS": "1"})
    try:
        with stopping(svc):
            create_admin(tmp_path, email="admin@example.org", password="a long admin password 1")
            admin = sign_in(svc.url, "admin@example.org", "a long admin password 1")
            invited = httpx.post(
                f"{svc.url}/api/v1/admin/users",
                json={"email": "duty@example.org", "display_name": "On duty", "role": "staff"},
                headers=admin,
                timeout=10,
            )
            assert invited.status_code == 201, invited.text

            written = now().replace(microsecond=0)
            fake.customer_writes(NUMBER, "Hello, I need an expert report", at=written)

            def post(body: bytes, headers: dict[str, str]) -> int:
                url = f"{svc.url}/webhooks/whatsapp"
                return httpx.post(url, content=body, headers=headers, timeout=10).status_code

            assert fake.deliver(post) == [200]
            wait_for(lambda: bool(fake.sent), timeout=30, what="the acknowledgement template")
            [ack] = fake.sent
            reference = ack["template"]["components"][0]["parameters"][0]["text"]
            case = httpx.get(f"{svc.url}/api/v1/cases/{reference}", headers=admin, timeout=10)
            assert case.status_code == 200, case.text
            assert case.json()["sla"]["state"] == "awaiting"

            clock.advance(minutes=31)
            wait_for(lambda: len(_reminders(svc.mail_dir)) >= 1, timeout=30, what="+30 reminder")
            clock.advance(minutes=15)  # +46
            wait_for(lambda: len(_reminders(svc.mail_dir)) >= 2, timeout=30, what="+45 reminder")
            assert set(_reminders(svc.mail_dir)) == {"duty@example.org"}

            clock.advance(minutes=4)  # +50: the reply on WhatsApp
            sent = httpx.post(
                f"{svc.url}/api/v1/cases/{reference}/whatsapp",
                json={"text": "Hello, this is the duty desk. How can we help?"},
                headers=sign_in(svc.url, "admin@example.org", "a long admin password 1"),
                timeout=10,
            )
            assert sent.status_code == 201, sent.text
            wait_for(
                lambda: any(s["type"] == "text" for s in fake.sent),
                timeout=30,
                what="the reply sent by the worker",
            )
            admin = sign_in(svc.url, "admin@example.org", "a long admin password 1")
            case = httpx.get(f"{svc.url}/api/v1/cases/{reference}", headers=admin, timeout=10)
            assert case.json()["sla"]["state"] == "met", case.json()["sla"]
            assert [s["to"] for s in fake.sent if s["type"] == "text"] == [NUMBER]
    finally:
        fake.stop()
