"""Bad settings, one test per kind (missing, malformed, unreachable), through the real CLI as a
subprocess: the exit code and a message that names the variable. Plus: ``check`` never prints a
secret, and the example env file documents every setting."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from app.core.crypto import generate_master_key_text
from app.core.settings import ENV_PREFIX, Settings
from tests.conftest import PG_BASE
from tests.processes import ROOT, closed_port, create_admin, run_cli

pytestmark = pytest.mark.slow

EXIT_CONFIG = 2
EXIT_UNREACHABLE = 1
PG_REACHABLE = PG_BASE.replace("postgresql://", "postgresql+psycopg://") + "/postgres"


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), cwd=tmp_path, env=env, timeout=60)


def test_missing_production_settings_are_each_named(tmp_path: Path) -> None:
    result = _cli(tmp_path, "check", INTAKE_ENV="production")
    assert result.returncode == EXIT_CONFIG, result.stdout + result.stderr
    for name in (
        "INTAKE_DATABASE_URL",
        "INTAKE_BROKER_URL",
        "INTAKE_SMTP_HOST",
        "INTAKE_MASTER_KEY",
    ):
        assert name in result.stderr, (name, result.stderr)
    assert "Traceback" not in result.stderr
    # The same for the commands that start something: nothing starts.
    for command in ("run", "api", "worker", "migrate"):
        started = _cli(tmp_path, command, INTAKE_ENV="production")
        assert started.returncode == EXIT_CONFIG, (command, started.stderr)
        assert "INTAKE_MASTER_KEY" in started.stderr
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("INTAKE_DATABASE_URL", "not-a-url", "not a database URL"),
        ("INTAKE_DATABASE_URL", "mysql://u@h/db", "unsupported database"),
        ("INTAKE_MASTER_KEY", "garbage", "<key id>:<base64"),
        ("INTAKE_MASTER_KEY", "k1:c2hvcnQ", "32 bytes"),
        ("INTAKE_SMTP_PORT", "abc", "integer"),
        ("INTAKE_SMTP_PORT", "70000", "65535"),
        ("INTAKE_BROKER_URL", "ftp://x", "redis://"),
        ("INTAKE_ENV", "staging", "production"),
    ],
)
def test_malformed_setting_names_its_variable(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    result = _cli(tmp_path, "check", **{name: value})
    assert result.returncode == EXIT_CONFIG, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if name in line]
    assert lines, result.stderr
    assert any(expected in line for line in lines), result.stderr
    if name in ("INTAKE_MASTER_KEY",):
        assert value not in result.stderr, "a bad secret must not be echoed"


def test_several_malformed_settings_are_all_reported_at_once(tmp_path: Path) -> None:
    result = _cli(
        tmp_path,
        "check",
        INTAKE_DATABASE_URL="not-a-url",
        INTAKE_MASTER_KEY="garbage",
        INTAKE_SMTP_PORT="abc",
        INTAKE_BROKER_URL="ftp://x",
    )
    assert result.returncode == EXIT_CONFIG
    for name in ("INTAKE_DATABASE_URL", "INTAKE_MASTER_KEY", "INTAKE_SMTP_PORT"):
        assert name in result.stderr
    assert "INTAKE_BROKER_URL" in result.stderr


def test_unreachable_database_is_named_by_check_and_stops_run(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/intake"
    check = _cli(tmp_path, "check", INTAKE_DATABASE_URL=url)
    assert check.returncode == EXIT_UNREACHABLE, check.stdout + check.stderr
    line = next(line for line in check.stdout.splitlines() if line.strip().startswith("database:"))
    assert "UNREACHABLE" in line and "INTAKE_DATABASE_URL" in line
    assert re.search(r"broker: ok", check.stdout)

    run = _cli(tmp_path, "run", "--port", "1", INTAKE_DATABASE_URL=url)
    assert run.returncode == EXIT_CONFIG, run.stdout + run.stderr
    assert "Cannot start" in run.stderr and "INTAKE_DATABASE_URL" in run.stderr
    assert "running" not in run.stdout
    # Nothing was started or generated: no master key, no embedded broker file.
    assert not (tmp_path / "var" / "master.key").exists()


def test_unreachable_broker_is_named(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    check = _cli(tmp_path, "check", INTAKE_BROKER_URL=url)
    assert check.returncode == EXIT_UNREACHABLE, check.stdout + check.stderr
    line = next(line for line in check.stdout.splitlines() if line.strip().startswith("broker:"))
    assert "UNREACHABLE" in line and "INTAKE_BROKER_URL" in line
    run = _cli(tmp_path, "run", INTAKE_BROKER_URL=url)
    assert run.returncode == EXIT_CONFIG and "INTAKE_BROKER_URL" in run.stderr


def test_unreachable_smtp_is_named(tmp_path: Path) -> None:
    check = _cli(
        tmp_path,
        "check",
        INTAKE_SMTP_HOST="127.0.0.1",
        INTAKE_SMTP_PORT=str(closed_port()),
        INTAKE_SMTP_TIMEOUT_SECONDS="2",
    )
    assert check.returncode == EXIT_UNREACHABLE
    assert re.search(r"smtp: UNREACHABLE - INTAKE_SMTP_HOST", check.stdout), check.stdout


def test_check_prints_the_resolved_configuration_with_secrets_masked(tmp_path: Path) -> None:
    key = generate_master_key_text("k1")
    db_password = "db-Secret-4711"
    smtp_password = "smtp-Secret-0815"
    broker_password = "broker-Secret-2342"
    check = _cli(
        tmp_path,
        "check",
        INTAKE_DATABASE_URL=PG_REACHABLE.replace("postgres@", f"postgres:{db_password}@"),
        INTAKE_BROKER_URL=f"redis://:{broker_password}@127.0.0.1:{closed_port()}/0",
        INTAKE_MASTER_KEY=key,
        INTAKE_SMTP_PASSWORD=smtp_password,
    )
    out = check.stdout + check.stderr
    assert "Configuration:" in out and "Dependencies:" in out
    assert re.search(r"database: ok", out), out
    for secret in (db_password, smtp_password, broker_password, key, key.split(":", 1)[1]):
        assert secret not in out, f"secret printed: {secret[:6]}..."
    assert "INTAKE_MASTER_KEY = ********" in out
    assert "INTAKE_SMTP_PASSWORD = ********" in out
    assert "INTAKE_DATABASE_URL = postgresql+psycopg://postgres:***@" in out


def test_the_embedded_default_needs_no_configuration(tmp_path: Path) -> None:
    check = _cli(tmp_path, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"sqlite:///{tmp_path / 'var' / 'intake.sqlite3'}" in check.stdout
    assert f"sqla+sqlite:///{tmp_path / 'var' / 'broker.sqlite'}" in check.stdout
    assert "mail backend = file" in check.stdout


def test_the_example_env_file_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*(INTAKE_[A-Z0-9_]+)=", text, flags=re.MULTILINE))
    expected = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set(), "add these to .env.example"
    assert documented - expected == set(), "these are not settings (any more)"


def test_passwords_are_hashed_strongly_unless_under_test() -> None:
    from app.core.settings import PASSWORD_HASH_MIN_MEMORY_KIB, PASSWORD_HASH_MIN_TIME_COST

    defaults = {name: Settings.model_fields[name].default for name in Settings.model_fields}
    # RFC 9106's second recommended argon2id profile.
    assert defaults["password_hash_memory_kib"] == 65536
    assert defaults["password_hash_time_cost"] == 3
    assert defaults["password_hash_parallelism"] == 4
    weak = {
        "password_hash_memory_kib": PASSWORD_HASH_MIN_MEMORY_KIB - 1,
        "password_hash_time_cost": PASSWORD_HASH_MIN_TIME_COST,
    }
    for env in ("development", "production"):
        with pytest.raises(ValueError, match="INTAKE_PASSWORD_HASH_MEMORY_KIB"):
            Settings(env=env, **weak)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="INTAKE_PASSWORD_HASH_TIME_COST"):
            Settings(
                env=env,  # type: ignore[arg-type]
                password_hash_memory_kib=PASSWORD_HASH_MIN_MEMORY_KIB,
                password_hash_time_cost=PASSWORD_HASH_MIN_TIME_COST - 1,
            )
    floor = Settings(
        env="development",
        password_hash_memory_kib=PASSWORD_HASH_MIN_MEMORY_KIB,
        password_hash_time_cost=PASSWORD_HASH_MIN_TIME_COST,
    )
    assert floor.password_hash_memory_kib == PASSWORD_HASH_MIN_MEMORY_KIB
    Settings(env="test", **weak)  # type: ignore[arg-type]


def test_a_service_started_as_documented_hashes_at_the_strong_default(tmp_path: Path) -> None:
    import sqlite3

    from argon2 import extract_parameters

    migrated = run_cli(["migrate"], cwd=tmp_path, bare=True)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    create_admin(
        tmp_path, email="root@example.org", password="a-long-enough-passphrase-4711", bare=True
    )
    with sqlite3.connect(tmp_path / "var" / "intake.sqlite3") as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users").fetchone()
    params = extract_parameters(stored)
    assert (params.memory_cost, params.time_cost, params.parallelism) == (65536, 3, 4)
