"""Parallel routings never push an expert past capacity: real transactions on separate
connections, at the same time, on a fresh database (PostgreSQL, and SQLite for the embedded
default)."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import database
from app.models import Assignment, AssignmentStatus, ExpertProfile, IntakeRequest
from app.routing import assignments
from tests.conftest import create_migrated_pg_database, create_migrated_sqlite, drop_pg_database
from tests.factories import create_expert, make_request

THREADS = 12
REQUESTS_PER_THREAD = 4
CAPACITY = 3
EXPERTS = 3


def _race(url: str) -> tuple[dict[str, int], dict[str, int], int, list[BaseException]]:
    engine = database.build_engine(url, for_tests=True)
    try:
        with Session(engine) as s:
            experts = [
                str(create_expert(s, countries=["KG"], max_open=CAPACITY).id)
                for _ in range(EXPERTS)
            ]
            request_ids = [
                [make_request(s).id for _ in range(REQUESTS_PER_THREAD)] for _ in range(THREADS)
            ]
            s.commit()
        barrier = threading.Barrier(THREADS)
        errors: list[BaseException] = []

        def worker(ids: list[object]) -> None:
            try:
                barrier.wait()
                for rid in ids:
                    with Session(engine) as s:
                        req = s.get(IntakeRequest, rid)
                        assert req is not None
                        assignments.route(s, req, trigger="submitted")
                        s.commit()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(ids,)) for ids in request_ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        with Session(engine) as s:
            live = dict(
                s.execute(
                    select(Assignment.expert_id, func.count())
                    .where(Assignment.status == AssignmentStatus.offered)
                    .group_by(Assignment.expert_id)
                ).all()
            )
            counters = {
                str(p.user_id): p.open_assignments for p in s.scalars(select(ExpertProfile)).all()
            }
            triaged = s.scalar(
                select(func.count())
                .select_from(IntakeRequest)
                .where(IntakeRequest.assigned_expert_id.is_(None))
            )
        assert set(experts) == set(counters)
        return {str(k): v for k, v in live.items()}, counters, int(triaged or 0), errors
    finally:
        engine.dispose()


def _check(
    live: dict[str, int], counters: dict[str, int], triaged: int, errors: list[BaseException]
) -> None:
    assert not errors, errors
    assert all(n <= CAPACITY for n in live.values()), live
    assert sum(live.values()) == EXPERTS * CAPACITY
    assert {k: counters[k] for k in live} == live and sum(counters.values()) == sum(live.values())
    assert triaged == THREADS * REQUESTS_PER_THREAD - EXPERTS * CAPACITY


def test_parallel_routings_on_postgresql_never_exceed_capacity(pg_engine: object) -> None:
    name = f"intake_route_{secrets.token_hex(3)}"
    url = create_migrated_pg_database(name)
    try:
        _check(*_race(url))
    finally:
        drop_pg_database(name)


def test_parallel_routings_on_sqlite_never_exceed_capacity(tmp_path: Path) -> None:
    url = create_migrated_sqlite(tmp_path / "route.sqlite3")
    _check(*_race(url))


def test_an_expert_filled_between_ranking_and_taking_is_skipped_for_the_next_tier(
    pg_engine: object,
) -> None:
    """Another transaction takes the country expert's last unit after this routing read the
    candidates: the conditional UPDATE refuses, and the region's expert gets the request."""
    from sqlalchemy import event, text

    from app.models import RoutingDecision

    name = f"intake_route_{secrets.token_hex(3)}"
    url = create_migrated_pg_database(name)
    engine = None
    try:
        engine = database.build_engine(url, for_tests=True)
        with Session(engine) as s:
            country = create_expert(s, countries=["KG"], max_open=1)
            region = create_expert(s, regions=["eastern_europe_post_soviet"])
            country_id, region_id = country.id, region.id
            rid = make_request(s).id
            s.commit()
        fired: list[bool] = []

        def competitor(conn: object, cursor: object, statement: str, *args: object) -> None:
            if "expert_countries" in statement and not fired:
                fired.append(True)
                with engine.connect() as other:  # type: ignore[union-attr]
                    other.execute(
                        text("UPDATE expert_profiles SET open_assignments = 1 WHERE user_id = :u"),
                        {"u": country_id},
                    )
                    other.commit()

        event.listen(engine, "after_cursor_execute", competitor)
        with Session(engine) as s:
            req = s.get(IntakeRequest, rid)
            assert req is not None
            a = assignments.route(s, req, trigger="submitted")
            s.commit()
            assert fired and a is not None and a.expert_id == region_id
            decision = s.scalar(select(RoutingDecision).where(RoutingDecision.request_id == rid))
            assert decision is not None and decision.rule.value == "region"
            reasons = {c["expert_id"]: (c["outcome"], c["reason"]) for c in decision.candidates}
            assert reasons[str(country_id)] == ("dropped", "at_capacity_on_commit")
            assert reasons[str(region_id)] == ("chosen", None)
            full = s.get(ExpertProfile, country_id, populate_existing=True)
            assert full is not None and full.open_assignments == 1
    finally:
        if engine is not None:
            engine.dispose()
        drop_pg_database(name)


def test_two_routings_racing_for_an_experts_last_unit_never_take_it_twice(
    pg_engine: object,
) -> None:
    """The second routing read the candidates before the first committed, so it still ranks
    the country expert first; its offer statement waits for the first one's row lock (seen in
    pg_locks) and, once that commits, must find the expert full: the region's expert gets it.
    An offer that does not re-check capacity under the lock takes the expert to 2 of 1."""
    from concurrent.futures import Future

    from tests.factories import backend_pid, wait_until_blocked

    name = f"intake_route_{secrets.token_hex(3)}"
    url = create_migrated_pg_database(name)
    engine = None
    try:
        engine = database.build_engine(url, for_tests=True)
        with Session(engine) as s:
            country_id = create_expert(s, countries=["KG"], max_open=1).id
            region_id = create_expert(s, regions=["eastern_europe_post_soviet"]).id
            first_id, second_id = make_request(s).id, make_request(s).id
            s.commit()
        pid: Future[int] = Future()
        done = threading.Event()
        outcome: list[object] = []

        def second() -> None:
            try:
                with Session(engine) as s2:
                    pid.set_result(backend_pid(s2))
                    req = s2.get(IntakeRequest, second_id)
                    assert req is not None
                    a = assignments.route(s2, req, trigger="submitted")
                    outcome.append(a.expert_id if a is not None else None)
                    s2.commit()
            except BaseException as exc:  # reported below
                outcome.append(exc)
                if not pid.done():
                    pid.set_exception(exc)
            finally:
                done.set()

        with Session(engine) as s1:
            holder = backend_pid(s1)
            req = s1.get(IntakeRequest, first_id)
            assert req is not None
            a = assignments.route(s1, req, trigger="submitted")
            assert a is not None and a.expert_id == country_id  # holds the unit, uncommitted
            racer = threading.Thread(target=second)
            racer.start()
            waited = wait_until_blocked(engine, pid.result(30), holder, finished=done.is_set)
            s1.commit()
        racer.join(60)
        assert not racer.is_alive()
        assert waited, "the second routing never waited for the first one's lock"
        assert outcome == [region_id]
        with Session(engine) as s:
            full = s.get(ExpertProfile, country_id)
            assert full is not None and full.open_assignments == 1
            offered = s.scalar(
                select(func.count()).where(
                    Assignment.expert_id == country_id,
                    Assignment.status == AssignmentStatus.offered,
                )
            )
            assert offered == 1
    finally:
        if engine is not None:
            engine.dispose()
        drop_pg_database(name)
