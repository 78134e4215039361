"""README documents what a user needs: the two commands at the top, and every setting."""

from __future__ import annotations

from pathlib import Path

from app.core.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && "
    ".venv/bin/pytest -n 3 --dist loadfile"
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


def test_code_and_docs_name_features_not_issue_numbers() -> None:
    """A maintainer has the code and docs/, not the tracker: "issue 8" or a rules file outside
    the repository tells them nothing."""
    import re
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", "app", "workers", "migrations", "benchmarks", "docs", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pattern = re.compile(r"\b[Ii]ssues? #?\d+\b|shared/domain\.md")
    here = Path(__file__).resolve()
    found = [
        f"{name}:{number}"
        for name in [*listed, "README.md", "pyproject.toml"]
        if (ROOT / name).suffix in {".py", ".md", ".toml", ".html", ".txt", ".ini", ".mako"}
        and (ROOT / name).resolve() != here
        and (ROOT / name).exists()
        for number, line in enumerate((ROOT / name).read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == [], found
