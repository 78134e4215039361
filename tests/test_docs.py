"""README documents what a user needs: the two commands at the top, and every setting."""

from __future__ import annotations

from pathlib import Path

from app.core.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && "
    ".venv/bin/pytest -n 2 --dist loadfile"
)
RUN_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/asylum-intake run"
)


def test_readme_lists_every_setting() -> None:
    missing = [
        f"{ENV_PREFIX}{name.upper()}"
        for name in Settings.model_fields
        if f"`{ENV_PREFIX}{name.upper()}`" not in README
    ]
    assert missing == [], f"README's settings table lacks: {missing}"


def test_the_two_commands_are_near_the_top_and_ci_runs_the_test_command() -> None:
    head = README[:2000]
    assert RUN_COMMAND in head and TEST_COMMAND in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert TEST_COMMAND in ci
