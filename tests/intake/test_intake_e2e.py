"""Applicant intake end to end: the service started as the README does, a submission over HTTP,
and the acknowledgement delivered by the real worker process. A submission while the broker is
down is proven in tests/outbox/test_delivery_faults.py (API, worker and beat as separate
processes)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.factories import form
from tests.mail_reader import messages, text_of
from tests.processes import start_service, stopping, wait_for

pytestmark = pytest.mark.slow


def test_submission_over_http_is_acknowledged_by_the_real_worker(tmp_path: Path) -> None:
    svc = start_service(tmp_path, bare=True)
    with stopping(svc):
        body = form(full_name="Marker Applicant E2E")
        resp = httpx.post(f"{svc.url}/api/v1/requests", json=body, timeout=15)
        assert resp.status_code == 201, resp.text
        created = resp.json()
        reference, token = created["reference"], created["access_token"]

        wait_for(
            lambda: bool(messages(svc.mail_dir, to=body["email"])),
            timeout=45,
            what="the acknowledgement written by the worker",
        )
        [ack] = messages(svc.mail_dir, to=body["email"])
        assert reference in ack["Subject"]
        text = text_of(ack)
        assert reference in text and token in text  # the link, rendered at send time

        # The requester's link works against the running API; a wrong one is 404.
        view = httpx.get(
            f"{svc.url}/api/v1/requests/{reference}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert view.status_code == 200 and view.json()["status"] == "new"
        wrong = httpx.get(
            f"{svc.url}/api/v1/requests/{reference}",
            headers={"Authorization": "Bearer rl_wrong"},
            timeout=10,
        )
        assert wrong.status_code == 404
        # Nothing personal in the service's log, though it handled the whole request.
        assert "Marker Applicant E2E" not in svc.read_log()
        assert body["email"] not in svc.read_log()
