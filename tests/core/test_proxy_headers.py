"""Forwarded headers are honoured only when ``INTAKE_TRUST_PROXY_HEADERS`` says so, in the real
API process: uvicorn's own proxy handling follows the setting too (by default it trusts
``X-Forwarded-*`` from 127.0.0.1, which would let anyone on the host pose as HTTPS or spoof the
client address that the submission limit counts)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.processes import migrated_embedded, start_api

pytestmark = pytest.mark.slow

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def _hsts(workdir: Path, trust: str) -> str | None:
    env = {"INTAKE_TRUST_PROXY_HEADERS": trust}
    migrated_embedded(workdir)
    api = start_api(workdir, env=env)
    try:
        reply = httpx.get(f"{api.url}/healthz", headers=FORWARDED, timeout=10)
        assert reply.status_code == 200
        return reply.headers.get("strict-transport-security")
    finally:
        api.stop()


def test_forwarded_proto_from_localhost_is_ignored_unless_trusted(tmp_path: Path) -> None:
    assert _hsts(tmp_path, "false") is None


def test_forwarded_proto_is_honoured_when_trusted(tmp_path: Path) -> None:
    assert _hsts(tmp_path, "true") is not None
