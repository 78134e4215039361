"""The code stays linted, formatted and type-checked (ruff and mypy, as configured in
pyproject.toml); CI runs this with the rest of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    lint = _run(str(BIN / "ruff"), "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.heavy
def test_mypy_strict_finds_nothing() -> None:
    result = _run(str(BIN / "mypy"), "app", "workers")
    assert result.returncode == 0, result.stdout + result.stderr


def test_urllib3_is_urllib3_not_a_fork_installed_over_it() -> None:
    """A dependency that brings ``niquests`` (caldav 2 and later do) installs urllib3-future
    over the ``urllib3`` package itself, and every ``requests`` user in the process breaks."""
    import importlib.util

    import urllib3

    assert importlib.util.find_spec("urllib3.util.traffic_police") is None, (
        "urllib3-future replaced urllib3: find the dependency that brings niquests"
    )
    assert urllib3.__version__.startswith("2.")
