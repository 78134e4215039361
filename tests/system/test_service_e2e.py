"""The whole service started exactly as the README's first command does, on the embedded default
(no configuration: SQLite, the SQLite broker, .eml files under var/mail), with its real worker and
beat; stopped by Ctrl-C (SIGINT to the foreground process group)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.mail_reader import messages, text_of
from tests.processes import create_admin, sign_in, start_service, wait_for

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "a long admin passphrase"


def test_service_runs_as_the_readme_says_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    # No INTAKE_* variable at all, as someone typing the README's command (waits for /readyz).
    svc = start_service(tmp_path, bare=True)
    try:
        assert svc.children(), "run should have started api, worker and beat as children"
        ready = httpx.get(f"{svc.url}/readyz", timeout=5).json()
        assert ready["checks"]["database"]["ok"] and ready["checks"]["broker"]["ok"]

        # The master key was generated once into var/, with a warning.
        key_file = tmp_path / "var" / "master.key"
        assert key_file.exists()
        assert key_file.stat().st_mode & 0o077 == 0, "master.key must be private"
        assert "master_key_generated" in svc.read_log()
        assert "INTAKE_MASTER_KEY" in svc.read_log()
        assert (tmp_path / "var" / "intake.sqlite3").exists()

        # The admin made by create-admin, in the same directory, signs in over HTTP.
        create_admin(tmp_path, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, bare=True)
        headers = sign_in(svc.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        me = httpx.get(f"{svc.url}/api/v1/auth/me", headers=headers, timeout=10)
        assert me.status_code == 200 and me.json()["role"] == "admin"

        # An invite is delivered by the real worker as an .eml file under var/mail.
        invited = "invited.expert@example.org"
        resp = httpx.post(
            f"{svc.url}/api/v1/admin/users",
            json={"email": invited, "display_name": "Nadia", "role": "expert"},
            headers=headers,
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        request_id = resp.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        wait_for(
            lambda: bool(messages(svc.mail_dir, to=invited)),
            timeout=30,
            what=f"the invite .eml under {svc.mail_dir}",
        )
        invite = messages(svc.mail_dir, to=invited)[0]
        assert "token=ot_" in text_of(invite)
        # The embedded broker's queue, made by the first process that used it (the worker may
        # still be starting when the API is ready).
        assert (tmp_path / "var" / "broker.sqlite").exists()

        # The worker's line for that delivery carries the request id of the API call.
        def delivery_logged() -> bool:
            return any(
                "outbox_sent" in line and f"request_id={request_id}" in line
                for line in svc.read_log().splitlines()
            )

        wait_for(delivery_logged, timeout=10, what="the worker's outbox_sent line")
        # ... and the API's access line for the request has the same id.
        assert any(
            "request" in line and f"request_id={request_id}" in line and "route=" in line
            for line in svc.read_log().splitlines()
        )
    finally:
        children = svc.children()
        started = time.monotonic()
        code = svc.stop()  # SIGINT to the process group, as Ctrl-C in a terminal
        took = time.monotonic() - started

    assert code == 0, svc.log_tail()
    assert took < 25, f"stopping took {took:.1f}s"
    assert not svc.leftovers(), f"processes outlived the service: {svc.leftovers()}"
    assert len(children) >= 3
    assert "asylum-intake stopped." in svc.read_log()


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def test_when_one_child_dies_run_stops_the_others_and_fails(tmp_path: Path) -> None:
    svc = start_service(tmp_path, bare=True)
    try:
        # The worker is a direct child of `run`: python -m app.cli worker --concurrency N.
        worker = next(
            pid
            for pid in svc.children()
            if _parent(pid) == svc.pid and _cmdline(pid)[3:4] == ["worker"]
        )
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: not svc.running(), timeout=30, what="run to notice and stop")
    finally:
        code = svc.stop()
    assert code == 1, svc.log_tail()
    assert "worker exited" in svc.read_log()
    assert not svc.leftovers(), f"processes outlived the service: {svc.leftovers()}"
