"""The outbox: claim, deliver, retry with backoff, dead-letter, leases, concurrent claimers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core import database
from app.core.settings import get_settings
from app.models import OutboxMessage, OutboxStatus
from app.outbox import registry, service
from tests.conftest import Clock

calls: list[int] = []
failures_left: dict[int, int] = {}


@pytest.fixture(autouse=True)
def _test_handlers() -> Iterator[None]:
    @registry.handler("test.ok")
    def ok(_session: Session, row: OutboxMessage) -> None:
        calls.append(row.id)

    @registry.handler("test.flaky")
    def flaky(_session: Session, row: OutboxMessage) -> None:
        left = failures_left.get(row.id, 0)
        if left:
            failures_left[row.id] = left - 1
            raise ConnectionError("smtp down")
        calls.append(row.id)

    @registry.handler("test.permanent")
    def permanent(_session: Session, _row: OutboxMessage) -> None:
        raise registry.PermanentFailure("target erased")

    calls.clear()
    failures_left.clear()
    yield
    for kind in ("test.ok", "test.flaky", "test.permanent"):
        registry._handlers.pop(kind, None)


def _claim_and_deliver(db: Session, worker: str = "w1") -> list[OutboxStatus | None]:
    ids = service.claim(db, worker=worker, limit=100)
    return [service.deliver(db, i, worker=worker) for i in ids]


def test_due_rows_are_delivered_once(db: Session) -> None:
    row = service.enqueue(db, "test.ok", {"x": 1})
    assert row is not None
    assert _claim_and_deliver(db) == [OutboxStatus.sent]
    assert _claim_and_deliver(db) == []
    assert calls == [row.id]
    db.refresh(row)
    assert row.status == OutboxStatus.sent and row.sent_at is not None


def test_rows_due_later_wait_for_their_time(db: Session, clock: Clock) -> None:
    import datetime as dt

    from app.core.time import now

    service.enqueue(db, "test.ok", {}, due_at=now() + dt.timedelta(minutes=10))
    assert _claim_and_deliver(db) == []
    clock.advance(minutes=11)
    assert _claim_and_deliver(db) == [OutboxStatus.sent]


def test_dedup_key_writes_a_message_once(db: Session) -> None:
    assert service.enqueue(db, "test.ok", {}, dedup_key="ack:1") is not None
    assert service.enqueue(db, "test.ok", {}, dedup_key="ack:1") is None
    assert len(db.scalars(select(OutboxMessage)).all()) == 1


def test_failure_retries_with_growing_backoff_then_dead_letters(db: Session, clock: Clock) -> None:
    settings = get_settings()
    row = service.enqueue(db, "test.flaky", {})
    assert row is not None
    failures_left[row.id] = 10_000
    delays = []
    for attempt in range(1, settings.outbox_max_attempts + 1):
        statuses = _claim_and_deliver(db)
        db.refresh(row)
        assert row.attempts == attempt
        if attempt < settings.outbox_max_attempts:
            assert statuses == [OutboxStatus.pending]
            assert row.last_error == "ConnectionError: smtp down"
            from app.core.time import now

            delay = (row.due_at - now()).total_seconds()
            delays.append(delay)
            # Not due before its backoff...
            assert _claim_and_deliver(db) == []
            clock.advance(seconds=delay + 1)
        else:
            assert statuses == [OutboxStatus.dead]
    assert delays[-1] > delays[0] * 4  # exponential, with jitter in [0.5, 1]
    assert service.stats(db)["dead"] == 1
    assert [r.id for r in service.dead_letters(db)] == [row.id]
    # Staff retry brings it back; it then succeeds.
    failures_left[row.id] = 0
    service.retry_dead(db, row.id)
    assert _claim_and_deliver(db) == [OutboxStatus.sent]


def test_retry_after_from_the_other_side_is_honoured_and_a_quota_wait_is_free(
    db: Session, clock: Clock
) -> None:
    from app.core.time import now

    waits = {"n": 0}

    @registry.handler("test.rate_limited")
    def rate_limited(_session: Session, _row: OutboxMessage) -> None:
        waits["n"] += 1
        if waits["n"] == 1:
            raise registry.RetryLater("429", retry_after_seconds=3600)
        if waits["n"] == 2:
            raise registry.RetryLater(
                "daily cap", retry_after_seconds=7200, counts_as_attempt=False
            )
        calls.append(_row.id)

    try:
        row = service.enqueue(db, "test.rate_limited", {})
        assert row is not None
        assert _claim_and_deliver(db) == [OutboxStatus.pending]
        db.refresh(row)
        assert (row.due_at - now()).total_seconds() >= 3599  # not the 10 s backoff
        clock.advance(seconds=3601)
        assert _claim_and_deliver(db) == [OutboxStatus.pending]
        db.refresh(row)
        assert row.attempts == 1  # the quota wait did not use an attempt
        assert (row.due_at - now()).total_seconds() >= 7199
        clock.advance(seconds=7201)
        assert _claim_and_deliver(db) == [OutboxStatus.sent]
    finally:
        registry._handlers.pop("test.rate_limited", None)


def test_a_permanent_failure_dead_letters_at_once(db: Session) -> None:
    service.enqueue(db, "test.permanent", {})
    assert _claim_and_deliver(db) == [OutboxStatus.dead]


def test_a_failed_handler_rolls_back_its_own_writes_only(db: Session) -> None:
    @registry.handler("test.writes_then_fails")
    def writes_then_fails(session: Session, _row: OutboxMessage) -> None:
        session.add(OutboxMessage(kind="test.side_effect", params={}, due_at=_row.due_at))
        session.flush()
        raise RuntimeError("boom")

    try:
        service.enqueue(db, "test.writes_then_fails", {})
        assert _claim_and_deliver(db) == [OutboxStatus.pending]
        kinds = db.scalars(select(OutboxMessage.kind)).all()
        assert "test.side_effect" not in kinds
    finally:
        registry._handlers.pop("test.writes_then_fails", None)


def test_a_crashed_workers_claim_comes_back_after_its_lease(db: Session, clock: Clock) -> None:
    row = service.enqueue(db, "test.ok", {})
    assert row is not None
    assert service.claim(db, worker="crashed", limit=10) == [row.id]  # never delivered
    assert service.claim(db, worker="w2", limit=10) == []
    # The crashed worker's id no longer owns it once someone else claimed it.
    clock.advance(seconds=get_settings().outbox_lease_seconds + 1)
    assert service.claim(db, worker="w2", limit=10) == [row.id]
    assert service.deliver(db, row.id, worker="crashed") is None
    assert service.deliver(db, row.id, worker="w2") == OutboxStatus.sent
    assert calls == [row.id]


def test_a_batch_is_delivered_with_one_lock_and_recorded_sent_in_one_statement(
    db: Session,
) -> None:
    rows = [service.enqueue(db, kind, {}) for kind in ("test.ok", "test.permanent", "test.ok")]
    claimed = service.claim_rows(db, worker="w1", limit=10)
    assert [r.id for r in claimed] == [r.id for r in rows if r is not None]
    locked = service.lock_claimed(db, claimed, worker="w1")
    done = service.deliver_locked(db, locked)
    ok, bad, ok2 = (r.id for r in claimed)
    assert done == {ok: OutboxStatus.sent, bad: OutboxStatus.dead, ok2: OutboxStatus.sent}
    assert calls == [ok, ok2]
    db.expire_all()
    stored = {r.id: r for r in db.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(done)))}
    assert stored[ok].status == OutboxStatus.sent and stored[ok].sent_at is not None
    assert stored[ok].lease_until is None and stored[ok2].status == OutboxStatus.sent
    assert stored[bad].status == OutboxStatus.dead and stored[bad].sent_at is None


def test_rows_reclaimed_or_cancelled_since_the_claim_are_not_sent(
    db: Session, clock: Clock
) -> None:
    first, second, third = (service.enqueue(db, "test.ok", {}) for _ in range(3))
    assert first is not None and second is not None and third is not None
    claimed = service.claim_rows(db, worker="slow", limit=10)
    # The slow worker's lease runs out and another worker claims the oldest row again; an
    # erasure cancels the newest (as app/privacy does for an erased request's messages).
    clock.advance(seconds=get_settings().outbox_lease_seconds + 1)
    assert [r.id for r in service.claim_rows(db, worker="w2", limit=1)] == [first.id]
    third.status = OutboxStatus.cancelled
    db.flush()
    mine = service.lock_claimed(db, claimed, worker="slow")
    assert [r.id for r in mine] == [second.id]  # still its own: nobody took it
    assert service.deliver_locked(db, mine) == {second.id: OutboxStatus.sent}
    assert calls == [second.id]


def test_a_time_budget_stops_a_batch_after_the_first_row_and_keeps_the_rest_claimed(
    db: Session,
) -> None:
    for _ in range(3):
        service.enqueue(db, "test.ok", {})
    locked = service.lock_claimed(db, service.claim_rows(db, worker="w", limit=10), worker="w")
    done = service.deliver_locked(db, locked, budget_seconds=0)
    assert list(done) == [locked[0].id] and calls == [locked[0].id]
    assert {r.status for r in locked[1:]} == {OutboxStatus.claimed}
    assert service.deliver_locked(db, locked[1:]) == {r.id: OutboxStatus.sent for r in locked[1:]}


def _enqueue_many_skips_used_keys(db: Session) -> None:
    first = [service.Queued("test.ok", {"n": 1}, dedup_key="k1")]
    assert service.enqueue_many(db, first) == 1
    again = [
        service.Queued("test.ok", {"n": 2}, dedup_key="k1"),  # used: skipped
        service.Queued("test.ok", {"n": 3}, dedup_key="k2"),
        service.Queued("test.ok", {"n": 4}),
    ]
    assert service.enqueue_many(db, again) == 2
    params = db.scalars(select(OutboxMessage.params).order_by(OutboxMessage.id)).all()
    assert [p["n"] for p in params] == [1, 3, 4]


def test_enqueue_many_writes_the_rows_and_skips_a_used_dedup_key(db: Session) -> None:
    _enqueue_many_skips_used_keys(db)


@pytest.mark.sqlite
def test_on_sqlite_enqueue_many_writes_the_rows_and_skips_a_used_dedup_key(db: Session) -> None:
    _enqueue_many_skips_used_keys(db)


def test_stats_report_due_in_flight_and_oldest_age(db: Session, clock: Clock) -> None:
    service.enqueue(db, "test.ok", {})
    service.enqueue(db, "test.ok", {})
    clock.advance(seconds=30)
    stats = service.stats(db)
    assert stats["due"] == 2 and stats["in_flight"] == 0
    assert 29 <= stats["oldest_due_age_seconds"] <= 60
    service.claim(db, worker="w", limit=1)
    assert service.stats(db)["in_flight"] == 1


@pytest.mark.sqlite
def test_claim_and_deliver_work_on_sqlite(db: Session) -> None:
    service.enqueue(db, "test.ok", {})
    service.enqueue(db, "test.ok", {})
    assert _claim_and_deliver(db) == [OutboxStatus.sent, OutboxStatus.sent]


def _concurrent_claims(engine_url: str, workers: int, rows: int) -> list[list[int]]:
    """Real transactions on separate connections claiming at the same time."""
    engine = database.build_engine(engine_url)
    try:
        with Session(engine) as s:
            for _ in range(rows):
                service.enqueue(s, "test.ok", {})
            s.commit()
        barrier = threading.Barrier(workers)
        results: list[list[int]] = [[] for _ in range(workers)]

        def claimer(i: int) -> None:
            with Session(engine) as s:
                barrier.wait()
                while True:
                    got = service.claim(s, worker=f"w{i}", limit=7)
                    s.commit()
                    if not got:
                        break
                    results[i].extend(got)

        threads = [threading.Thread(target=claimer, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return results
    finally:
        engine.dispose()


def test_concurrent_claimers_on_postgresql_never_share_a_row(pg_engine: object) -> None:
    import secrets

    from app.core import migrate
    from tests.conftest import create_pg_database, drop_pg_database

    name = f"intake_claim_{secrets.token_hex(3)}"
    url = create_pg_database(name)
    try:
        migrate.upgrade(url)
        results = _concurrent_claims(url, workers=4, rows=200)
    finally:
        drop_pg_database(name)
    flat = [i for r in results for i in r]
    assert len(flat) == 200 and len(set(flat)) == 200
    assert sum(1 for r in results if r) >= 2  # SKIP LOCKED lets them work side by side


def test_concurrent_claimers_on_sqlite_never_share_a_row(tmp_path: object) -> None:
    from pathlib import Path

    from app.core import migrate

    url = f"sqlite:///{Path(str(tmp_path)) / 'claims.sqlite3'}"
    migrate.upgrade(url)
    results = _concurrent_claims(url, workers=4, rows=120)
    flat = [i for r in results for i in r]
    assert len(flat) == 120 and len(set(flat)) == 120
