"""A request that ends (withdrawn, spam, declined, closed, merged into another) before its
first-response deadline without a response has no SLA outcome: ``ended``, everywhere it is
judged (the requester's view, the case API and page, the queue, reports, ``/metrics``). One
that ends at or after the deadline stays ``breached``. ``ended_at`` records when it ended;
undoing a merge reopens it; the migration fills ``ended_at`` in from the history."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases import merging
from app.core import migrate
from app.core.database import build_engine
from app.flows import request as flows
from app.intake import records as intake_records
from app.intake.status import FINAL
from app.models import IntakeRequest, RequestHistory, RequestStatus, Role
from app.queue.repository import open_clause
from tests.conftest import Clock, create_pg_database, drop_pg_database
from tests.factories import bearer, create_user, login, set_time, submit

T0 = dt.datetime(2026, 11, 10, 10, 0, tzinfo=dt.UTC)  # a Tuesday
MIGRATION = "0a3b4850257e"


def _at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _close(a: dt.datetime | str | None, b: dt.datetime) -> bool:
    """Equal within the few real seconds a test takes (the pinned clock keeps running)."""
    if a is None:
        return False
    value = dt.datetime.fromisoformat(a) if isinstance(a, str) else a
    return abs((value - b).total_seconds()) < 30


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found, f"{name} not in:\n{text}"
    return float(found.group(1))


# Every place that judges it ------------------------------------------------------------------


def test_a_request_withdrawn_or_marked_spam_minutes_after_arrival_is_ended_everywhere(
    db: Session, client: Any, clock: Clock
) -> None:
    c = client
    set_time(clock, T0)  # before signing in: a session from another day may have expired at T0
    staff = create_user(db, role=Role.staff)
    h = login(c, staff)
    before = c.get("/metrics").text
    withdrawn = submit(c)
    spam = submit(c)
    still_open = submit(c)
    late_spam = submit(c)

    set_time(clock, _at(5))
    resp = c.post(
        f"/api/v1/requests/{withdrawn['reference']}/withdraw",
        headers=bearer(withdrawn["access_token"]),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["sla"]["state"] == "ended"
    resp = c.post(f"/api/v1/cases/{spam['reference']}/status", json={"status": "spam"}, headers=h)
    assert resp.status_code == 200, resp.text

    set_time(clock, _at(70))  # ten minutes past the deadline
    resp = c.post(
        f"/api/v1/cases/{late_spam['reference']}/status", json={"status": "spam"}, headers=h
    )
    assert resp.status_code == 200, resp.text
    set_time(clock, _at(75))

    # The requester's own view.
    mine = c.get(
        f"/api/v1/requests/{withdrawn['reference']}", headers=bearer(withdrawn["access_token"])
    ).json()
    assert mine["sla"]["state"] == "ended" and _close(mine["sla"]["ended_at"], _at(5))
    late_mine = c.get(
        f"/api/v1/requests/{late_spam['reference']}", headers=bearer(late_spam["access_token"])
    ).json()
    assert late_mine["sla"]["state"] == "breached"

    # The case, through the API and the contacts list.
    states = {}
    for data in (withdrawn, spam, still_open, late_spam):
        case = c.get(f"/api/v1/cases/{data['reference']}", headers=h)
        assert case.status_code == 200, case.text
        contacts = c.get(f"/api/v1/cases/{data['reference']}/contacts", headers=h).json()
        assert contacts["sla"]["state"] == case.json()["sla"]["state"]
        states[data["reference"]] = case.json()["sla"]["state"]
    assert states == {
        withdrawn["reference"]: "ended",
        spam["reference"]: "ended",
        still_open["reference"]: "breached",
        late_spam["reference"]: "breached",
    }

    # The staff case page: the label, and no countdown.
    c.cookies.set("intake_session", h["Authorization"].split()[1])
    page = c.get(f"/staff/cases/{spam['reference']}")
    assert page.status_code == 200, page.text
    head = page.text.split('id="case-sla"', 1)[1].split("</p>", 1)[0]
    assert "Ended before the deadline" in head and "data-due" not in head
    late_page = c.get(f"/staff/cases/{late_spam['reference']}")
    assert "Breached" in late_page.text.split('id="case-sla"', 1)[1].split("</p>", 1)[0]

    # The queue: ``ended`` with view=all, never among the breached; no minutes left.
    ours = {d["reference"] for d in (withdrawn, spam, still_open, late_spam)}

    def listed(**params: Any) -> dict[str, Any]:
        resp = c.get("/api/v1/queue", params={"limit": 100, **params}, headers=h)
        assert resp.status_code == 200, resp.text
        return {i["reference"]: i for i in resp.json()["items"] if i["reference"] in ours}

    assert set(listed(view="all", sla_state="ended")) == {withdrawn["reference"], spam["reference"]}
    assert set(listed(view="all", sla_state="breached")) == {
        still_open["reference"],
        late_spam["reference"],
    }
    everything = listed(view="all")
    assert everything[spam["reference"]]["minutes_left"] is None
    assert _close(everything[spam["reference"]]["ended_at"], _at(5))
    assert set(listed(view="all", due_within_minutes=0)) == {still_open["reference"]}
    assert set(listed(view="breached")) == {still_open["reference"]}

    # The report: two ended apart, two breached (one still open), nothing met.
    report = c.get("/api/v1/reports/sla?from=2026-11-10&to=2026-11-10", headers=h).json()
    total = report["total"]
    assert (total["count"], total["met"], total["breached"], total["ended"]) == (4, 0, 2, 2)
    assert total["open_breached"] == 1 and total["open"] == 0

    # /metrics: the breach gauge counts the two breached, the ended ones apart.
    after = c.get("/metrics").text
    assert _metric(after, "intake_sla_breaches") - _metric(before, "intake_sla_breaches") == 2
    assert _metric(after, "intake_sla_ended") - _metric(before, "intake_sla_ended") == 2


# When a request ended ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [[RequestStatus.withdrawn], [RequestStatus.spam], [RequestStatus.declined],
             [RequestStatus.in_progress, RequestStatus.closed]],
    ids=["withdrawn", "spam", "declined", "closed"],
)  # fmt: skip
def test_reaching_a_final_status_ends_the_request_then(
    db: Session, clock: Clock, path: list[RequestStatus]
) -> None:
    set_time(clock, T0)
    req = submit(db)
    for step in path[:-1]:
        flows.change_status(db, req, step, actor="system")
        assert req.ended_at is None
    set_time(clock, _at(12))
    flows.change_status(db, req, path[-1], actor="system")
    assert _close(req.ended_at, _at(12))
    assert intake_records.current_sla(req).value == "ended"
    set_time(clock, _at(600))
    assert intake_records.current_sla(req).value == "ended"  # no outcome, however long after


def test_merging_ends_a_request_and_undoing_it_reopens_it(db: Session, clock: Clock) -> None:
    staff = create_user(db, role=Role.staff)
    set_time(clock, T0)
    target = submit(db)
    dup = submit(db)
    set_time(clock, _at(5))
    merging.merge(db, dup, staff, target.reference)
    assert _close(dup.ended_at, _at(5)) and intake_records.current_sla(dup).value == "ended"
    assert target.ended_at is None

    # Undone before the deadline: open again, on its own clock.
    set_time(clock, _at(20))
    merging.unlink(db, dup, staff)
    assert dup.ended_at is None and intake_records.current_sla(dup).value == "awaiting"
    set_time(clock, _at(61))
    assert intake_records.current_sla(dup).value == "breached"

    # Merged again, and undone after the deadline: it never had a response, so breached.
    merging.merge(db, dup, staff, target.reference)
    assert intake_records.current_sla(dup).value == "breached"  # ended after the deadline
    set_time(clock, _at(80))
    merging.unlink(db, dup, staff)
    assert dup.ended_at is None and intake_records.current_sla(dup).value == "breached"


def test_a_merged_request_withdrawn_then_unlinked_ended_when_it_was_withdrawn(
    db: Session, clock: Clock
) -> None:
    staff = create_user(db, role=Role.staff)
    set_time(clock, T0)
    target = submit(db)
    dup = submit(db)
    set_time(clock, _at(5))
    merging.merge(db, dup, staff, target.reference)
    set_time(clock, _at(70))
    flows.withdraw(db, dup)
    assert _close(dup.ended_at, _at(5))  # the earlier end stands
    assert intake_records.current_sla(dup).value == "ended"
    set_time(clock, _at(90))
    merging.unlink(db, dup, staff)
    # On its own it was open until it was withdrawn, after its deadline: breached.
    assert _close(dup.ended_at, _at(70))
    assert intake_records.current_sla(dup).value == "breached"


@pytest.mark.parametrize(
    "database", ["postgresql", pytest.param("sqlite", marks=pytest.mark.sqlite)]
)
def test_ended_at_is_set_exactly_when_the_queue_counts_a_request_as_not_open(
    db: Session, clock: Clock, database: str
) -> None:
    """The queue's open clause (on the indexed status columns) and ``ended_at`` name the same
    requests, whatever moves they went through."""
    assert db.get_bind().dialect.name == database
    staff = create_user(db, role=Role.staff)
    set_time(clock, T0)
    target = submit(db)
    made = [target]
    for final in FINAL:
        req = submit(db)
        if final == RequestStatus.closed:
            flows.change_status(db, req, RequestStatus.in_progress, actor="system")
        flows.change_status(db, req, final, actor="system")
        made.append(req)
    merged = submit(db)
    merging.merge(db, merged, staff, target.reference)
    unlinked = submit(db)
    merging.merge(db, unlinked, staff, target.reference)
    merging.unlink(db, unlinked, staff)
    merged_then_spam = submit(db)
    merging.merge(db, merged_then_spam, staff, target.reference)
    flows.change_status(db, merged_then_spam, RequestStatus.spam, actor="system")
    moving = submit(db)
    flows.change_status(db, moving, RequestStatus.in_progress, actor="system")
    made += [merged, unlinked, merged_then_spam, moving]
    db.flush()
    ids = [r.id for r in made]
    open_ids = set(
        db.scalars(select(IntakeRequest.id).where(IntakeRequest.id.in_(ids), open_clause()))
    )
    assert open_ids == {r.id for r in made if r.ended_at is None}
    assert open_ids == {target.id, unlinked.id, moving.id}


# The migration's backfill --------------------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"intake_ended_{secrets.token_hex(4)}"
    url = create_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


REQUEST_COLUMNS = [
    "id", "reference", "status", "source", "requester_type", "preferred_channel", "case_stage",
    "topics", "wants", "consent_updates", "language", "timezone", "discreet",
    "privacy_notice_version", "consent_given_at", "received_at", "sla_minutes",
    "first_response_due_at", "withdrawn_at", "merged_into_id", "created_at", "updated_at",
]  # fmt: skip
HISTORY_COLUMNS = ["request_id", "at", "actor", "action", "from_status", "to_status", "details"]


def _table(name: str, model_table: sa.Table, columns: list[str]) -> sa.Table:
    """Only the columns that exist before the migration, with the service's own types."""
    return sa.Table(name, sa.MetaData(), *[sa.Column(c, model_table.c[c].type) for c in columns])


