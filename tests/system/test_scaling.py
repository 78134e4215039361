"""The API and the worker hold no state of their own: two API processes and two worker processes
(plus one beat) on one PostgreSQL database and one Redis share the work.

A token issued by API #1 works on API #2; invites posted alternately to both APIs are all
delivered, and the outbox shows that both workers delivered some of them."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.core.database import build_engine
from tests.conftest import create_pg_database, drop_pg_database
from tests.processes import (
    ManagedProcess,
    create_admin,
    migrate,
    sign_in,
    start_api,
    start_beat,
    start_redis,
    start_worker,
    wait_for,
    wait_worker_ready,
)

pytestmark = pytest.mark.slow

INVITES = 40
ADMIN_EMAIL = "scale-admin@example.org"
ADMIN_PASSWORD = "a long admin passphrase"


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"intake_scale_{secrets.token_hex(4)}"
    url = create_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


def _claimed_by(url: str) -> dict[str, int]:
    engine = build_engine(url, for_tests=True)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT claimed_by, count(*) FROM outbox "
                    "WHERE kind = 'accounts.invite' AND status = 'sent' GROUP BY claimed_by"
                )
            ).all()
    finally:
        engine.dispose()
    return {str(who): int(n) for who, n in rows}


def _owner(claimer: str, workers: list[ManagedProcess]) -> str | None:
    """Which worker process a ``claimed_by`` ("host:pid" of a pool process) belongs to."""
    pid = int(claimer.rsplit(":", 1)[1])
    for worker in workers:
        if pid == worker.pid or pid in worker.seen_children:
            return worker.name
    return None


def test_two_apis_and_two_workers_share_the_work(pg_url: str, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        redis = start_redis(tmp_path / "redis")
        stack.callback(redis.stop)
        env = {
            "INTAKE_DATABASE_URL": pg_url,
            "INTAKE_BROKER_URL": redis.url,
            # One mail folder for every process, as a shared volume would be.
            "INTAKE_DATA_DIR": str(tmp_path / "shared-var"),
            # Small batches, so a backlog fans out to the other worker (workers/outbox.py).
            "INTAKE_OUTBOX_BATCH_SIZE": "2",
            "INTAKE_OUTBOX_POLL_SECONDS": "1",
            # As in production: one JSON object per line, in every process.
            "INTAKE_LOG_FORMAT": "json",
        }
        migrate(tmp_path, env)
        create_admin(tmp_path, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, env=env)

        # Start everything at once, then wait for each.
        workers = []
        for n in (1, 2):
            worker = start_worker(tmp_path / f"worker{n}", env=env, name=f"worker{n}", wait=False)
            stack.callback(worker.stop)
            workers.append(worker)
        beat = start_beat(tmp_path / "beat", env=env)
        stack.callback(beat.stop)
        apis = []
        for n in (1, 2):
            api = start_api(tmp_path / f"api{n}", env=env, name=f"api{n}", wait=False)
            stack.callback(api.stop)
            apis.append(api)
        for worker in workers:
            wait_worker_ready(worker)
        for api in apis:
            api.wait_ready()

        # Sign in on API #1, use the token on API #2: no session lives in a process.
        headers = sign_in(apis[0].url, ADMIN_EMAIL, ADMIN_PASSWORD)
        me = httpx.get(f"{apis[1].url}/api/v1/auth/me", headers=headers, timeout=10)
        assert me.status_code == 200 and me.json()["email"] == ADMIN_EMAIL

        emails = [f"expert{i:02d}@example.org" for i in range(INVITES)]
        request_ids: set[str] = set()
        for i, email in enumerate(emails):
            api = apis[i % 2]
            resp = httpx.post(
                f"{api.url}/api/v1/admin/users",
                json={"email": email, "display_name": f"Expert {i}", "role": "expert"},
                headers=headers,
                timeout=10,
            )
            assert resp.status_code == 201, (api.name, resp.text)
            request_ids.add(resp.headers["X-Request-ID"])
        # Both APIs see every user, whichever one created it.
        for api in apis:
            listed = httpx.get(f"{api.url}/api/v1/admin/users", headers=headers, timeout=10)
            assert listed.status_code == 200
            assert set(emails) <= {u["email"] for u in _users(listed.json())}

        mail_dir = tmp_path / "shared-var" / "mail"
        wait_for(
            lambda: len(list(mail_dir.glob("*.eml"))) >= INVITES,
            timeout=45,
            what=f"{INVITES} invites in {mail_dir}",
        )
        for worker in workers:
            worker.children()
        claimed = _claimed_by(pg_url)
        assert sum(claimed.values()) == INVITES, claimed
        owners: dict[str, int] = {}
        for claimer, count in claimed.items():
            owner = _owner(claimer, workers)
            assert owner is not None, f"{claimer} is not one of our workers"
            owners[owner] = owners.get(owner, 0) + count
        print("deliveries per worker:", owners)
        assert set(owners) == {"worker1", "worker2"}, (
            f"only {owners} delivered; logs:\n{workers[0].log_tail()}\n{workers[1].log_tail()}"
        )
        assert len(list(mail_dir.glob("*.eml"))) == INVITES, "each invite is sent once"
        for proc in (*apis, *workers, beat):
            assert proc.running(), f"{proc.name} died:\n{proc.log_tail()}"

        # Every line of every process is one JSON object; each invite's delivery line, written
        # by whichever worker sent it, carries the id of the API request that caused it.
        logs = {proc.name: _json_lines(proc) for proc in (*apis, *workers, beat)}
        sent_ids = {
            line.get("request_id")
            for worker in workers
            for line in logs[worker.name]
            if line.get("event") == "outbox_sent"
        }
        assert request_ids <= sent_ids, (
            f"deliveries without their request id: {request_ids - sent_ids}"
        )
        access_ids = {
            line["request_id"]
            for api in apis
            for line in logs[api.name]
            if line.get("event") == "request" and line.get("route") == "/api/v1/admin/users"
        }
        assert request_ids <= access_ids
        # Each API stops at once on Ctrl-C, its nudge threads included (not killed after a wait).
        for api in apis:
            assert api.stop(timeout=10) == 0, f"{api.name} did not stop:\n{api.log_tail()}"
    for proc in (*apis, *workers, beat):
        assert not proc.leftovers(), f"{proc.name} left {proc.leftovers()}"


def _json_lines(proc: ManagedProcess) -> list[dict[str, object]]:
    lines = []
    for raw in proc.read_log().splitlines():
        if not raw.strip():
            continue
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise AssertionError(
                f"{proc.name} wrote a line that is not JSON: {raw[:200]}"
            ) from None
        assert isinstance(parsed, dict)
        lines.append(parsed)
    return lines


def _users(body: object) -> list[dict[str, str]]:
    if isinstance(body, list):
        return body
    assert isinstance(body, dict)
    items = body.get("items") or body.get("users") or []
    assert isinstance(items, list)
    return items
