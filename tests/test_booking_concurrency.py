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

from app.core import database, migrate
from app.models import Consultation, ConsultationStatus, IntakeRequest, RequestStatus
from app.scheduling import service
from app.scheduling.errors import SlotTaken
from tests.conftest import create_pg_database, drop_pg_database
from tests.experts_support import make_request
from tests.scheduling_support import at, day_in, expert_with_hours

THREADS = 50
ZONE = "Europe/London"


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    name = f"intake_book_{secrets.token_hex(3)}"
    url = create_pg_database(name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def fresh_sqlite() -> Iterator[str]:
    # Not under pytest's tmp_path: a parallel pytest run may rotate those folders away.
    with tempfile.TemporaryDirectory(prefix="intake-booking-") as folder:
        url = f"sqlite:///{Path(folder) / 'booking.sqlite3'}"
        migrate.upgrade(url)
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
