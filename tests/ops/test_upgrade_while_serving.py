"""Upgrades without downtime: the newest migrations are applied to a database that the previous
release's API is serving, and that API keeps answering (sign-in, submission, the requester's
view, the staff queue) on the upgraded schema. Migrations add first and remove later; one that
drops or renames what the previous release reads fails here.

"The previous release" is the committed tree just before the newest migration was added (the
working tree's head migration, if not committed yet, counts as the newest; or the commit named by
``INTAKE_TEST_PREVIOUS_RELEASE``), run from its own files with this virtual environment.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from app.core import migrate as core_migrate
from tests.conftest import create_pg_database, drop_pg_database
from tests.factories import form
from tests.processes import ROOT, Service, free_port, migrate, run_cli, service_env

#: Runs ``app.cli`` from the folder given first, not from this checkout: the editable install
#: puts a finder for ``app`` ahead of sys.path, so it is taken out.
BOOT = (
    "import sys; prev = sys.argv.pop(1); "
    "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in "
    "getattr(f, '__module__', '')]; sys.path.insert(0, prev); "
    "from app.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _export(commit: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "archive", commit, "app", "migrations", "alembic.ini"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def _heads(tree: Path) -> list[str]:
    config = Config()
    config.set_main_option("script_location", str(tree / "migrations"))
    return list(ScriptDirectory.from_config(config).get_heads())


def _previous_release(into: Path) -> str:
    """Export the tree before the newest migration into ``into``; returns its commit. A commit
    whose migrations had two heads (a merge of two lines of work, fixed by the next commit) was
    never a release: the nearest one before it with a single head is taken."""
    scripts = ScriptDirectory.from_config(core_migrate.alembic_config())
    current = scripts.get_current_head()
    head = scripts.get_revision(current or "head")
    assert head is not None
    newest = Path(head.path).relative_to(ROOT)
    added = _git("log", "-1", "--format=%H", "--diff-filter=A", "--", str(newest))
    # INTAKE_TEST_PREVIOUS_RELEASE names another commit or tag to upgrade from.
    start = os.environ.get("INTAKE_TEST_PREVIOUS_RELEASE") or (f"{added}^" if added else "HEAD")
    for commit in _git("rev-list", "--max-count=30", start).split():
        tree = into / commit[:10]
        _export(commit, tree)
        heads = _heads(tree)
        if len(heads) == 1 and heads[0] != current:
            return commit[:10]
        shutil.rmtree(tree)
    pytest.fail(f"no commit with one migration head before {start}")


def _old_cli(prev: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", BOOT, str(prev), *args]


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"intake_upgrade_{secrets.token_hex(4)}"
    url = create_pg_database(name)
    yield url
    drop_pg_database(name)


@pytest.mark.slow
def test_the_previous_release_keeps_serving_while_the_newest_migrations_run(
    tmp_path: Path, pg_url: str
) -> None:
    try:
        _git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git history here to take the previous release from")
    commit = _previous_release(tmp_path / "previous")
    prev = tmp_path / "previous" / commit
    env = service_env({"INTAKE_DATABASE_URL": pg_url, "INTAKE_BROKER_URL": "memory://"})
    old_migrate = subprocess.run(
        _old_cli(prev, "migrate"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert old_migrate.returncode == 0, old_migrate.stdout + old_migrate.stderr
    pending = run_cli(["migrate", "--check"], cwd=tmp_path, env=env, embedded=False)
    assert pending.returncode == 1, f"nothing newer than {commit}: " + pending.stdout
    created = subprocess.run(
        _old_cli(
            prev,
            "create-admin",
            "--email",
            "staff@example.org",
            "--name",
            "Staff",
            "--password-stdin",
        ),
        cwd=tmp_path,
        env=env,
        input="a long enough password\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr

    port = free_port()
    old_api = Service(
        name=f"previous release {commit}",
        args=_old_cli(prev, "api", "--host", "127.0.0.1", "--port", str(port)),
        cwd=tmp_path,
        env=env,
        log_path=tmp_path / "old-api.log",
        port=port,
    )
    with old_api.start():
        old_api.wait_ready()
        before = httpx.post(f"{old_api.url}/api/v1/requests", json=form(), timeout=10)
        assert before.status_code == 201, before.text

        migrate(tmp_path, {"INTAKE_DATABASE_URL": pg_url, "INTAKE_BROKER_URL": "memory://"})
        now_ = run_cli(["migrate", "--check"], cwd=tmp_path, env=env, embedded=False)
        assert now_.returncode == 0, now_.stdout

        # The previous release, on the upgraded schema, still does its work.
        assert httpx.get(f"{old_api.url}/readyz", timeout=10).status_code == 200
        login = httpx.post(
            f"{old_api.url}/api/v1/auth/login",
            json={"email": "staff@example.org", "password": "a long enough password"},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        staff = {"Authorization": f"Bearer {login.json()['user_token']}"}
        after = httpx.post(
            f"{old_api.url}/api/v1/requests", json=form(email="later@example.org"), timeout=10
        )
        assert after.status_code == 201, after.text + old_api.log_tail()
        for reply in (before.json(), after.json()):
            own = httpx.get(
                f"{old_api.url}/api/v1/requests/{reply['reference']}",
                headers={"Authorization": f"Bearer {reply['access_token']}"},
                timeout=10,
            )
            assert own.status_code == 200, own.text
        queue = httpx.get(f"{old_api.url}/api/v1/queue", headers=staff, timeout=10)
        assert queue.status_code == 200, queue.text
        assert {i["reference"] for i in queue.json()["items"]} >= {
            before.json()["reference"],
            after.json()["reference"],
        }
        errors = [line for line in old_api.read_log().splitlines() if "unhandled_error" in line]
        assert errors == [], errors
