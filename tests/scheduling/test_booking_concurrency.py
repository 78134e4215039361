"""Never double-booked: 50 requesters book the same slot (or overlapping slots) of one expert
at the same moment, each in its own committed transaction on its own connection, on a fresh
PostgreSQL database and on a SQLite file. Exactly one booking succeeds; the others get the
409 error (``SlotTaken``) with fresh alternatives."""

from __future__ import annotations

import datetime as dt
import secrets
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.core import database
from app.models import Consultation, ConsultationStatus, IntakeRequest, RequestStatus
from app.scheduling import service
from app.scheduling.errors import SlotTaken
from tests.conftest import create_migrated_pg_database, create_migrated_sqlite, drop_pg_database
from tests.factories import at, day_in, expert_with_hours, make_request

THREADS = 50
ZONE = "Europe/London"


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    name = f"intake_book_{secrets.token_hex(3)}"
    url = create_migrated_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def fresh_sqlite() -> Iterator[str]:
    # Not under pytest's tmp_path: a parallel pytest run may rotate those folders away.
    with tempfile.TemporaryDirectory(prefix="intake-booking-") as folder:
        url = create_migrated_sqlite(Path(folder) / "booking.sqlite3")
        yield url


def _setup(engine: Engine) -> tuple[uuid.UUID, list[uuid.UUID]]:
    with Session(engine) as s:
        expert = expert_with_hours(
            s,
            slot_minutes=45,
            interval_minutes=15,
            weekly=[{"weekday": d, "start": "09:00", "end": "12:00"} for d in range(7)],
        )
        ids = []
        for _ in range(THREADS):
            req = make_request(s)
            req.assigned_expert_id = expert.id
            ids.append(req.id)
        s.commit()
        return expert.id, ids


