"""The first-response rule is written twice: ``sla_state`` in Python (views, reminders, reports)
and ``sla_state_sql`` as a SQL ``CASE`` (the queue's filters and counts, ``/metrics``). These
tests prove the two agree, on PostgreSQL and on SQLite, over generated (received, due,
responded, ended, now) cases with the boundaries drawn often; a table of boundary cases pins
the rule itself (agreement alone would pass if both were wrong in the same way).

The SQL side runs on a real ``requests`` row through the queue's own column
(``app.queue.repository.sla_column``), so the stored types (PostgreSQL ``timestamptz``, SQLite
text) are the ones the service compares."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.intake.sla import SlaState, sla_state
from app.models import IntakeRequest
from app.queue.repository import sla_column
from app.reports import service as reports
from tests.factories import make_request

BOTH_DATABASES = pytest.mark.parametrize(
    "database", ["postgresql", pytest.param("sqlite", marks=pytest.mark.sqlite)]
)
US = dt.timedelta(microseconds=1)
MARGIN = dt.timedelta(minutes=15)  # the default due-soon margin
DUE = dt.datetime(2026, 11, 10, 11, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Case:
    received: dt.datetime
    due: dt.datetime
    responded: dt.datetime | None
    ended: dt.datetime | None
    current: dt.datetime
    due_soon: dt.timedelta


def _python(c: Case) -> SlaState:
    return sla_state(
        due_at=c.due,
        responded_at=c.responded,
        ended_at=c.ended,
        current=c.current,
        due_soon=c.due_soon,
    )


def _sql(db: Session, req: IntakeRequest, c: Case) -> SlaState:
    db.execute(
        update(IntakeRequest)
        .where(IntakeRequest.id == req.id)
        .values(
            received_at=c.received,
            first_response_due_at=c.due,
            first_responded_at=c.responded,
            ended_at=c.ended,
        )
        .execution_options(synchronize_session=False)
    )
    value = db.scalar(select(sla_column(c.current, c.due_soon)).where(IntakeRequest.id == req.id))
    return SlaState(value)


REPORT_STATE = {
    SlaState.met: "met",
    SlaState.breached: "breached",
    SlaState.ended: "ended",
    SlaState.awaiting: "open",
    SlaState.due_soon: "open",
}


def _check(db: Session, req: IntakeRequest, c: Case) -> SlaState:
    python = _python(c)
    assert _sql(db, req, c) == python, c
    o = reports.outcome(c.received, c.due, c.responded, c.ended, c.current)
    assert o.state == REPORT_STATE[python], c
    return python


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Instants near the deadline, the boundaries (equal, one microsecond either side, the
    due-soon margin) drawn as often as the rest."""
    due = DUE + dt.timedelta(
        days=draw(st.integers(-400, 400)), microseconds=draw(st.integers(0, 999_999))
    )
    margin = draw(st.sampled_from([MARGIN, dt.timedelta(minutes=1), dt.timedelta(0)]))
    special = [
        dt.timedelta(0),
        US,
        -US,
        dt.timedelta(seconds=1),
        -dt.timedelta(seconds=1),
        -margin,
        -margin + US,
        -margin - US,
        dt.timedelta(hours=1),
        -dt.timedelta(hours=1),
    ]
    spread = st.integers(-3 * 3600 * 10**6, 3 * 3600 * 10**6).map(
        lambda us: dt.timedelta(microseconds=us)
    )
    near = st.one_of(st.sampled_from(special), spread).map(lambda d: due + d)
    return Case(
        received=due - dt.timedelta(minutes=draw(st.sampled_from([60, 30, 120]))),
        due=due,
        responded=draw(st.none() | near),
        ended=draw(st.none() | near),
        current=draw(near),
        due_soon=margin,
    )


@BOTH_DATABASES
@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure is reproducible from CI
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(c=cases())
# A response exactly at the deadline is met, even on a request that ended before it.
@example(c=Case(DUE - dt.timedelta(hours=1), DUE, DUE, DUE - dt.timedelta(minutes=5), DUE, MARGIN))
# Ended exactly at the deadline without a response: breached.
@example(c=Case(DUE - dt.timedelta(hours=1), DUE, None, DUE, DUE + US, MARGIN))
def test_python_and_sql_agree_on_every_case(db: Session, database: str, c: Case) -> None:
    assert db.get_bind().dialect.name == database
    _check(db, make_request(db), c)


R = DUE - dt.timedelta(hours=1)


def _min(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def _c(responded: dt.datetime | None, ended: dt.datetime | None, current: dt.datetime) -> Case:
    return Case(R, DUE, responded, ended, current, MARGIN)


LATER = DUE + _min(120)
BOUNDARIES: list[tuple[str, Case, SlaState]] = [
    ("response exactly at the deadline", _c(DUE, None, LATER), SlaState.met),
    ("response a microsecond late", _c(DUE + US, None, LATER), SlaState.breached),
    ("response at the deadline, ended before", _c(DUE, DUE - _min(55), DUE), SlaState.met),
    ("ended a microsecond before the deadline", _c(None, DUE - US, LATER), SlaState.ended),
    ("ended five minutes after arrival", _c(None, R + _min(5), DUE + _min(4000)), SlaState.ended),
    ("ended exactly at the deadline", _c(None, DUE, LATER), SlaState.breached),
    ("ended after the deadline", _c(None, DUE + _min(10), LATER), SlaState.breached),
    ("ended early, answered late", _c(DUE + _min(30), DUE - _min(50), LATER), SlaState.ended),
    ("ended early, looked at before it", _c(None, DUE - _min(50), R + _min(5)), SlaState.ended),
    ("open, clock exactly at the deadline", _c(None, None, DUE), SlaState.breached),
    ("open, a microsecond before the deadline", _c(None, None, DUE - US), SlaState.due_soon),
    ("open, exactly the margin left", _c(None, None, DUE - MARGIN), SlaState.awaiting),
    ("open, a microsecond under the margin", _c(None, None, DUE - MARGIN + US), SlaState.due_soon),
    ("open, far from it", _c(None, None, R), SlaState.awaiting),
]


@BOTH_DATABASES
def test_the_boundaries_of_the_rule(db: Session, database: str) -> None:
    assert db.get_bind().dialect.name == database
    req = make_request(db)
    got = {name: _check(db, req, c) for name, c, _ in BOUNDARIES}
    assert got == {name: want for name, _, want in BOUNDARIES}
