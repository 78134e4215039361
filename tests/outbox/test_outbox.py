"""The outbox: claim, deliver, retry with backoff, dead-letter, leases, concurrent claimers."""

from __future__ import annotations

import datetime as dt
import importlib
import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from app.core import database
from app.core.settings import get_settings
from app.core.time import now
from app.models import OutboxMessage, OutboxStatus
from app.outbox import registry, service
from tests.conftest import (
    Clock,
    create_migrated_pg_database,
    create_migrated_sqlite,
    drop_pg_database,
)

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


def test_with_the_default_lease_a_crashed_workers_rows_come_back_within_twenty_seconds(
    db: Session, clock: Clock
) -> None:
    # A reminder a crashed worker had claimed must still go out within a minute of its time:
    # the lease is seconds, not minutes (a live worker renews it while it delivers).
    row = service.enqueue(db, "test.ok", {})
    assert row is not None
    assert service.claim(db, worker="crashed", limit=10) == [row.id]
    clock.advance(seconds=4)
    assert service.claim(db, worker="w2", limit=10) == []  # a live worker's claim holds
    clock.advance(seconds=16)
    assert service.claim(db, worker="w2", limit=10) == [row.id]


def test_renewing_gives_the_workers_own_rows_a_fresh_lease_and_leaves_the_rest_alone(
    db: Session, clock: Clock
) -> None:
    _renewal_keeps_own_rows_only(db, clock)


@pytest.mark.sqlite
def test_on_sqlite_renewing_gives_the_workers_own_rows_a_fresh_lease_only(
    db: Session, clock: Clock
) -> None:
    _renewal_keeps_own_rows_only(db, clock)


def _renewal_keeps_own_rows_only(db: Session, clock: Clock) -> None:
    lease = get_settings().outbox_lease_seconds
    first, second, third = (service.enqueue(db, "test.ok", {}) for _ in range(3))
    assert first is not None and second is not None and third is not None
    mine = service.claim_rows(db, worker="w1", limit=2)
    theirs = service.claim_rows(db, worker="w2", limit=1)
    assert [r.id for r in mine] == [first.id, second.id] and [r.id for r in theirs] == [third.id]
    second.status = OutboxStatus.cancelled  # an erasure cancelled it meanwhile
    db.flush()
    clock.advance(seconds=lease - 1)
    before = now()
    assert service.renew_leases(db, [*mine, *theirs], worker="w1") == 1
    after = now()
    db.expire_all()
    renewed = db.get(OutboxMessage, first.id)
    assert renewed is not None and renewed.lease_until is not None
    fresh = dt.timedelta(seconds=lease)
    assert before + fresh <= renewed.lease_until <= after + fresh
    assert renewed.claimed_by == "w1" and renewed.status == OutboxStatus.claimed
    # Past the first lease: w2's row (not renewed) comes back, w1's renewed one does not.
    clock.advance(seconds=2)
    assert service.claim(db, worker="w3", limit=10) == [third.id]
    # And the renewed lease runs out in its turn (w1 died after renewing).
    clock.advance(seconds=lease - 1)
    assert service.claim(db, worker="w4", limit=10) == [first.id]


def test_the_pump_keeps_the_rest_of_its_batch_leased_while_it_delivers(
    db: Session, clock: Clock
) -> None:
    _pump_keeps_its_batch_leased(db, clock)


@pytest.mark.sqlite
def test_on_sqlite_the_pump_keeps_the_rest_of_its_batch_leased_while_it_delivers(
    db: Session, clock: Clock
) -> None:
    _pump_keeps_its_batch_leased(db, clock)


def _pump_keeps_its_batch_leased(db: Session, clock: Clock) -> None:
    """The batch takes twice the lease to deliver (the clock moves in the handler): every row
    the pump still holds keeps an unexpired lease all along, so no other worker takes it."""
    from workers import outbox as outbox_tasks

    settings = get_settings()
    lease = settings.outbox_lease_seconds
    rows = 40  # below the batch size: one claim, four groups of ``outbox_commit_every``
    assert settings.outbox_batch_size > rows and settings.outbox_commit_every == 10
    tick = lease / 20  # a group of ten: half a lease
    expired_seen: list[int] = []

    @registry.handler("test.tick")
    def tick_handler(session: Session, row: OutboxMessage) -> None:
        clock.advance(seconds=tick)
        expired = session.scalar(
            select(func.count()).where(
                OutboxMessage.kind == "test.tick",
                OutboxMessage.status == OutboxStatus.claimed,
                OutboxMessage.lease_until <= now(),
            )
        )
        expired_seen.append(int(expired or 0))
        calls.append(row.id)

    try:
        ids = [r.id for r in (service.enqueue(db, "test.tick", {}) for _ in range(rows)) if r]
        assert outbox_tasks.pump() == rows
        assert sorted(calls) == sorted(ids)
        assert len(expired_seen) == rows and set(expired_seen) == {0}, expired_seen
        statuses = db.scalars(select(OutboxMessage.status).where(OutboxMessage.id.in_(ids)))
        assert set(statuses) == {OutboxStatus.sent}
    finally:
        registry._handlers.pop("test.tick", None)


