"""The operations commands as an operator runs them, on the embedded default: ``migrate --check``,
``backup``, ``restore`` (refusing a database with data unless --force, and a wrong master key
with a message that says which key it needs)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tests.processes import create_admin, run_cli


def _key(key_id: str) -> str:
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"


@pytest.mark.slow
def test_migrate_check_says_whether_migrations_are_pending(tmp_path: Path) -> None:
    before = run_cli(["migrate", "--check"], cwd=tmp_path)
    assert before.returncode == 1, before.stdout + before.stderr
    assert (
        "migration(s) pending" in before.stdout and "Run `asylum-intake migrate`" in before.stdout
    )
    assert run_cli(["migrate"], cwd=tmp_path).returncode == 0
    after = run_cli(["migrate", "--check"], cwd=tmp_path)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "No migration pending" in after.stdout


@pytest.mark.slow
def test_backup_and_restore_from_the_command_line(tmp_path: Path) -> None:
    key = _key("kbackup1")
    env = {"INTAKE_MASTER_KEY": key}
    assert run_cli(["migrate"], cwd=tmp_path, env=env).returncode == 0
    create_admin(tmp_path, email="admin@example.org", password="a long enough password", env=env)
    made = run_cli(["backup", "-o", "service.backup"], cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "It opens only with master key 'kbackup1'" in made.stdout
    assert (tmp_path / "service.backup").stat().st_mode & 0o077 == 0, "readable by others"
    assert not list(tmp_path.glob("*.partial"))

    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    into_fresh = {**env, "INTAKE_DATABASE_URL": fresh}
    ok = run_cli(["restore", "service.backup"], cwd=tmp_path, env=into_fresh)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "audit trail intact" in ok.stdout

    again = run_cli(["restore", "service.backup"], cwd=tmp_path, env=into_fresh)
    assert again.returncode == 1
    assert "holds data (users (1))" in again.stderr and "--force" in again.stderr
    forced = run_cli(["restore", "--force", "service.backup"], cwd=tmp_path, env=into_fresh)
    assert forced.returncode == 0, forced.stdout + forced.stderr

    other = {"INTAKE_MASTER_KEY": _key("kother"), "INTAKE_DATABASE_URL": fresh + "2"}
    wrong = run_cli(["restore", "service.backup"], cwd=tmp_path, env=other)
    assert wrong.returncode == 1
    assert "encrypted with master key 'kbackup1'" in wrong.stderr
    assert "INTAKE_MASTER_KEY is 'kother'" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    same_id = {"INTAKE_MASTER_KEY": _key("kbackup1"), "INTAKE_DATABASE_URL": fresh + "3"}
    forged = run_cli(["restore", "service.backup"], cwd=tmp_path, env=same_id)
    assert forged.returncode == 1
    assert "same id, different key" in forged.stderr
    # The old key as INTAKE_OLD_MASTER_KEYS opens it (a backup made before a rotation).
    rotated = {
        "INTAKE_MASTER_KEY": _key("knew"),
        "INTAKE_OLD_MASTER_KEYS": key,
        "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'rotated.sqlite3'}",
    }
    assert run_cli(["restore", "service.backup"], cwd=tmp_path, env=rotated).returncode == 0
