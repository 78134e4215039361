"""Two people never confirm the same time: real PostgreSQL sessions, each on its own connection
with committed transactions, reach the expert's lock together (the test holds that lock until
``pg_blocking_pids`` shows both waiting for it: a real signal, no sleep), then race.

- Two requesters hold the same time at once: one hold is written, the other is refused
  (``conflict``); only the holder can confirm.
- One requester confirms a held time while another books the same time directly: exactly one
  consultation, the holder's, whichever goes first.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from app.core import database
from app.models import Consultation, ConsultationStatus, IntakeRequest, SlotHold
from app.scheduling import service
from app.scheduling.errors import HoldNotFound, SlotTaken
from app.scheduling.service import holds
from tests.factories import (
    at,
    backend_pid,
    day_in,
    expert_with_hours,
    make_request,
)
from tests.scheduling.test_booking_concurrency import fresh_pg  # noqa: F401 - the fixture

ZONE = "Europe/London"
REQUESTER = service.Caller("requester")
Action = Callable[[Session, IntakeRequest], object]


@pytest.fixture
def engine(fresh_pg: str) -> Iterator[Engine]:  # noqa: F811 - the imported fixture
    built = database.build_engine(fresh_pg, for_tests=True)
    try:
        yield built
    finally:
        built.dispose()


def _setup(engine: Engine) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    with Session(engine) as s:
        expert = expert_with_hours(s, zone=ZONE, min_notice_minutes=0)
        ids = []
        for _ in range(2):
            req = make_request(s)
            req.assigned_expert_id = expert.id
            req.timezone = ZONE
            ids.append(req.id)
        s.commit()
        return expert.id, ids[0], ids[1]


def _race(
    engine: Engine, expert_id: uuid.UUID, actions: dict[uuid.UUID, Action]
) -> dict[uuid.UUID, str]:
    """Run each request's action in its own session while the test holds the expert's
    availability row, queued for it in the order given; let go once every session waits for
    it; return each outcome."""
    outcomes: dict[uuid.UUID, str] = {}
    pids: queue.Queue[int] = queue.Queue()

    def run(request_id: uuid.UUID, action: Action) -> None:
        with Session(engine) as s:
            pids.put(backend_pid(s))
            req = s.get(IntakeRequest, request_id)
            assert req is not None
            try:
                action(s, req)
                s.commit()
                outcome = "ok"
            except SlotTaken as exc:
                s.rollback()
                outcome = f"taken:{(exc.details or {}).get('reason')}"
            except Exception as exc:
                s.rollback()
                outcome = f"error:{type(exc).__name__}: {exc}"
            outcomes[request_id] = outcome

    with Session(engine) as lock_holder:
        lock_holder.execute(
            text("SELECT 1 FROM expert_availability WHERE expert_id = :e FOR UPDATE"),
            {"e": expert_id},
        )
        holder = backend_pid(lock_holder)
        threads = [threading.Thread(target=run, args=item) for item in actions.items()]
        waiters: list[int] = []
        for t in threads:  # in order: the first queues for the lock first, and gets it first
            t.start()
            waiters.append(pids.get(timeout=30))
            _wait_all_blocked(engine, waiters, holder)
        lock_holder.rollback()  # all wait on the lock: let them go
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def _wait_all_blocked(engine: Engine, pids: list[int], holder: int, timeout: float = 30.0) -> None:
    """Poll ``pg_blocking_pids`` until every backend in ``pids`` waits for a lock, at least one
    of them for ``holder``'s (a real signal, bounded; the short pause is the polling interval,
    not a synchronisation)."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            blockers = [
                list(conn.execute(text("SELECT pg_blocking_pids(:pid)"), {"pid": pid}).scalar_one())
                for pid in pids
            ]
            conn.rollback()
            if all(blockers) and any(holder in b for b in blockers):
                return
            time.sleep(0.005)
    raise AssertionError(f"backends {pids} did not all wait for a lock")


def _booked(engine: Engine) -> list[uuid.UUID]:
    with Session(engine) as s:
        return list(
            s.scalars(
                select(Consultation.request_id).where(
                    Consultation.status == ConsultationStatus.booked
                )
            )
        )


def test_two_requesters_holding_the_same_time_at_once_get_one_hold(engine: Engine) -> None:
    expert_id, a, b = _setup(engine)
    start = at(day_in(ZONE, 2), "10:00", ZONE)

    def hold(s: Session, req: IntakeRequest) -> object:
        return holds.hold(s, req, start=start, zone=ZONE, caller=REQUESTER)

    outcomes = _race(engine, expert_id, {a: hold, b: hold})
    assert outcomes == {a: "ok", b: "taken:conflict"}, outcomes
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(SlotHold)) == 1
    winner, loser = a, b
    with Session(engine) as s:
        req = s.get(IntakeRequest, loser)
        assert req is not None
        with pytest.raises(HoldNotFound):
            holds.confirm(s, req, hold_id=None, caller=REQUESTER)
        s.rollback()
        req = s.get(IntakeRequest, winner)
        assert req is not None
        holds.confirm(s, req, hold_id=None, caller=REQUESTER)
        s.commit()
    assert _booked(engine) == [winner]


def test_a_confirm_and_a_direct_booking_of_the_same_time_book_it_once_for_the_holder(
    engine: Engine,
) -> None:
    expert_id, a, b = _setup(engine)
    start = at(day_in(ZONE, 2), "10:00", ZONE)
    with Session(engine) as s:
        req = s.get(IntakeRequest, a)
        assert req is not None
        hold_id = holds.hold(s, req, start=start, zone=ZONE, caller=REQUESTER).id
        s.commit()

    def confirm(s: Session, req: IntakeRequest) -> object:
        return holds.confirm(s, req, hold_id=hold_id, caller=REQUESTER)

    def book(s: Session, req: IntakeRequest) -> object:
        return service.book(s, req, start=start, zone=ZONE, caller=REQUESTER)

    # The direct booking reaches the lock first: the live hold still refuses it.
    outcomes = _race(engine, expert_id, {b: book, a: confirm})
    assert outcomes == {a: "ok", b: "taken:conflict"}, outcomes
    assert _booked(engine) == [a]
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(SlotHold)) == 0