def _backfill_check(url: str) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    before = script.get_revision(MIGRATION).down_revision
    assert isinstance(before, str)
    migrate.upgrade(url, before)
    requests = _table("requests", IntakeRequest.__table__, REQUEST_COLUMNS)  # type: ignore[arg-type]
    history = _table("request_history", RequestHistory.__table__, HISTORY_COLUMNS)  # type: ignore[arg-type]
    target = uuid.uuid4()
    rows: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []

    def req(name: str, status: str, *, merged: bool = False, **extra: Any) -> uuid.UUID:
        rid = uuid.uuid4()
        rows[name] = {
            "id": rid, "reference": secrets.token_hex(4).upper(), "status": status,
            "source": "form", "requester_type": "applicant", "preferred_channel": "email",
            "case_stage": "other", "topics": [], "wants": ["consultation"],
            "consent_updates": [], "language": "en", "timezone": "UTC", "discreet": False,
            "privacy_notice_version": "1", "consent_given_at": T0, "received_at": T0,
            "sla_minutes": 60, "first_response_due_at": _at(60), "withdrawn_at": None,
            "merged_into_id": target if merged else None, "created_at": T0,
            "updated_at": _at(200),
        } | extra  # fmt: skip
        return rid

    def event(rid: uuid.UUID, minutes: float, action: str, to: str | None = None) -> None:
        events.append(
            {"request_id": rid, "at": _at(minutes), "actor": "system", "action": action,
             "from_status": "new" if to else None, "to_status": to, "details": {}}
        )  # fmt: skip

    req("target", "new", id=target)
    event(req("withdrawn", "withdrawn", withdrawn_at=_at(5)), 5, "status_changed", "withdrawn")
    event(req("spam_late", "spam"), 70, "status_changed", "spam")
    req("declined_no_history", "declined")
    event(req("merged", "new", merged=True), 10, "merged_into")
    m = req("merged_then_withdrawn", "withdrawn", merged=True, withdrawn_at=_at(20))
    event(m, 10, "merged_into")
    event(m, 20, "status_changed", "withdrawn")
    w = req("withdrawn_then_merged", "withdrawn", merged=True, withdrawn_at=_at(5))
    event(w, 5, "status_changed", "withdrawn")
    event(w, 30, "merged_into")
    again = req("merged_twice", "new", merged=True)
    event(again, 3, "merged_into")
    event(again, 40, "merged_into")
    req("merged_no_history", "new", merged=True)
    event(req("open", "in_progress"), 2, "status_changed", "in_progress")

    engine = build_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(requests.insert(), [rows["target"]])
            conn.execute(requests.insert(), [r for k, r in rows.items() if k != "target"])
            conn.execute(history.insert(), events)
        migrate.upgrade(url, MIGRATION)
        with Session(engine) as session:
            got = {
                name: session.get(IntakeRequest, row["id"]).ended_at  # type: ignore[union-attr]
                for name, row in rows.items()
            }
    finally:
        engine.dispose()
    assert got == {
        "target": None,
        "withdrawn": _at(5),
        "spam_late": _at(70),
        "declined_no_history": _at(200),  # updated_at: never earlier than the real end
        "merged": _at(10),
        "merged_then_withdrawn": _at(10),
        "withdrawn_then_merged": _at(5),
        "merged_twice": _at(40),
        "merged_no_history": _at(200),
        "open": None,
    }


def test_the_migration_fills_ended_at_from_the_history_on_postgresql(pg_url: str) -> None:
    _backfill_check(pg_url)


@pytest.mark.sqlite
def test_the_migration_fills_ended_at_from_the_history_on_sqlite(tmp_path: Path) -> None:
    _backfill_check(f"sqlite:///{tmp_path / 'ended.sqlite3'}")
