"""The one-hour promise with real processes: the service started as the README does (embedded
default), its API, worker and beat all reading the controlled clock (INTAKE_TEST_CLOCK_FILE).
Arrival, +31 minutes: the real worker e-mails the reminder; staff record a contact over HTTP;
+61 minutes: no escalation."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from app.core.time import now
from tests.conftest import Clock
from tests.factories import form
from tests.mail_reader import messages, text_of
from tests.processes import create_admin, sign_in, start_service, stopping, wait_for

pytestmark = pytest.mark.slow

MARKER = "Qvzmarker"
LATER_ADDRESS = "later@example.org"


def _with_subject(folder: Path, prefix: str) -> list[EmailMessage]:
    return [m for m in messages(folder) if str(m["Subject"]).startswith(prefix)]


def test_reminder_from_the_real_worker_and_no_escalation_after_a_contact(
    tmp_path: Path, clock: Clock
) -> None:
    svc = start_service(tmp_path, env={"INTAKE_OUTBOX_POLL_SECONDS": "1"})
    with stopping(svc):
        create_admin(tmp_path, email="admin@example.org", password="a long admin password 1")
        admin = sign_in(svc.url, "admin@example.org", "a long admin password 1")
        staff_address = "duty@example.org"
        invited = httpx.post(
            f"{svc.url}/api/v1/admin/users",
            json={"email": staff_address, "display_name": "On duty", "role": "staff"},
            headers=admin,
            timeout=10,
        )
        assert invited.status_code == 201, invited.text

        body = form(full_name=f"Applicant {MARKER}", case_summary=f"Summary {MARKER} here")
        resp = httpx.post(f"{svc.url}/api/v1/requests", json=body, timeout=15)
        assert resp.status_code == 201, resp.text
        reference = resp.json()["reference"]

        # +31 minutes for every process: the 30-minute reminder becomes due at once.
        clock.advance(minutes=31)
        wait_for(
            lambda: bool(_with_subject(svc.mail_dir, "Reminder:")),
            timeout=20,
            what="the 30-minute reminder written by the worker",
        )
        [reminder] = _with_subject(svc.mail_dir, "Reminder:")
        assert reminder["To"] == staff_address and reference in str(reminder["Subject"])
        text = text_of(reminder)
        assert reference in text and MARKER not in text and body["email"] not in text

        # Staff (here the admin) record the phone call: the clock stops.
        contact = httpx.post(
            f"{svc.url}/api/v1/cases/{reference}/contacts",
            json={"channel": "phone", "contacted_at": now().isoformat(), "note": "Called"},
            headers=admin,
            timeout=10,
        )
        assert contact.status_code == 201, contact.text
        assert contact.json()["sla"]["state"] == "met"

        # +61 minutes: the escalation was due at +60, but it was cancelled. A link recovery
        # queued after the jump shows the worker has pumped since (rows go in due order).
        clock.advance(minutes=30)
        recover = httpx.post(
            f"{svc.url}/api/v1/requests/recover",
            json={"reference": reference, "email": body["email"]},
            timeout=10,
        )
        assert recover.status_code in (200, 202), recover.text
        before = len(messages(svc.mail_dir))
        wait_for(
            lambda: len(messages(svc.mail_dir)) > before,
            timeout=20,
            what="the link e-mail queued after the jump",
        )
        # The breach step's e-mails would be queued before anything queued now: once an
        # invitation queued now is written, every pump that could send them has run.
        later = httpx.post(
            f"{svc.url}/api/v1/admin/users",
            json={"email": LATER_ADDRESS, "display_name": "Later", "role": "staff"},
            headers=admin,
            timeout=10,
        )
        assert later.status_code == 201, later.text
        wait_for(
            lambda: any(m["To"] == LATER_ADDRESS for m in messages(svc.mail_dir)),
            timeout=20,
            what="the invitation queued after the link e-mail",
        )
        assert _with_subject(svc.mail_dir, "Breached:") == []
        assert len(_with_subject(svc.mail_dir, "Reminder:")) == 1  # +45 was cancelled too
        listed = httpx.get(
            f"{svc.url}/api/v1/cases/{reference}/contacts", headers=admin, timeout=10
        )
        assert listed.status_code == 200 and listed.json()["sla"]["state"] == "met"