def test_retry_backoff_doubles_from_the_base_to_the_cap_times_a_jitter_of_half_to_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = get_settings()
    assert (settings.outbox_backoff_base_seconds, settings.outbox_backoff_max_seconds) == (
        10.0,
        1800.0,
    )
    bounds: set[tuple[float, float]] = set()

    def schedule(pick: int) -> list[float]:
        def uniform(low: float, high: float) -> float:
            bounds.add((low, high))
            return (low, high)[pick]

        monkeypatch.setattr(service.random, "uniform", uniform)
        return [service.backoff_seconds(attempts) for attempts in range(0, 12)]

    # attempts:             0  1   2   3   4    5    6    7     8     9    10    11
    assert schedule(1) == [10, 10, 20, 40, 80, 160, 320, 640, 1280, 1800, 1800, 1800]
    assert schedule(0) == [5, 5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900]
    assert bounds == {(0.5, 1.0)}
    monkeypatch.undo()
    drawn = [service.backoff_seconds(3) for _ in range(300)]
    assert all(20.0 <= d <= 40.0 for d in drawn) and len(set(drawn)) > 1


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


@pytest.fixture(scope="module")
def committed_pg_url() -> Iterator[str]:
    """A PostgreSQL database of its own, where transactions really commit and separate
    connections really contend (the ``db`` fixture's rolled-back transaction cannot)."""
    name = f"intake_claim_{secrets.token_hex(3)}"
    url = create_migrated_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def committed_pg(committed_pg_url: str) -> Iterator[Engine]:
    engine = database.build_engine(committed_pg_url, for_tests=True)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM outbox"))
    try:
        yield engine
    finally:
        engine.dispose()


def _committed_rows(engine: Engine, count: int, kind: str = "test.ok") -> list[int]:
    with Session(engine) as s:
        rows = [service.enqueue(s, kind, {}) for _ in range(count)]
        s.commit()
        return [r.id for r in rows if r is not None]


def _never_wait_for_a_row_lock(session: Session) -> None:
    """A claimer that has to wait for another transaction's row lock fails at once (a lock
    wait, not slowness: a busy machine cannot trip it), instead of blocking the test."""
    session.execute(text("SET LOCAL lock_timeout = '200ms'"))


def test_a_claimer_takes_other_rows_instead_of_waiting_for_rows_another_is_claiming(
    committed_pg: Engine,
) -> None:
    ids = _committed_rows(committed_pg, 10)
    with Session(committed_pg) as first, Session(committed_pg) as second:
        taken = service.claim(first, worker="first", limit=4)  # not committed: rows locked
        assert taken == ids[:4]
        _never_wait_for_a_row_lock(second)
        other = service.claim(second, worker="second", limit=4)
        assert other == ids[4:8]
        second.commit()
        first.commit()


def test_a_group_still_being_delivered_after_its_lease_ran_out_is_not_claimed_again(
    committed_pg: Engine, clock: Clock
) -> None:
    """A slow send outlasts the lease: other claimers skip the locked group instead of taking
    it (a second send) or waiting for it; once it is recorded sent, nobody sends it again."""
    ids = _committed_rows(committed_pg, 3)
    with Session(committed_pg) as slow, Session(committed_pg) as other:
        rows = service.claim_rows(slow, worker="slow", limit=10)
        slow.commit()
        group = service.lock_claimed(slow, rows, worker="slow")  # the sends begin
        assert [r.id for r in group] == ids
        clock.advance(seconds=get_settings().outbox_lease_seconds + 1)
        _never_wait_for_a_row_lock(other)
        assert service.claim(other, worker="other", limit=10) == []
        other.commit()
        assert service.deliver_locked(slow, group) == dict.fromkeys(ids, OutboxStatus.sent)
        slow.commit()
        assert service.claim(other, worker="other", limit=10) == []
        other.commit()
    assert calls == ids


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


def test_concurrent_claimers_on_postgresql_never_share_a_row(
    committed_pg: Engine, committed_pg_url: str
) -> None:
    results = _concurrent_claims(committed_pg_url, workers=4, rows=200)
    flat = [i for r in results for i in r]
    assert len(flat) == 200 and len(set(flat)) == 200
    assert sum(1 for r in results if r) >= 2  # SKIP LOCKED lets them work side by side


def test_concurrent_claimers_on_sqlite_never_share_a_row(tmp_path: object) -> None:
    url = create_migrated_sqlite(Path(str(tmp_path)) / "claims.sqlite3")
    results = _concurrent_claims(url, workers=4, rows=120)
    flat = [i for r in results for i in r]
    assert len(flat) == 120 and len(set(flat)) == 120


def test_the_dispatch_benchmark_runs_the_cli_beside_the_interpreter_that_runs_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``python -m benchmarks.dispatch`` from any environment (a CI venv elsewhere, an image
    without ``.venv/``) starts that environment's ``asylum-intake``."""
    import benchmarks.dispatch

    elsewhere = tmp_path / "env" / "bin"
    monkeypatch.setattr(sys, "executable", str(elsewhere / "python"))
    try:
        reloaded = importlib.reload(benchmarks.dispatch)
        assert elsewhere / "asylum-intake" == reloaded.CLI
    finally:
        monkeypatch.undo()
        importlib.reload(benchmarks.dispatch)
