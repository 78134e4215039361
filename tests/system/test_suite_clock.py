"""``INTAKE_TEST_NOW`` moves the whole suite to an instant: every test starts there, in this
process and in child processes, and ``clock`` counts from it (tests/fixtures/suite_clock_probe.py
checks that inside a run of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT

PROBE = ROOT / "tests" / "fixtures" / "suite_clock_probe.py"

pytestmark = pytest.mark.slow


def run_probe(instant: str, tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env["INTAKE_TEST_NOW"] = instant
    if tmp is not None:  # the run's temporary folders go here
        env["TMPDIR"] = str(tmp)
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(PROBE), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.parametrize(
    "instant",
    [
        "2027-03-28T00:10:00Z",  # London's clocks go forward at 01:00 UTC that day
        "2026-10-25T01:30:00+01:00",  # the repeated hour in London, given with its offset
    ],
)
def test_the_suite_runs_at_the_instant_given_in_intake_test_now(instant: str) -> None:
    result = run_probe(instant)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("instant", "problem"),
    [("2027-03-28T00:10", "needs its UTC offset"), ("tomorrow", "is not an ISO 8601 instant")],
)
def test_an_instant_without_offset_or_unreadable_stops_the_run(
    instant: str, problem: str, tmp_path: Path
) -> None:
    result = run_probe(instant, tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"INTAKE_TEST_NOW={instant!r} {problem}" in output, output
    assert "passed" not in result.stdout
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind
