"""First run through the real CLI: e-mailed links follow the address actually served when
INTAKE_PUBLIC_URL is unset, production warns about it, and ``create-admin`` says where to sign in.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx
import pytest

from app.core.settings import load_settings
from tests.conftest import PG_URL
from tests.factories import form
from tests.mail_reader import messages, text_of
from tests.processes import (
    free_port,
    migrated_embedded,
    run_cli,
    start_api,
    start_service,
    start_worker,
    stopping,
    wait_for,
)

pytestmark = pytest.mark.slow

PRODUCTION = {
    "INTAKE_ENV": "production",
    "INTAKE_DATABASE_URL": PG_URL,
    "INTAKE_BROKER_URL": "redis://127.0.0.1:6379/15",
    "INTAKE_SMTP_HOST": "127.0.0.1",
    "INTAKE_MASTER_KEY": "prod1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
}


def test_run_on_another_port_writes_that_port_into_the_emailed_link(tmp_path: Path) -> None:
    port = free_port()
    # No INTAKE_* variable at all, as the README's command; the acknowledgement is rendered by
    # the worker, a separate process that never saw --port.
    svc = start_service(tmp_path, port=port, bare=True)
    with stopping(svc):
        body = form()
        resp = httpx.post(f"{svc.url}/api/v1/requests", json=body, timeout=15)
        assert resp.status_code == 201, resp.text
        reference = resp.json()["reference"]
        wait_for(
            lambda: bool(messages(svc.mail_dir, to=body["email"])),
            timeout=45,
            what="the acknowledgement written by the worker",
        )
        [ack] = messages(svc.mail_dir, to=body["email"])
        text = text_of(ack)
        assert f"http://127.0.0.1:{port}/r/{reference}#token=" in text
        assert ":8000" not in text
        assert f"http://127.0.0.1:{port}/staff/sign-in" in svc.read_log()
        # The children were given the base: none of them guesses or warns on its own.
        assert "public_url_not_set" not in svc.read_log()


def test_api_started_on_its_own_in_production_warns_that_public_url_is_missing(
    tmp_path: Path,
) -> None:
    port = free_port()
    api = start_api(tmp_path, env=PRODUCTION, port=port, wait=False)
    with stopping(api):
        wait_for(
            lambda: "Application startup complete" in api.read_log(),
            timeout=45,
            what="the API's start-up",
        )
        log = api.read_log()
        assert "public_url_not_set" in log
        assert "production must set it" in log
        assert f"http://127.0.0.1:{port}" in log  # what links use meanwhile


def test_api_in_production_with_public_url_set_does_not_warn(tmp_path: Path) -> None:
    api = start_api(
        tmp_path,
        env={**PRODUCTION, "INTAKE_PUBLIC_URL": "https://intake.example.org"},
        wait=False,
    )
    with stopping(api):
        wait_for(
            lambda: "Application startup complete" in api.read_log(),
            timeout=45,
            what="the API's start-up",
        )
        assert "public_url_not_set" not in api.read_log()


def test_api_started_on_its_own_in_development_warns_with_the_derived_base(
    tmp_path: Path,
) -> None:
    migrated_embedded(tmp_path)
    port = free_port()
    api = start_api(tmp_path, port=port)
    with stopping(api):
        log = api.read_log()
        assert "public_url_not_set" in log
        assert f"links in e-mails use http://127.0.0.1:{port}" in log


def test_worker_started_on_its_own_warns_and_names_the_base_it_will_use(tmp_path: Path) -> None:
    migrated_embedded(tmp_path)
    worker = start_worker(tmp_path, env={"INTAKE_API_PORT": "9124"})
    with stopping(worker):
        log = worker.read_log()
        assert "public_url_not_set" in log
        assert "links in e-mails use http://127.0.0.1:9124" in log


def test_worker_with_public_url_set_does_not_warn(tmp_path: Path) -> None:
    migrated_embedded(tmp_path)
    worker = start_worker(tmp_path, env={"INTAKE_PUBLIC_URL": "https://intake.example.org"})
    with stopping(worker):
        assert "public_url_not_set" not in worker.read_log()


def test_create_admin_prints_the_sign_in_page_of_the_served_address(tmp_path: Path) -> None:
    migrated_embedded(tmp_path)
    result = run_cli(
        ["create-admin", "--email", "first@example.org", "--name", "First", "--password-stdin"],
        cwd=tmp_path,
        env={"INTAKE_API_PORT": "9123"},
        input="a long admin passphrase\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Sign in at http://127.0.0.1:9123/staff/sign-in\n" in result.stdout


def test_create_admin_prints_the_sign_in_page_under_the_public_url(tmp_path: Path) -> None:
    migrated_embedded(tmp_path)
    result = run_cli(
        ["create-admin", "--email", "first@example.org", "--name", "First", "--password-stdin"],
        cwd=tmp_path,
        env={"INTAKE_PUBLIC_URL": "https://intake.example.org/"},
        input="a long admin passphrase\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Sign in at https://intake.example.org/staff/sign-in\n" in result.stdout


@pytest.mark.parametrize(
    ("host", "base"),
    [
        ("127.0.0.1", "http://127.0.0.1:9000"),
        ("0.0.0.0", "http://localhost:9000"),
        ("::", "http://localhost:9000"),
        ("::1", "http://[::1]:9000"),
        ("intake.local", "http://intake.local:9000"),
    ],
)
def test_links_without_public_url_use_the_bind_address_reachable_from_a_browser(
    host: str, base: str
) -> None:
    settings = load_settings(api_host=host, api_port=9000, public_url="")
    assert settings.public_url == base
    assert settings.public_url_is_derived
    assert not load_settings(public_url="https://x.example/").public_url_is_derived