def _race(engine: Engine, ids: list[uuid.UUID], starts: list[dt.datetime]) -> dict[str, list[str]]:
    """Every request books at once (request i asks for ``starts[i % len(starts)]``)."""
    barrier = threading.Barrier(len(ids))
    results: dict[str, list[str]] = {"ok": [], "taken": [], "error": []}
    lock = threading.Lock()

    def book(i: int, request_id: uuid.UUID) -> None:
        with Session(engine) as s:
            # Nothing read before the barrier: on SQLite the first statement takes the write
            # lock (BEGIN IMMEDIATE), and a thread holding it at the barrier would stall all.
            barrier.wait(timeout=60)
            try:
                req = s.get(IntakeRequest, request_id)
                assert req is not None
                c = service.book(
                    s,
                    req,
                    start=starts[i % len(starts)],
                    zone=None,
                    caller=service.Caller("requester"),
                )
                s.commit()
                outcome, detail = "ok", c.start_at.isoformat()
            except SlotTaken as exc:
                s.rollback()
                assert exc.details is not None
                assert exc.details["alternatives"], "a conflict must offer alternatives"
                outcome, detail = "taken", str(exc.details["reason"])
            except Exception as exc:
                s.rollback()
                outcome, detail = "error", f"{type(exc).__name__}: {exc}"
        with lock:
            results[outcome].append(detail)

    threads = [threading.Thread(target=book, args=(i, r)) for i, r in enumerate(ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    return results


def _check(engine: Engine, expert_id: uuid.UUID, results: dict[str, list[str]]) -> None:
    assert results["error"] == []
    assert len(results["ok"]) == 1, results["ok"]
    assert len(results["taken"]) == THREADS - 1
    assert set(results["taken"]) == {"conflict"}
    with Session(engine) as s:
        booked = s.scalar(
            select(func.count())
            .select_from(Consultation)
            .where(
                Consultation.expert_id == expert_id,
                Consultation.status == ConsultationStatus.booked,
            )
        )
        scheduled = s.scalar(
            select(func.count())
            .select_from(IntakeRequest)
            .where(IntakeRequest.status == RequestStatus.consultation_scheduled)
        )
    assert booked == 1 and scheduled == 1


def _scenario(url: str, overlapping: bool) -> None:
    engine = database.build_engine(url, for_tests=True)
    try:
        expert_id, ids = _setup(engine)
        day = day_in(ZONE, 2)
        if overlapping:
            # 45-minute slots on a 15-minute grid: each overlaps the others.
            starts = [at(day, t, ZONE) for t in ("09:00", "09:15", "09:30")]
        else:
            starts = [at(day, "10:00", ZONE)]
        _check(engine, expert_id, _race(engine, ids, starts))
    finally:
        engine.dispose()


def test_fifty_bookings_of_one_slot_on_postgresql_one_wins(fresh_pg: str) -> None:
    _scenario(fresh_pg, overlapping=False)


def test_fifty_bookings_of_overlapping_slots_on_postgresql_one_wins(fresh_pg: str) -> None:
    _scenario(fresh_pg, overlapping=True)


def test_fifty_bookings_of_one_slot_on_sqlite_one_wins(fresh_sqlite: str) -> None:
    _scenario(fresh_sqlite, overlapping=False)


def test_fifty_bookings_of_overlapping_slots_on_sqlite_one_wins(fresh_sqlite: str) -> None:
    _scenario(fresh_sqlite, overlapping=True)


def test_two_pool_bookings_racing_for_an_experts_last_unit_book_once(fresh_pg: str) -> None:
    """Two requesters of the region pool book two different free slots of the one expert who
    has a single unit of capacity left. The second booking read the pool before the first
    committed; it waits for the first one's locks (seen in pg_locks), and once that commits
    the capacity it asks for is gone: 409 "no_expert", and the expert stays at 1 of 1. A
    capacity check that does not re-check under the lock books both (2 of 1)."""
    from concurrent.futures import Future

    from app.models import Assignment, AssignmentStatus, ExpertProfile
    from tests.factories import backend_pid, wait_until_blocked

    engine = database.build_engine(fresh_pg, for_tests=True)
    try:
        with Session(engine) as s:
            expert_id = expert_with_hours(s, max_open=1).id
            first_id, second_id = make_request(s).id, make_request(s).id  # no expert yet
            s.commit()
        day = day_in(ZONE, 2)
        pid: Future[int] = Future()
        done = threading.Event()
        outcome: list[str] = []

        def second() -> None:
            try:
                with Session(engine) as s2:
                    pid.set_result(backend_pid(s2))
                    req = s2.get(IntakeRequest, second_id)
                    assert req is not None
                    try:
                        service.book(
                            s2,
                            req,
                            start=at(day, "10:00", ZONE),
                            zone=ZONE,
                            caller=service.Caller("requester"),
                        )
                        s2.commit()
                        outcome.append("booked")
                    except SlotTaken as exc:
                        assert exc.details is not None
                        outcome.append(f"taken:{exc.details['reason']}")
            except BaseException as exc:  # reported below
                outcome.append(f"error:{type(exc).__name__}: {exc}")
                if not pid.done():
                    pid.set_exception(exc)
            finally:
                done.set()

        with Session(engine) as s1:
            holder = backend_pid(s1)
            req = s1.get(IntakeRequest, first_id)
            assert req is not None
            c = service.book(
                s1, req, start=at(day, "09:00", ZONE), zone=ZONE, caller=service.Caller("requester")
            )
            assert c.expert_id == expert_id  # holds the unit, uncommitted
            racer = threading.Thread(target=second)
            racer.start()
            waited = wait_until_blocked(engine, pid.result(30), holder, finished=done.is_set)
            s1.commit()
        racer.join(60)
        assert not racer.is_alive()
        assert waited, "the second booking never waited for the first one's locks"
        assert outcome == ["taken:no_expert"]
        with Session(engine) as s:
            profile = s.get(ExpertProfile, expert_id)
            assert profile is not None and profile.open_assignments == 1
            accepted = s.scalar(
                select(func.count()).where(
                    Assignment.expert_id == expert_id,
                    Assignment.status == AssignmentStatus.accepted,
                )
            )
            booked = s.scalar(
                select(func.count()).where(
                    Consultation.expert_id == expert_id,
                    Consultation.status == ConsultationStatus.booked,
                )
            )
            assert (accepted, booked) == (1, 1)
    finally:
        engine.dispose()
