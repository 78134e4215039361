"""Applicant intake end to end: the service started as the README does, a submission over HTTP,
and the acknowledgement delivered by the real worker process — also when the broker was down at
the moment of submission."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.factories import form
from tests.mail_reader import messages, text_of
from tests.processes import Service, start_redis, start_service, stopping, wait_for

pytestmark = pytest.mark.slow


#: What the worker logs on each failed attempt to reach the broker.
WORKER_RETRY = "consumer: Cannot connect to"


def _wait_in_log(svc: Service, text: str, *, count: int = 1, what: str = "") -> None:
    try:
        wait_for(
            lambda: svc.read_log().count(text) >= count,
            timeout=45,
            what=what or f"{count} x {text!r} in the service's log",
        )
    except TimeoutError as exc:  # the log's tail says what happened instead
        raise TimeoutError(f"{exc}\n--- service log (tail) ---\n{svc.read_log()[-4000:]}") from None


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


def test_acknowledgement_goes_out_once_a_broker_that_was_down_is_back(tmp_path: Path) -> None:
    redis = start_redis(tmp_path / "redis")
    svc = start_service(
        tmp_path, env={"INTAKE_BROKER_URL": redis.url, "INTAKE_OUTBOX_POLL_SECONDS": "1"}
    )
    with stopping(redis, svc):
        redis.stop()
        body = form()
        resp = httpx.post(f"{svc.url}/api/v1/requests", json=body, timeout=15)
        assert resp.status_code == 201, resp.text  # accepted while the broker is down
        readiness = httpx.get(f"{svc.url}/readyz", timeout=15)
        assert readiness.status_code == 503
        assert readiness.json()["checks"]["broker"]["ok"] is False
        # Absence only counts once the paths had their chance: the API's nudge failed, and the
        # worker tried the broker again after it. Beat's own failure is awaited in
        # tests/outbox/test_delivery_faults.py, where beat runs alone; beside the API and worker
        # of `run` it may sit in the broker's reconnect backoff for longer than a test should
        # wait (seen: over 45 s).
        _wait_in_log(svc, "nudge_failed", what="the API's nudge to fail")
        _wait_in_log(svc, WORKER_RETRY, count=svc.read_log().count(WORKER_RETRY) + 1)
        assert messages(svc.mail_dir, to=body["email"]) == []  # nothing can move without it

        redis.start()
        wait_for(
            lambda: bool(messages(svc.mail_dir, to=body["email"])),
            timeout=60,
            what="the acknowledgement after the broker came back",
        )
        assert resp.json()["reference"] in messages(svc.mail_dir, to=body["email"])[0]["Subject"]
        assert svc.running, "the service kept running through the broker outage"
