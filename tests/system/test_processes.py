"""The process helpers other end-to-end tests rely on: a private Redis that can be taken away
and brought back on the same port, and ``stop()`` noticing (and ending) stray processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.processes import ManagedProcess, _alive, start_redis, wait_for

pytestmark = pytest.mark.slow

STUBBORN_CHILD = """
import signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c",
    "import pathlib, signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN);"
    "pathlib.Path('handler-installed').touch(); time.sleep(120)"])
time.sleep(120)
"""


def test_private_redis_stops_and_comes_back_on_the_same_port(tmp_path: Path) -> None:
    redis = start_redis(tmp_path)
    try:
        port = redis.port
        assert redis.ping() and redis.url == f"redis://127.0.0.1:{port}/0"
        redis.stop()
        assert not redis.ping()
        redis.start()
        assert redis.port == port and redis.ping()
    finally:
        redis.stop()
    assert not redis.ping()


def test_stop_reports_and_ends_a_child_that_ignores_ctrl_c(tmp_path: Path) -> None:
    proc = ManagedProcess(
        name="stubborn",
        args=[sys.executable, "-c", STUBBORN_CHILD],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        log_path=tmp_path / "stubborn.log",
    ).start()
    try:
        wait_for(lambda: bool(proc.children()), timeout=10, what="the child to start")
        (child,) = proc.children()
        wait_for(
            lambda: (tmp_path / "handler-installed").exists(),
            timeout=10,
            what="the child to ignore Ctrl-C",
        )
    finally:
        proc.stop(timeout=5)
    assert proc.exit_code not in (0, None)
    assert proc.leftovers() == {child}
    wait_for(lambda: not _alive(child), timeout=5, what="the stray child to be killed")
