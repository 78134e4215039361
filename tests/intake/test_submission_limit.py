"""The per-address submission limit's counter, in Redis (production: the broker is Redis) and
in the database (one upsert per attempt, both databases; also while Redis does not answer):
the limit holds per address, another address is not affected, and a new window starts fresh."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.intake import throttle
from app.models import IntakeRequest, LoginThrottle
from tests.conftest import Clock
from tests.factories import form
from tests.processes import free_port

#: The machine's Redis (``.ci/run`` starts it), in a database of its own: one per parallel
#: worker (pytest-xdist's gw0, gw1, ...: 15, 14, ...), as these tests empty it.
SHARED_REDIS = (
    f"redis://127.0.0.1:6379/{15 - int(os.environ.get('PYTEST_XDIST_WORKER', 'gw0')[2:])}"
)


def _hit(address: str) -> float:
    """One attempt counted, as the API's dependency counts it (on an event loop)."""
    return asyncio.run(throttle.hit(address))


def _run(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "submit_rate_limit", 3)
    window = settings.submit_rate_window_minutes * 60
    assert [_hit("198.51.100.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = _hit("198.51.100.1")
    assert window - 5 <= wait <= window
    assert _hit("198.51.100.2") == 0.0  # another address has its own count
    clock.advance(seconds=window / 2)
    assert window / 2 - 5 <= _hit("198.51.100.1") <= window / 2
    clock.advance(seconds=window / 2 + 1)  # the window is over: counted afresh
    assert [_hit("198.51.100.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert _hit("198.51.100.1") > 0


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
    """The API counts an attempt before it reads the form; one whose body is then refused
    (422) still counts, and over the limit nothing is stored."""
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


@pytest.fixture
def redis_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Redis]:
    """The broker is Redis, as in production; its database is emptied before and after."""
    monkeypatch.setattr(get_settings(), "broker_url", SHARED_REDIS)
    client = Redis.from_url(SHARED_REDIS, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_with_a_redis_broker_the_limit_counts_in_redis_and_keeps_no_address(
    client: TestClient, db: Session, redis_broker: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "submit_rate_limit", 2)
    window = settings.submit_rate_window_minutes * 60
    assert client.post("/api/v1/requests", json=form()).status_code == 201
    assert client.post("/api/v1/requests", json=form(email="x")).status_code == 422
    refused = client.post("/api/v1/requests", json=form())
    assert refused.status_code == 429
    assert window - 5 <= int(refused.headers["retry-after"]) <= window
    assert _hit("198.51.100.9") == 0.0  # another address has its own count
    keys = sorted(str(k) for k in redis_broker.keys("asylum-intake:*"))
    assert len(keys) == 2 and all(k.startswith("asylum-intake:submit:ip:") for k in keys)
    everything = " ".join(str(k) for k in redis_broker.keys("*"))
    assert "testclient" not in everything and "198.51.100.9" not in everything
    assert all(0 < redis_broker.ttl(k) <= window for k in keys)  # gone with the window
    assert db.scalar(select(func.count()).select_from(LoginThrottle)) == 0


def test_a_redis_window_ends_when_its_key_expires() -> None:
    key = throttle.key_for("198.51.100.10")

    async def count() -> tuple[int, float]:
        client = AsyncRedis.from_url(SHARED_REDIS)
        try:
            pipe = client.pipeline(transaction=False)
            return throttle._read_count(await throttle._queue_count(pipe, key, 1).execute())
        finally:
            await client.aclose()

    Redis.from_url(SHARED_REDIS).delete(throttle.REDIS_PREFIX + key)
    assert asyncio.run(count())[0] == 1
    assert asyncio.run(count()) == (2, 1.0)
    # Redis itself ends the window: wait for the key to expire, not for a guessed time.
    redis = Redis.from_url(SHARED_REDIS)
    deadline = time.monotonic() + 10
    while redis.exists(throttle.REDIS_PREFIX + key):
        assert time.monotonic() < deadline, "the window's key never expired"
        time.sleep(0.01)  # the polling interval of a bounded wait
    assert asyncio.run(count())[0] == 1


def test_while_redis_does_not_answer_the_database_counts(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "broker_url", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(settings, "submit_rate_limit", 2)
    assert [_hit("198.51.100.11") for _ in range(2)] == [0.0, 0.0]
    assert _hit("198.51.100.11") > 0
    assert _hit("198.51.100.12") == 0.0
    assert db.scalar(select(func.count()).select_from(LoginThrottle)) == 2


def test_the_stored_key_is_a_keyed_hash_not_a_plain_hash_of_the_address() -> None:
    address = "203.0.113.7"
    key = throttle.key_for(address)
    assert key.startswith("submit:ip:") and address not in key
    assert hashlib.sha256(address.encode()).hexdigest() not in key
    assert key == throttle.key_for(address) != throttle.key_for("203.0.113.8")


def test_the_daily_retention_run_deletes_counts_whose_window_ended(
    db: Session, clock: Clock
) -> None:
    from app.core.time import now
    from app.privacy.service import run_retention

    window = get_settings().submit_rate_window_minutes * 60
    _hit("198.51.100.20")
    clock.advance(seconds=window + 60)
    _hit("198.51.100.21")  # a window still running
    run_retention(db, now())
    keys = db.scalars(select(LoginThrottle.key)).all()
    assert keys == [throttle.key_for("198.51.100.21")]
