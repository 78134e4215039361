"""Start-up imports run without the cyclic collector, and it is back on afterwards."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.startup import quick_imports
from tests.conftest import child_env


@pytest.fixture
def collector() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()


def test_the_collector_is_off_inside_on_after_and_what_was_built_is_frozen(
    collector: None,
) -> None:
    gc.enable()
    gc.unfreeze()
    with quick_imports():
        assert not gc.isenabled()
        built = [[i] for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)


def test_a_collector_turned_off_before_stays_off(collector: None) -> None:
    gc.disable()
    with quick_imports():
        pass
    assert not gc.isenabled()


def test_the_collector_comes_back_when_an_import_fails(collector: None) -> None:
    gc.enable()
    with pytest.raises(ImportError), quick_imports():
        import app.no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert gc.isenabled()


def _fresh_python(tmp_path: Path, script: str, *args: str) -> str:
    """Run ``script`` in a new interpreter on the embedded default (SQLite database and broker,
    so Celery needs no Redis client) under ``tmp_path``; its output, after checking it exited 0."""
    env = child_env(
        INTAKE_DATA_DIR=str(tmp_path / "var"),
        INTAKE_DATABASE_URL=f"sqlite:///{tmp_path / 'intake.sqlite3'}",
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# In a fresh process: each command's start stubbed where it would start serving; what counts is
# that its imports went through quick_imports (nothing else in the app freezes).
COMMANDS = """
import gc, sys
import uvicorn
import app.ops.watchdog
from app import cli
from workers.celery_app import app as celery

uvicorn.run = lambda *a, **k: None
app.ops.watchdog.start = lambda: None
celery.start = lambda argv=None: None
for command in sys.argv[1:]:
    gc.unfreeze()
    cli.main([command])
    print(command, gc.get_freeze_count() > 0, gc.isenabled())
"""


def test_the_service_commands_import_with_quick_imports(tmp_path: Path) -> None:
    commands = ["api", "worker", "beat", "migrate"]
    out = _fresh_python(tmp_path, COMMANDS, *commands)
    lines = [line for line in out.splitlines() if line.split(" ")[0] in commands]
    assert lines == [f"{command} True True" for command in commands], out


# Beat up to the moment its scheduler would start (after Celery's own start-up, which imports
# the app's task modules unless told otherwise), and the worker up to Celery's start.
TASK_MODULES_LOADED = """
import sys
from celery.apps.beat import Beat
from app import cli
from workers.celery_app import TASK_MODULES, app as celery

def loaded(*_args, **_kwargs):
    print(sys.argv[1], sorted(m for m in TASK_MODULES if m in sys.modules))
    raise SystemExit(0)

Beat.start_scheduler = loaded
if sys.argv[1] == "worker":
    celery.start = loaded
cli.main([sys.argv[1]])
"""


@pytest.mark.parametrize("command", ["beat", "worker"])
def test_beat_starts_without_the_task_modules_the_worker_with_all(
    tmp_path: Path, command: str
) -> None:
    from workers.celery_app import TASK_MODULES

    out = _fresh_python(tmp_path, TASK_MODULES_LOADED, command)
    expected = [] if command == "beat" else sorted(TASK_MODULES)
    assert f"{command} {expected}" in out.splitlines(), out[-2000:]


WORKER_IMPORTS = """
import sys
from workers.celery_app import app as celery
from app import cli
from app.core.settings import get_settings
celery.loader.import_default_modules()
cli.sign_in_url(get_settings())  # what `run` and `create-admin` print
print(sorted(name for name in ("fastapi", "pypdf", "redis", "app.web.auth") if name in sys.modules))
"""


def test_the_worker_and_commands_import_neither_the_web_framework_the_pages_pdf_nor_redis(
    tmp_path: Path,
) -> None:
    # Each costs every worker, beat and command start tens of milliseconds of CPU (the pages a
    # third of a second), for code only the API (FastAPI, the pages, the submission limit's
    # Redis client) or an upload (pypdf) runs.
    out = _fresh_python(tmp_path, WORKER_IMPORTS)
    assert out.strip().splitlines()[-1] == "[]", out[-2000:]


BROKER_TRANSPORT = """
from workers import embedded_broker
from workers.celery_app import app as celery
with celery.connection_for_read() as conn:
    print(type(conn.transport) is embedded_broker.Transport)
"""


def test_a_worker_on_the_embedded_broker_uses_the_transport_that_stops_waiting_when_asked(
    tmp_path: Path,
) -> None:
    out = _fresh_python(tmp_path, BROKER_TRANSPORT)
    assert out.strip().splitlines()[-1] == "True", out[-2000:]
