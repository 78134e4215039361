"""Alerts: heartbeats of workers and beat, what /readyz and /metrics show of them (and of the
oldest unanswered request and failing outbox kinds), the API's own e-mail to the admins once
per silence, and the Prometheus rules (promtool) and Grafana dashboard on the same figures."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.time import now
from app.models import OutboxMessage, OutboxStatus, Role
from app.ops import heartbeat, watchdog
from tests.conftest import Clock
from tests.factories import create_user, submit
from tests.mail_reader import messages, text_of
from tests.processes import (
    ROOT,
    create_admin,
    migrated_embedded,
    start_api,
    start_beat,
    start_worker,
    wait_for,
)

RULES = ROOT / "ops" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "ops" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "asylum-intake.json"
#: Where .ci/run puts promtool (from Debian's prometheus package) when it is not on the PATH.
CACHED_PROMTOOL = ROOT / ".cache" / "prometheus" / "usr" / "bin" / "promtool"


def _value(text: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name}{labels} not in:\n{text}"
    return float(found.group(1))


def _beat(
    db: Session, kind: str, *, ago: float, name: str | None = None, base: dt.datetime | None = None
) -> dt.datetime:
    at = (base or heartbeat.wall_now()) - dt.timedelta(seconds=ago)
    heartbeat.record(db, name=name or f"{kind}@test", kind=kind, started_at=at, at=at)
    return at


def test_readyz_and_metrics_show_live_workers_and_beat_and_stay_ready_without_them(
    client: TestClient, db: Session
) -> None:
    body = client.get("/readyz").json()
    assert body["status"] == "ok", "a stopped worker must not take the API out of service"
    assert body["checks"]["worker"] == {"ok": False, "live": 0, "last_seen_age_seconds": None}
    assert {"no_live_worker", "no_live_beat"} <= set(body["checks"]["alerts"])
    text = client.get("/metrics").text
    assert _value(text, "intake_live_processes", '{kind="worker"}') == 0
    assert _value(text, "intake_heartbeat_age_seconds", '{kind="beat"}') == float("inf")

    _beat(db, "worker", ago=5, name="worker-1@host")
    _beat(db, "worker", ago=61, name="worker-2@host")  # older than the 60 s stale limit
    _beat(db, "beat", ago=1)
    body = client.get("/readyz").json()["checks"]
    assert body["worker"]["ok"] is True and body["worker"]["live"] == 1
    assert 4 <= body["worker"]["last_seen_age_seconds"] < 30
    assert body["beat"]["ok"] is True
    assert "no_live_worker" not in body["alerts"] and "no_live_beat" not in body["alerts"]
    text = client.get("/metrics").text
    assert _value(text, "intake_live_processes", '{kind="worker"}') == 1
    assert 4 <= _value(text, "intake_heartbeat_age_seconds", '{kind="worker"}') < 30


def test_oldest_unanswered_request_outbox_lag_and_failing_kinds(
    client: TestClient, db: Session, clock: Clock
) -> None:
    assert _value(client.get("/metrics").text, "intake_oldest_unanswered_request_age_seconds") == 0
    submit(client)
    clock.advance(minutes=10)
    text = client.get("/metrics").text
    assert 600 <= _value(text, "intake_oldest_unanswered_request_age_seconds") < 660
    checks = client.get("/readyz").json()["checks"]
    assert 600 <= checks["oldest_unanswered_request_age_seconds"] < 660
    assert "outbox_lag" in checks["alerts"], "the acknowledgement has waited ten minutes"

    db.add_all(
        [
            OutboxMessage(
                kind="meetings.create",
                status=OutboxStatus.pending,
                attempts=2,
                due_at=now() + dt.timedelta(minutes=5),
                params={},
            ),
            OutboxMessage(
                kind="scheduling.invite",
                status=OutboxStatus.dead,
                attempts=8,
                due_at=now(),
                params={},
            ),
        ]
    )
    db.flush()
    text = client.get("/metrics").text
    assert _value(text, "intake_outbox_failing", '{kind="meetings.create",state="retrying"}') == 1
    assert _value(text, "intake_outbox_failing", '{kind="scheduling.invite",state="dead"}') == 1
    assert "dead_letters" in client.get("/readyz").json()["checks"]["alerts"]


def test_the_watchdog_emails_every_admin_once_per_silence(db: Session, mail_dir: Path) -> None:
    admins = [create_user(db, role=Role.admin) for _ in range(2)]
    staff = create_user(db, role=Role.staff)
    start = heartbeat.wall_now()
    last = _beat(db, "worker", ago=6 * 60, base=start)  # silent for six minutes (limit: five)
    _beat(db, "beat", ago=1, base=start)

    assert watchdog.check(db, at=start, watching_since=start) == ["worker"]
    sent = messages(mail_dir)
    assert sorted(m["To"] for m in sent) == sorted(a.email for a in admins)
    assert staff.email not in [m["To"] for m in sent]
    assert sent[0]["Subject"] == "asylum-intake: no worker running for 6 minutes"
    assert f"{last:%Y-%m-%d %H:%M} UTC" in text_of(sent[0])
    assert "one-hour promise" in text_of(sent[0])

    later = start + dt.timedelta(minutes=10)
    _beat(db, "beat", ago=0, base=later)
    assert watchdog.check(db, at=later, watching_since=start) == [], "once per silence"
    # It came back, then stopped again: a new silence, a new e-mail.
    back = later + dt.timedelta(minutes=1)
    _beat(db, "worker", ago=0, base=back)
    _beat(db, "beat", ago=0, base=back)
    assert watchdog.check(db, at=back + dt.timedelta(minutes=4), watching_since=start) == []
    again = back + dt.timedelta(minutes=6)
    _beat(db, "beat", ago=0, base=again)
    assert watchdog.check(db, at=again, watching_since=start) == ["worker"]
    assert len(messages(mail_dir)) == 4


def test_a_beat_never_seen_is_reported_once_after_the_limit(db: Session, mail_dir: Path) -> None:
    create_user(db, role=Role.admin)
    start = heartbeat.wall_now()
    early = start + dt.timedelta(minutes=4)
    _beat(db, "worker", ago=0, base=early)
    assert watchdog.check(db, at=early, watching_since=start) == []
    late = start + dt.timedelta(minutes=5)
    _beat(db, "worker", ago=0, base=late)
    assert watchdog.check(db, at=late, watching_since=start) == ["beat"]
    assert "None has reported" in text_of(messages(mail_dir)[0])
    much_later = late + dt.timedelta(hours=1)
    _beat(db, "worker", ago=0, base=much_later)
    assert watchdog.check(db, at=much_later, watching_since=start) == []


@pytest.mark.slow
def test_the_api_alone_emails_the_admins_and_sees_a_worker_and_beat_once_they_start(
    tmp_path: Path,
) -> None:
    env = {
        "INTAKE_WATCHDOG_SILENT_MINUTES": "0.01",
        "INTAKE_WATCHDOG_CHECK_SECONDS": "0.2",
        "INTAKE_HEARTBEAT_SECONDS": "0.5",
    }
    migrated_embedded(tmp_path)
    create_admin(tmp_path, email="admin@example.org", password="a long enough password", env=env)
    mail = tmp_path / "var" / "mail"
    with start_api(tmp_path, env=env) as api:
        wait_for(
            lambda: len(messages(mail, to="admin@example.org")) == 2 if mail.is_dir() else False,
            timeout=30,
            what="the watchdog's e-mails about the worker and beat",
        )
        subjects = sorted(str(m["Subject"]) for m in messages(mail))
        assert [s.split(" running")[0] for s in subjects] == [
            "asylum-intake: no beat",
            "asylum-intake: no worker",
        ]
        with start_worker(tmp_path, env=env), start_beat(tmp_path, env=env):

            def both_live() -> bool:
                checks = httpx.get(f"{api.url}/readyz", timeout=5).json()["checks"]
                return bool(checks["worker"]["ok"] and checks["beat"]["ok"])

            wait_for(both_live, timeout=60, what="heartbeats of the worker and beat")
        assert len(messages(mail)) == 2, "no second e-mail while they ran"


def _promtool() -> str | None:
    return shutil.which("promtool") or (str(CACHED_PROMTOOL) if CACHED_PROMTOOL.is_file() else None)


def test_the_alert_rules_pass_promtool_and_fire_on_their_figures() -> None:
    promtool = _promtool()
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail(f"promtool is missing: .ci/run installs it into {CACHED_PROMTOOL}")
        pytest.skip("promtool not installed (bash .ci/run puts it under .cache/prometheus)")
    check = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULE_TESTS.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _names(expr: str) -> set[str]:
    return set(re.findall(r"\b(intake_[a-z_]+)", expr))


def test_rules_and_dashboard_name_only_metrics_the_service_exports(
    client: TestClient, db: Session
) -> None:
    client.get("/healthz")
    exported = set(re.findall(r"^(intake_[a-z_]+)", client.get("/metrics").text, re.MULTILINE))
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    alerts = {r["alert"] for r in rules}
    assert {
        "IntakeSlaBreached",
        "IntakeOutboxLag",
        "IntakeNoWorker",
        "IntakeNoBeat",
        "IntakeDeadLetters",
        "IntakeCalendarFailing",
        "IntakeZoomFailing",
    } <= alerts
    used = set().union(*(_names(r["expr"]) for r in rules))
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used |= set().union(*(_names(e) for e in exprs))
    # Series that exist only once a row of that kind exists (failing kinds) are declared.
    declared = set(
        re.findall(r"^# TYPE (intake_[a-z_]+)", client.get("/metrics").text, re.MULTILINE)
    )
    missing = used - exported - declared
    assert missing == set(), f"named in ops/ but not exported by /metrics: {missing}"
    assert {
        "intake_live_processes",
        "intake_oldest_unanswered_request_age_seconds",
        "intake_outbox_failing",
    } <= used
