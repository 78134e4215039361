"""SLA reports: per request met/breached against the target stored with it, the
grouped figures and CSV equal a count made directly from the requests, and the staff page
draws its charts on the server."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import statistics
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.flows import request as flows
from app.main import create_app
from app.models import (
    ContactChannel,
    IntakeRequest,
    Region,
    RequestSource,
    RequestStatus,
    Role,
)
from app.reports import service as reports
from app.reports.service import Group
from app.sla import service as sla
from tests.conftest import Clock
from tests.factories import create_expert, create_user, login, make_request, set_time, signed_in

DAY = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)  # a Tuesday with no other requests


def _at(hour: int, minute: int = 0, *, day: dt.datetime = DAY) -> dt.datetime:
    return day.replace(hour=hour, minute=minute)


def _reply(db: Session, clock: Clock, req: IntakeRequest, when: dt.datetime) -> None:
    set_time(clock, when)
    staff = create_user(db, role=Role.staff)
    sla.record_contact(
        db, req, channel=ContactChannel.email, contacted_at=when, note=None, by_user=staff
    )


def _request_at(db: Session, clock: Clock, when: dt.datetime, **kw: Any) -> IntakeRequest:
    set_time(clock, when)
    req = make_request(db, **kw)
    req.received_at = when  # exactly, not "now plus the test's run time"
    req.first_response_due_at = when + dt.timedelta(minutes=req.sla_minutes)
    db.flush()
    return req


def test_a_reply_at_10_50_is_met_in_50_min_and_one_at_11_07_is_breached_by_7(
    db: Session, client: Any, clock: Clock
) -> None:
    early = _request_at(db, clock, _at(10))
    late = _request_at(db, clock, _at(10), region="east_asia", country="CN")
    _reply(db, clock, early, _at(10, 50))
    _reply(db, clock, late, _at(11, 7))
    assert reports.request_outcome(early).label == "met, 50 min"
    assert reports.request_outcome(late).label == "breached by 7 min"
    o = reports.request_outcome(late)
    assert (o.state, o.minutes_to_first_response, o.minutes_over) == ("breached", 67.0, 7.0)

    # Changing the setting never rewrites history: the stored target decides.
    get_settings().sla_first_response_minutes = 30
    try:
        assert reports.request_outcome(early).label == "met, 50 min"
    finally:
        get_settings().sla_first_response_minutes = 60

    admin = create_user(db, role=Role.staff)
    resp = client.get(
        "/api/v1/reports/sla?from=2026-11-10&to=2026-11-10&group=region",
        headers=login(client, admin),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["total"]["count"] == 2
    assert (body["total"]["met"], body["total"]["breached"]) == (1, 1)
    assert body["total"]["share_within_hour"] == 0.5
    assert body["total"]["median_minutes"] == 58.5  # (50 + 67) / 2
    by_region = {g["key"]: g for g in body["groups"]}
    assert by_region["east_asia"]["breached"] == 1 and by_region["east_asia"]["met"] == 0
    assert by_region["eastern_europe_post_soviet"]["met"] == 1
    # People read names: the region's, not its code.
    names = {r.code: r.name for r in db.scalars(select(Region))}
    assert by_region["east_asia"]["label"] == names["east_asia"] != "east_asia"

    # The page says every group in words, in the viewer's language: the region's name, the
    # channel, and the pool of requests with no region.
    _request_at(db, clock, _at(12), region=None)
    admin.language = "ru"
    db.flush()
    with TestClient(create_app(), base_url="https://testserver") as web:
        shown = signed_in(web, admin).get("/staff/reports?from=2026-11-10&to=2026-11-10")
    assert shown.status_code == 200, shown.text
    rows = [unescape(r) for r in re.findall(r'<th scope="row"><bdi>(.*?)</bdi></th>', shown.text)]
    assert names["east_asia"] in rows and names["eastern_europe_post_soviet"] in rows
    assert "Общий пул (без региона)" in rows and "Веб-форма" in rows  # noqa: RUF001
    assert not {"east_asia", "general", "form", "email"} & set(rows), rows


def _scenario(db: Session, clock: Clock) -> list[IntakeRequest]:
    """Requests over three days: answered in time, late, never (breached and open), withdrawn
    before the deadline (ended) and marked spam after it (breached)."""
    expert = create_expert(db, regions=["east_asia"])
    plan: list[tuple[dt.datetime, str | None, RequestSource, int | None, bool]] = [
        # (arrival, region, source, minutes to reply or None, assigned)
        (_at(9), "east_asia", RequestSource.form, 12, True),
        (_at(9, 30), "east_asia", RequestSource.email, 75, True),
        (_at(14), "middle_east", RequestSource.form, 59, False),
        (_at(23, 50), None, RequestSource.form, 61, False),
        (_at(8, day=DAY + dt.timedelta(days=1)), "middle_east", RequestSource.email, None, False),
        (_at(12, day=DAY + dt.timedelta(days=1)), "east_asia", RequestSource.form, 5, True),
        (_at(16, day=DAY + dt.timedelta(days=1)), "east_asia", RequestSource.form, 200, False),
        (_at(7, day=DAY + dt.timedelta(days=2)), None, RequestSource.email, 30, False),
        (_at(9, day=DAY + dt.timedelta(days=2)), "middle_east", RequestSource.form, 60, True),
    ]
    made = []
    for arrival, region, source, reply, assigned in plan:
        req = _request_at(db, clock, arrival, region=region)
        req.source = source
        if assigned:
            req.assigned_expert_id = expert.id
        if reply is not None:
            _reply(db, clock, req, arrival + dt.timedelta(minutes=reply))
        made.append(req)
    day2 = DAY + dt.timedelta(days=1)
    early = _request_at(db, clock, _at(15, day=day2), region="middle_east")
    set_time(clock, early.received_at + dt.timedelta(minutes=5))
    flows.withdraw(db, early)
    late = _request_at(db, clock, _at(18, day=day2), region="east_asia")
    set_time(clock, late.received_at + dt.timedelta(minutes=70))
    flows.change_status(db, late, RequestStatus.spam, actor="system")
    made += [early, late]
    # The last request of the range is still open at "now" (10 minutes after it arrived).
    last = _request_at(db, clock, _at(20, day=DAY + dt.timedelta(days=2)), region="east_asia")
    made.append(last)
    set_time(clock, last.received_at + dt.timedelta(minutes=10))
    db.flush()
    return made


def _direct(made: list[IntakeRequest], key: Any) -> dict[str, dict[str, Any]]:
    """The figures counted straight from the request rows, without the report code."""
    current = now()
    out: dict[str, dict[str, Any]] = {}
    for r in made:
        g = out.setdefault(
            key(r),
            {"count": 0, "met": 0, "breached": 0, "open_breached": 0, "ended": 0, "minutes": []},
        )
        g["count"] += 1
        due, answered, ended = r.first_response_due_at, r.first_responded_at, r.ended_at
        if answered is not None and answered <= due:
            g["met"] += 1
        elif ended is not None and ended < due:
            g["ended"] += 1
            continue
        elif answered is not None or ended is not None or current >= due:
            g["breached"] += 1
            g["open_breached"] += answered is None and ended is None
        if answered is not None:
            g["minutes"].append((answered - r.received_at).total_seconds() / 60)
    return out


KEYS = {
    "day": lambda r: r.received_at.date().isoformat(),
    "region": lambda r: r.region_code or "general",
    "expert": lambda r: str(r.assigned_expert_id) if r.assigned_expert_id else "unassigned",
    "channel": lambda r: r.source.value,
}


def _check(body: dict[str, Any], expected: dict[str, dict[str, Any]]) -> None:
    got = {g["key"]: g for g in body["groups"]}
    assert set(got) == set(expected)
    for key, want in expected.items():
        g = got[key]
        assert (g["count"], g["met"], g["breached"], g["open_breached"], g["ended"]) == (
            want["count"],
            want["met"],
            want["breached"],
            want["open_breached"],
            want["ended"],
        ), key
        decided = want["met"] + want["breached"]
        assert g["share_within_hour"] == (round(want["met"] / decided, 4) if decided else None)
        if want["minutes"]:
            assert g["median_minutes"] == pytest.approx(statistics.median(want["minutes"]))
            mins = want["minutes"]
            q = (
                mins[0]
                if len(mins) == 1
                else statistics.quantiles(mins, n=10, method="inclusive")[-1]
            )
            assert g["p90_minutes"] == pytest.approx(q, abs=0.05)
        else:
            assert g["median_minutes"] is None and g["p90_minutes"] is None


def test_the_reports_numbers_equal_a_direct_count_of_the_requests(
    db: Session, client: Any, clock: Clock
) -> None:
    made = _scenario(db, clock)
    headers = login(client, create_user(db, role=Role.staff))
    span = "from=2026-11-10&to=2026-11-12"
    for group, key in KEYS.items():
        resp = client.get(f"/api/v1/reports/sla?{span}&group={group}", headers=headers)
        assert resp.status_code == 200, resp.text
        _check(resp.json(), _direct(made, key))
        assert resp.json()["total"]["count"] == len(made)

    # The CSV carries the same figures, then the total.
    resp = client.get(f"/api/v1/reports/sla.csv?{span}&group=channel", headers=headers)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    direct = _direct(made, KEYS["channel"])
    by_key = {r["key"]: r for r in rows}
    assert set(by_key) == set(direct) | {"total"}
    for k, want in direct.items():
        assert int(by_key[k]["met"]) == want["met"]
        assert int(by_key[k]["breached"]) == want["breached"]
        assert int(by_key[k]["ended"]) == want["ended"]
    assert int(by_key["total"]["count"]) == len(made)

    # A range that leaves out the first day counts only the others.
    resp = client.get("/api/v1/reports/sla?from=2026-11-11&to=2026-11-12", headers=headers)
    assert resp.json()["total"]["count"] == len(
        [r for r in made if r.received_at >= DAY + dt.timedelta(days=1)]
    )


def test_a_handful_of_spam_requests_leaves_the_share_within_the_hour_alone(
    db: Session, client: Any, clock: Clock
) -> None:
    answered = _request_at(db, clock, _at(10))
    _reply(db, clock, answered, _at(10, 50))
    spam = [_request_at(db, clock, _at(11)) for _ in range(5)]
    set_time(clock, _at(11, 5))
    for req in spam:
        flows.change_status(db, req, RequestStatus.spam, actor="system")
    assert reports.request_outcome(spam[0]).label == "ended before the deadline, no response"
    set_time(clock, _at(15))  # hours after every deadline
    headers = login(client, create_user(db, role=Role.staff))
    body = client.get("/api/v1/reports/sla?from=2026-11-10&to=2026-11-10", headers=headers).json()
    total = body["total"]
    assert (total["count"], total["met"], total["breached"], total["ended"]) == (6, 1, 0, 5)
    assert total["open_breached"] == 0 and total["open"] == 0
    assert total["share_within_hour"] == 1.0
    assert total["median_minutes"] == 50.0  # the ended ones are not in the times either
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(
                    "/api/v1/reports/sla.csv?from=2026-11-10&to=2026-11-10", headers=headers
                ).text
            )
        )
    )
    assert [(r["key"], r["ended"], r["share_within_hour"]) for r in rows] == [
        ("2026-11-10", "5", "1.0"),
        ("total", "5", "1.0"),
    ]
    # The staff page: the share is 100 %, the ended ones stand apart.
    client.cookies.set("intake_session", headers["Authorization"].split()[1])
    html = client.get("/staff/reports?from=2026-11-10&to=2026-11-10").text
    summary = html.split('class="summary"', 1)[1].split("</p>", 1)[0]
    assert "100%" in summary and "<strong>5</strong>" in summary
    assert "Ended before the deadline" in html


def test_a_request_ended_after_its_deadline_without_a_response_stays_breached(
    db: Session, clock: Clock
) -> None:
    req = _request_at(db, clock, _at(10))
    set_time(clock, _at(11, 10))
    flows.change_status(db, req, RequestStatus.declined, actor="system")
    set_time(clock, _at(13))
    o = reports.request_outcome(req)
    assert (o.state, o.open_breached) == ("breached", False)
    assert o.minutes_over == pytest.approx(10, abs=0.5)  # the clock stopped when it ended


def test_report_access_and_bad_ranges(db: Session, client: Any) -> None:
    url = "/api/v1/reports/sla"
    assert client.get(url).status_code == 401
    expert = create_user(db, role=Role.expert)
    assert client.get(url, headers=login(client, expert)).status_code == 403
    h = login(client, create_user(db, role=Role.staff))
    backwards = client.get(f"{url}?from=2026-11-12&to=2026-11-10", headers=h)
    assert backwards.status_code == 422
    assert backwards.json()["error"]["fields"][0]["field"] == "from"
    too_long = client.get(f"{url}?from=2020-01-01&to=2026-11-10", headers=h)
    assert too_long.status_code == 422 and too_long.json()["error"]["fields"][0]["field"] == "to"
    assert client.get(f"{url}?group=weekday", headers=h).status_code == 422
    assert client.get(f"{url}?from=yesterday", headers=h).status_code == 422


@pytest.mark.sqlite
def test_on_sqlite_the_report_counts_the_same(db: Session, clock: Clock) -> None:
    made = _scenario(db, clock)
    start, end = reports.day_bounds(DAY.date(), DAY.date() + dt.timedelta(days=2))
    for group, key in KEYS.items():
        report = reports.sla_report(db, start, end, Group(group))
        direct = _direct(made, key)
        got = {g.key: (g.count, g.met, g.breached, g.open_breached, g.ended) for g in report.groups}
        assert got == {
            k: (v["count"], v["met"], v["breached"], v["open_breached"], v["ended"])
            for k, v in direct.items()
        }


def test_the_staff_reports_page_draws_its_charts_on_the_server(
    db: Session, client: Any, clock: Clock
) -> None:
    _scenario(db, clock)
    staff = create_user(db, role=Role.staff)
    # Not signed in: to the sign-in page.
    first = client.get("/staff/reports", follow_redirects=False)
    assert first.status_code == 303 and "/staff/sign-in" in first.headers["location"]
    token = login(client, staff)["Authorization"].split()[1]
    client.cookies.set("intake_session", token)
    page = client.get("/staff/reports?from=2026-11-10&to=2026-11-12")
    assert page.status_code == 200, page.text
    html = page.text
    assert html.count("<svg") == 3
    assert "First-response times over time" in html and "Breaches by region" in html
    assert "Arrivals by hour of the week against coverage" in html
    assert "<polyline" in html and "<rect" in html
    # Nothing from a third party, no script in the charts.
    assert "https://" not in html.split("<main", 1)[1]
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp or "default-src 'self'" in csp
    assert "Middle East" in html and "middle_east" not in html  # the region by its name
    # An expert is refused.
    client.cookies.set(
        "intake_session",
        login(client, create_user(db, role=Role.expert))["Authorization"].split()[1],
    )
    assert client.get("/staff/reports").status_code == 403
