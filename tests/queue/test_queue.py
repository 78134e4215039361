"""The staff queue: filters, views, search, keyset pages, counts, roles,
and that the list carries no personal data."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.time import now
from app.flows import request as flows
from app.intake import records
from app.models import (
    ContactChannel,
    IntakeRequest,
    RequestSource,
    RequestStatus,
    Role,
    User,
)
from app.sla import service as sla
from tests.conftest import Clock
from tests.factories import (
    MARKER,
    create_expert,
    create_user,
    field_problems,
    login,
    make_request,
    submit,
)

URL = "/api/v1/queue"
BOTH_DATABASES = pytest.mark.parametrize(
    "database", ["postgresql", pytest.param("sqlite", marks=pytest.mark.sqlite)]
)


def _get(c: Any, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    resp = c.get(URL, params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _refs(c: Any, headers: dict[str, str], **params: Any) -> list[str]:
    params.setdefault("limit", 100)
    return [i["reference"] for i in _get(c, headers, **params)["items"]]


class World:
    """Requests in every SLA state, built through the intake service with the clock.

    t=0     breached (never answered), met (contact at t=10, in progress), spam (ended),
            assigned (offered to the KG expert)
    t=100   due_soon (at t=150 it has 10 minutes left)
    t=150   awaiting (submitted now), law firm by e-mail, from another country
    """

    def __init__(self, db: Session, clock: Clock) -> None:
        self.staff = create_user(db, role=Role.staff)
        self.expert = create_expert(db, countries=["KG"], languages=["ru"])
        self.breached = submit(db, country_of_origin="AM", language="ru")
        self.met = submit(db, country_of_origin="AM", wants=["sample_report"], language="es")
        self.spam = submit(db, country_of_origin="AM")
        self.assigned = submit(db, country_of_origin="KG", language="ru")
        assert self.assigned.assigned_expert_id == self.expert.id
        clock.advance(minutes=10)
        sla.record_contact(
            db,
            self.met,
            channel=ContactChannel.phone,
            contacted_at=now(),
            note=None,
            by_user=self.staff,
        )
        flows.change_status(db, self.spam, RequestStatus.spam, actor="system")
        flows.change_status(db, self.met, RequestStatus.in_progress, actor="system")
        clock.advance(minutes=90)
        self.due_soon = submit(db, country_of_origin="AM", language="en")
        clock.advance(minutes=50)
        self.awaiting = submit(
            db,
            country_of_origin="IR",
            requester_type="law_firm",
            law_firm_name="Firm LLP",
            language="fa",
            email=f"Mixed.Case.{secrets.token_hex(3)}@Example.ORG",
        )
        db.execute(
            update(IntakeRequest)
            .where(IntakeRequest.id == self.awaiting.id)
            .values(source=RequestSource.email)
        )
        db.flush()
        self.all = [
            self.breached,
            self.met,
            self.spam,
            self.assigned,
            self.due_soon,
            self.awaiting,
        ]

    def mine(self, refs: list[str]) -> set[str]:
        ours = {r.reference for r in self.all}
        return {r for r in refs if r in ours}

    def refs(self, *reqs: IntakeRequest) -> set[str]:
        return {r.reference for r in reqs}


@BOTH_DATABASES
def test_each_filter_narrows(db: Session, client: object, clock: Clock, database: str) -> None:
    c: Any = client
    assert db.get_bind().dialect.name == database
    w = World(db, clock)
    h = login(c, w.staff)
    open_ = w.refs(w.breached, w.met, w.assigned, w.due_soon, w.awaiting)

    def check(expected: set[str], **params: Any) -> None:
        assert w.mine(_refs(c, h, **params)) == expected, params

    check(open_)  # default view: all open, the spam one is not there
    check(open_ | w.refs(w.spam), view="all")
    check(w.refs(w.spam), view="all", status="spam")
    check(open_ - w.refs(w.met), status="new")
    check(w.refs(w.met), status="in_progress")
    check(open_, status=["new", "in_progress"])
    check(w.refs(w.due_soon), sla_state="due_soon")
    check(w.refs(w.met), sla_state="met")
    check(w.refs(w.awaiting), sla_state="awaiting")
    check(w.refs(w.breached, w.assigned), sla_state="breached")
    check(w.refs(w.breached, w.assigned, w.met), sla_state=["breached", "met"])
    # Marked spam ten minutes after arrival, never answered: ended, not breached.
    check(w.refs(w.spam), view="all", sla_state="ended")
    check(w.refs(w.breached, w.assigned), view="all", sla_state="breached")
    check(w.refs(w.breached, w.assigned, w.due_soon), view="all", due_within_minutes=20)
    check(w.refs(w.due_soon), view="due_soon")
    check(w.refs(w.breached, w.assigned), view="breached")
    check(open_ - w.refs(w.assigned), view="unassigned")
    check(open_ - w.refs(w.assigned), unassigned="true")
    check(w.refs(w.assigned), expert_id=str(w.expert.id))
    check(w.refs(w.assigned), country="kg")
    check(w.refs(w.awaiting), country="IR")
    region = w.breached.region_code
    assert region is not None and w.awaiting.region_code != region
    check(
        open_ - w.refs(w.awaiting) - {r.reference for r in w.all if r.region_code != region},
        region=region,
    )
    check(w.refs(w.met), wants="sample_report")
    check(open_ - w.refs(w.met), wants="expert_cv")
    check(w.refs(w.awaiting), source="email")
    check(open_ - w.refs(w.awaiting), source="form")
    check(w.refs(w.awaiting), requester_type="law_firm")
    check(w.refs(w.due_soon), language="en")
    check(w.refs(w.breached, w.assigned), language="ru")
    # Due within 20 minutes: the overdue ones and the one with 10 minutes left; not the met one.
    check(w.refs(w.breached, w.assigned, w.due_soon), due_within_minutes=20)
    check(w.refs(w.breached, w.assigned, w.due_soon, w.awaiting), due_within_minutes=61)
    # Received between t=50 and t=120: only the due-soon one (received at t=100).
    start = w.breached.received_at
    check(
        w.refs(w.due_soon),
        received_from=(start + dt.timedelta(minutes=50)).isoformat(),
        received_to=(start + dt.timedelta(minutes=120)).isoformat(),
    )
    # Filters combine (AND).
    check(w.refs(w.breached), sla_state="breached", unassigned="true")


def test_items_carry_the_sla_and_the_experts_public_name(
    db: Session, client: object, clock: Clock
) -> None:
    c: Any = client
    w = World(db, clock)
    items = {i["reference"]: i for i in _get(c, login(c, w.staff), limit=100)["items"]}
    soon = items[w.due_soon.reference]
    # Whole minutes, rounded down (a few real seconds pass while the test runs).
    assert soon["sla_state"] == "due_soon" and soon["minutes_left"] in (9, 10)
    assert items[w.breached.reference]["minutes_left"] in (-91, -90)
    assert items[w.met.reference]["minutes_left"] is None
    spam = _get(c, login(c, w.staff), view="all", status="spam", limit=100)["items"]
    spam_item = next(i for i in spam if i["reference"] == w.spam.reference)
    assert spam_item["sla_state"] == "ended" and spam_item["minutes_left"] is None
    assert spam_item["ended_at"] is not None and items[w.met.reference]["ended_at"] is None
    expert = items[w.assigned.reference]["expert"]
    assert expert["id"] == str(w.expert.id) and expert["public_name"].startswith("Dr Expert")
    assert items[w.breached.reference]["expert"] is None
    # Sorted by the response deadline.
    dues = [i["first_response_due_at"] for i in items.values()]
    assert dues == sorted(dues)


def test_search_by_reference_and_exact_email(db: Session, client: object, clock: Clock) -> None:
    c: Any = client
    w = World(db, clock)
    h = login(c, w.staff)
    ref = w.due_soon.reference
    assert _refs(c, h, q=f"{ref[:4].lower()}-{ref[4:].lower()}") == [ref]
    pii = records.reveal_pii(w.awaiting)
    assert pii is not None
    email = str(pii["email"])
    assert _refs(c, h, q=email.upper()) == [w.awaiting.reference]
    assert _refs(c, h, q=email.lower()) == [w.awaiting.reference]
    # Exact only: a part of the address finds nothing (no LIKE on personal data).
    assert _refs(c, h, q=email.split("@")[0] + "@") == []
    assert _refs(c, h, q="nobody@example.org") == []


def test_views_mine_and_unassigned(db: Session, client: object, clock: Clock) -> None:
    c: Any = client
    w = World(db, clock)
    other = create_user(db, role=Role.staff)
    # ``mine``: this user recorded a contact (w.met) or acted in the history.
    records.add_history(db, w.breached, actor=f"user:{other.id}", action="note_added")
    db.flush()
    assert w.mine(_refs(c, login(c, w.staff), view="mine")) == w.refs(w.met)
    assert w.mine(_refs(c, login(c, other), view="mine")) == w.refs(w.breached)


@BOTH_DATABASES
def test_keyset_pages_return_every_row_once_in_order(
    db: Session, client: object, database: str
) -> None:
    c: Any = client
    assert db.get_bind().dialect.name == database
    staff = create_user(db, role=Role.staff)
    region = f"test_{secrets.token_hex(4)}"
    base = now().replace(microsecond=0) + dt.timedelta(minutes=30)
    made = []
    for i in range(23):
        req = make_request(db, region=region, flush=False)
        # Ties: groups of four share a due time.
        req.first_response_due_at = base + dt.timedelta(minutes=i // 4)
        made.append(req)
    db.flush()
    expected = [r.reference for r in sorted(made, key=lambda r: (r.first_response_due_at, r.id))]
    h = login(c, staff)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"region": region, "limit": 5, "counts": "false"}
        if cursor:
            params["cursor"] = cursor
        page = _get(c, h, **params)
        assert page["counts"] is None
        seen += [i["reference"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5 and seen == expected and len(set(seen)) == 23
    # Newest first, the same way.
    received = sorted(made, key=lambda r: (r.received_at, r.id), reverse=True)
    seen = []
    cursor = None
    while True:
        params = {"region": region, "limit": 7, "sort": "received_desc"}
        if cursor:
            params["cursor"] = cursor
        page = _get(c, h, **params)
        seen += [i["reference"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r.reference for r in received]
    # A cursor of one sort is refused by the other.
    first = _get(c, h, region=region, limit=5)["next_cursor"]
    resp = c.get(URL, params={"cursor": first, "sort": "received_desc"}, headers=h)
    assert resp.status_code == 422 and "cursor" in field_problems(resp)


def test_counts_over_open_requests(db: Session, client: object, clock: Clock) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    h = login(c, staff)
    before = _get(c, h, limit=1)["counts"]
    w = World(db, clock)
    after = _get(c, h, limit=1, region="nowhere")["counts"]  # filters do not narrow counts

    def delta(group: str, key: str) -> int:
        return int(after[group].get(key, 0)) - int(before[group].get(key, 0))

    assert delta("by_sla_state", "breached") == 2
    assert delta("by_sla_state", "due_soon") == 1
    assert delta("by_sla_state", "met") == 1
    assert delta("by_sla_state", "awaiting") == 1
    assert delta("by_status", "new") == 4  # the assigned one is new too until accepted
    assert delta("by_status", "in_progress") == 1
    assert delta("by_status", "spam") == 0  # ended: not counted
    assert "ended" not in after["by_sla_state"]  # an open request never is
    assert after["total_open"] - before["total_open"] == 5
    assert sum(after["by_sla_state"].values()) == after["total_open"]
    _ = w


def test_bad_parameters_are_422_naming_the_parameter(db: Session, client: object) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    h = login(c, staff)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"status": "bogus"}, "status"),
        ({"sla_state": "late"}, "sla_state"),
        ({"view": "everything"}, "view"),
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"q": "??"}, "q"),
        ({"due_within_minutes": -1}, "due_within_minutes"),
        ({"country": "KGZ"}, "country"),
        ({"expert_id": "nope"}, "expert_id"),
        ({"wants": "lunch"}, "wants"),
        ({"received_from": "yesterday"}, "received_from"),
        ({"received_from": "2026-11-23T10:00:00"}, "received_from"),
        (
            {"received_from": "2026-11-23T10:00:00Z", "received_to": "2026-11-23T09:00:00Z"},
            "received_to",
        ),
        ({"unassigned": "true", "expert_id": str(staff.id)}, "unassigned"),
    ]
    for params, name in cases:
        resp = c.get(URL, params=params, headers=h)
        assert resp.status_code == 422, (params, resp.text)
        problems = field_problems(resp)
        assert any(k == name or k.startswith(f"{name}.") for k in problems), (params, problems)


def test_roles(db: Session, client: object) -> None:
    c: Any = client
    expert: User = create_expert(db, countries=["KG"])
    admin = create_user(db, role=Role.admin)
    assert c.get(URL).status_code == 401
    assert c.get(URL, headers=login(c, expert)).status_code == 403
    assert c.get(URL, headers=login(c, admin)).status_code == 200


def test_the_list_holds_no_names_or_addresses(db: Session, client: object, clock: Clock) -> None:
    c: Any = client
    w = World(db, clock)
    resp = c.get(URL, params={"view": "all", "limit": 100}, headers=login(c, w.staff))
    assert resp.status_code == 200
    text = resp.text
    assert w.awaiting.reference in text  # the rows are there
    assert MARKER not in text  # name and summary carry the marker
    for req in w.all:
        pii = records.reveal_pii(req)
        assert pii is not None and MARKER in str(pii["full_name"])
        assert str(pii["email"]).lower() not in text.lower()
    assert "@example.org" not in text.lower()
    assert "555 123" not in text
