"""The per-address submission limit's counter (one upsert per attempt), on both databases:
the limit holds per address, another address is not affected, and a new window starts fresh."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.intake import throttle
from app.models import IntakeRequest
from tests.conftest import Clock
from tests.intake_helpers import form


def _run(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "submit_rate_limit", 3)
    window = settings.submit_rate_window_minutes * 60
    assert [throttle.hit("198.51.100.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = throttle.hit("198.51.100.1")
    assert window - 5 <= wait <= window
    assert throttle.hit("198.51.100.2") == 0.0  # another address has its own count
    clock.advance(seconds=window / 2)
    assert window / 2 - 5 <= throttle.hit("198.51.100.1") <= window / 2
    clock.advance(seconds=window / 2 + 1)  # the window is over: counted afresh
    assert [throttle.hit("198.51.100.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.hit("198.51.100.1") > 0


def test_the_limit_counts_per_address_and_a_new_window_starts_fresh(
    db: Session, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(monkeypatch, clock)


@pytest.mark.sqlite
def test_on_sqlite_the_limit_counts_per_address_and_a_new_window_starts_fresh(
    db: Session, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(monkeypatch, clock)


def test_forms_that_fail_validation_count_towards_the_limit_too(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API counts an attempt in the submission's own transaction; one whose body is then
    refused (422) still counts, and over the limit nothing is stored."""
    monkeypatch.setattr(get_settings(), "submit_rate_limit", 2)
    bad = form(email="not an address")
    assert client.post("/api/v1/requests", json=bad).status_code == 422
    assert client.post("/api/v1/requests", json=bad).status_code == 422
    before = db.scalar(select(func.count()).select_from(IntakeRequest))
    refused = client.post("/api/v1/requests", json=form())
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert db.scalar(select(func.count()).select_from(IntakeRequest)) == before


def test_a_valid_form_counts_once(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "submit_rate_limit", 2)
    assert client.post("/api/v1/requests", json=form()).status_code == 201
    assert client.post("/api/v1/requests", json=form()).status_code == 201
    assert client.post("/api/v1/requests", json=form()).status_code == 429
