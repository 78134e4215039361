"""The duty roster: shifts in the person's own zone, one-off changes, who is on duty,
gaps, the empty-roster rule, the admin API, and the alerts the roster raises."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.flows import request as flows
from app.models import (
    DutyLevel,
    OverrideKind,
    Region,
    RequestHistory,
    Role,
    RosterShift,
)
from app.roster import alerts
from app.roster import service as roster
from app.sla import scheduling
from tests.conftest import Clock
from tests.factories import (
    around_the_clock,
    create_expert,
    create_user,
    drain_all,
    login,
    make_request,
    override,
    set_time,
    shift,
)
from tests.mail_reader import recipients, take

UTC = dt.UTC


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# Occurrences in the person's zone ---------------------------------------------------------


def test_a_shift_past_midnight_keeps_its_wall_clock_hours_across_both_dst_changes() -> None:
    # Saturday 22:00 to 06:00 in Berlin; clocks go forward on Sunday 29 March 2026 (02:00 ->
    # 03:00) and back on Sunday 25 October 2026 (03:00 -> 02:00).
    s = RosterShift(
        timezone="Europe/Berlin",
        weekday=5,
        starts_local=dt.time(22),
        ends_local=dt.time(6),
        level=DutyLevel.member,
    )
    winter = roster.shift_occurrences(s, _utc("2026-03-20T00:00"), _utc("2026-03-23T00:00"))
    assert winter == [(_utc("2026-03-21T21:00"), _utc("2026-03-22T05:00"))]  # UTC+1, 8 h
    spring = roster.shift_occurrences(s, _utc("2026-03-27T00:00"), _utc("2026-03-30T00:00"))
    assert spring == [(_utc("2026-03-28T21:00"), _utc("2026-03-29T04:00"))]  # 7 h that night
    summer = roster.shift_occurrences(s, _utc("2026-04-03T00:00"), _utc("2026-04-06T00:00"))
    assert summer == [(_utc("2026-04-04T20:00"), _utc("2026-04-05T04:00"))]  # UTC+2
    autumn = roster.shift_occurrences(s, _utc("2026-10-23T00:00"), _utc("2026-10-26T00:00"))
    assert autumn == [(_utc("2026-10-24T20:00"), _utc("2026-10-25T05:00"))]  # 9 h that night


def test_who_is_on_duty_follows_shifts_extras_and_cancellations(db: Session) -> None:
    day = create_user(db, role=Role.staff)
    night = create_user(db, role=Role.staff)
    lead = create_user(db, role=Role.staff)
    sup = create_user(db, role=Role.admin)
    other_admin = create_user(db, role=Role.admin)
    # Monday 2026-11-30. Day shift 08-20 in New York (13:00-01:00 UTC), night shift 20-08 in
    # Tokyo... in UTC to keep the arithmetic visible.
    shift(db, day, 0, "08:00", "20:00", tz="America/New_York")
    shift(db, night, 0, "20:00", "08:00", tz="UTC")
    shift(db, lead, 0, "00:00", "00:00", tz="UTC", level=DutyLevel.lead)
    shift(db, sup, 0, "00:00", "00:00", tz="UTC", level=DutyLevel.supervisor)

    at = _utc("2026-11-30T14:00")  # 09:00 in New York
    assert {u.id for u in roster.on_duty(db, at, role=Role.staff)} == {day.id, lead.id}
    assert roster.duty_lead(db, at) == lead
    assert [u.id for u in roster.supervisors(db, at)] == [sup.id]
    late = _utc("2026-11-30T23:00")  # night shift (UTC) and still the New York day
    assert {u.id for u in roster.on_duty_staff(db, late)} == {day.id, night.id, lead.id}
    next_morning = _utc("2026-12-01T02:00")  # Tuesday 02:00: the night shift runs to 08:00
    assert {u.id for u in roster.on_duty_staff(db, next_morning)} == {night.id}

    # One-off changes: the night person is off that night, the day person does an extra hour.
    override(db, night, OverrideKind.cancel, _utc("2026-12-01T00:00"), _utc("2026-12-01T08:00"))
    override(db, day, OverrideKind.extra, _utc("2026-12-01T01:00"), _utc("2026-12-01T03:00"))
    assert {u.id for u in roster.on_duty_staff(db, next_morning)} == {day.id}
    # Nobody of staff at 04:00 -> the duty lead (none on Tuesday) -> the supervisors (none on
    # Tuesday) -> every active admin.
    four = _utc("2026-12-01T04:00")
    assert roster.on_duty(db, four, role=Role.staff) == []
    assert {u.id for u in roster.on_duty_staff(db, four)} == {sup.id, other_admin.id}
    # A deactivated account is never on duty.
    day.is_active = False
    db.flush()
    assert roster.on_duty(db, _utc("2026-11-30T14:00"), role=Role.staff) == [lead]


def test_an_empty_roster_keeps_the_old_rule(db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    admin = create_user(db, role=Role.admin)
    at = _utc("2026-12-01T03:00")
    assert roster.roster_is_empty(db)
    assert staff.id in {u.id for u in roster.on_duty_staff(db, at)}
    assert admin.id in {u.id for u in roster.supervisors(db, at)}
    assert roster.duty_lead(db, at) is None
    assert roster.gaps(db, at, at + dt.timedelta(days=7)) == []
    # A cancellation alone does not make a roster.
    override(db, staff, OverrideKind.cancel, at, at + dt.timedelta(hours=1))
    assert roster.roster_is_empty(db)


# Gaps ------------------------------------------------------------------------------------------


def _cover_every_region(db: Session) -> None:
    codes = list(db.scalars(select(Region.code)).all())
    expert = create_expert(db, regions=codes)
    around_the_clock(db, expert)


def test_a_gap_on_sunday_02_to_03_is_reported_and_filling_it_clears_the_report(
    db: Session, client: Any, clock: Clock
) -> None:
    set_time(clock, _utc("2026-11-30T09:00"))  # a Monday
    admin = create_user(db, role=Role.admin)
    staff = create_user(db, role=Role.staff)
    for day in range(6):
        shift(db, staff, day, "00:00", "00:00")
    shift(db, staff, 6, "00:00", "02:00")
    shift(db, staff, 6, "03:00", "00:00")
    _cover_every_region(db)
    headers = login(client, admin)

    resp = client.get("/api/v1/admin/roster/gaps?days=7", headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["roster_empty"] is False
    assert [(g["kind"], g["start"][:16], g["end"][:16]) for g in body["gaps"]] == [
        ("staff", "2026-12-06T02:00", "2026-12-06T03:00")
    ]
    # The daily e-mail to admins names it.
    assert alerts.queue_gap_notices(db) >= 1

    filled = client.post(
        "/api/v1/admin/roster/shifts",
        json={
            "user_id": str(staff.id),
            "weekday": 6,
            "starts_local": "02:00",
            "ends_local": "03:00",
            "timezone": "UTC",
        },
        headers=headers,
    )
    assert filled.status_code == 201, filled.text
    assert client.get("/api/v1/admin/roster/gaps?days=7", headers=headers).json()["gaps"] == []


def test_a_region_with_no_expert_nor_lead_on_duty_is_a_gap(db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    around_the_clock(db, staff)
    start = _utc("2026-11-30T00:00")
    end = start + dt.timedelta(days=1)
    regions = set(db.scalars(select(Region.code)).all())
    found = roster.gaps(db, start, end)
    assert {g.region_code for g in found if g.kind == "region"} == regions
    # The region's lead on duty covers it (the lead need not be listed among its experts).
    lead = create_expert(db, countries=["KG"])
    region = db.get(Region, "east_asia")
    assert region is not None
    region.lead_expert_id = lead.id
    shift(db, lead, 0, "00:00", "12:00")
    found = roster.gaps(db, start, end)
    east_asia = [(g.start, g.end) for g in found if g.region_code == "east_asia"]
    assert east_asia == [(_utc("2026-11-30T12:00"), end)]


def test_the_gap_email_goes_once_a_day_until_it_is_fixed(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    set_time(clock, _utc("2026-11-30T09:00"))
    admin = create_user(db, role=Role.admin)
    staff = create_user(db, role=Role.staff)
    shift(db, staff, 0, "08:00", "16:00")
    assert alerts.queue_gap_notices(db) == 1
    drain_all(db)
    sent = take(mail_dir, "Duty roster:")
    assert recipients(sent) == {admin.email}
    assert "no staff on duty" in sent[0][2] and "region" in sent[0][2]
    # The hourly check later that day writes nothing new.
    set_time(clock, _utc("2026-11-30T15:00"))
    assert alerts.queue_gap_notices(db) == 0
    drain_all(db)
    assert take(mail_dir, "Duty roster:") == []
    # The next day, still not fixed: again.
    set_time(clock, _utc("2026-12-01T09:00"))
    assert alerts.queue_gap_notices(db) == 1
    # Fixed before the e-mail went out: nothing is sent.
    around_the_clock(db, staff)
    _cover_every_region(db)
    drain_all(db)
    assert take(mail_dir, "Duty roster:") == []
    set_time(clock, _utc("2026-12-02T09:00"))
    assert alerts.queue_gap_notices(db) == 0


# A request for a region nobody covers ------------------------------------------------------


def test_a_request_for_a_region_with_nobody_on_duty_alerts_the_duty_lead_at_once(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    set_time(clock, _utc("2026-12-01T03:00"))  # Tuesday
    staff = create_user(db, role=Role.staff)
    lead = create_user(db, role=Role.staff)
    expert = create_expert(db, regions=["east_asia"])
    around_the_clock(db, staff)
    around_the_clock(db, lead, level=DutyLevel.lead)
    shift(db, expert, 1, "09:00", "17:00")  # Tuesday daytime only
    take(mail_dir)

    req = make_request(db, country="CN", region="east_asia")
    flows.submitted(db, req)  # what the worker does after a submission
    history = db.scalars(
        select(RequestHistory).where(
            RequestHistory.request_id == req.id, RequestHistory.action == "duty_lead_alerted"
        )
    ).all()
    assert [h.details["to"] for h in history] == ["duty_lead"]
    drain_all(db)
    alerted = take(mail_dir, "Nobody on duty")
    assert recipients(alerted) == {lead.email}
    assert req.reference in alerted[0][1] and "east_asia" in alerted[0][2]

    # In the expert's hours the region is covered: no alert.
    set_time(clock, _utc("2026-12-01T10:00"))
    covered = make_request(db, country="CN", region="east_asia")
    assert alerts.alert_if_uncovered(db, covered) == 0


def test_with_no_duty_lead_on_duty_the_supervisors_are_alerted(db: Session, clock: Clock) -> None:
    set_time(clock, _utc("2026-12-01T03:00"))
    staff = create_user(db, role=Role.staff)
    admin = create_user(db, role=Role.admin)
    around_the_clock(db, staff)
    req = make_request(db, country="CN", region="east_asia")
    assert alerts.alert_if_uncovered(db, req) == len(roster.all_admins(db))
    assert admin.id in {u.id for u in roster.all_admins(db)}


# The admin API -----------------------------------------------------------------------------


def test_admins_manage_shifts_and_overrides_and_bad_input_is_422_naming_the_field(
    db: Session, client: Any
) -> None:
    admin = create_user(db, role=Role.admin)
    staff = create_user(db, role=Role.staff)
    expert = create_expert(db, regions=["east_asia"])
    h = login(client, admin)
    base = "/api/v1/admin/roster"

    created = client.post(
        f"{base}/shifts",
        json={
            "user_id": str(expert.id),
            "weekday": 4,
            "starts_local": "22:00",
            "ends_local": "06:00",
            "level": "member",
        },
        headers=h,
    )
    assert created.status_code == 201, created.text
    shift_out = created.json()
    assert shift_out["timezone"] == "Europe/London"  # the expert's own zone by default
    patched = client.patch(f"{base}/shifts/{shift_out['id']}", json={"level": "lead"}, headers=h)
    assert patched.status_code == 200 and patched.json()["level"] == "lead"
    assert [s["id"] for s in client.get(f"{base}/shifts", headers=h).json()] == [shift_out["id"]]

    # A cancellation in local date and time (no offset) in the person's zone.
    cancel = client.post(
        f"{base}/overrides",
        json={
            "user_id": str(staff.id),
            "kind": "cancel",
            "starts_at": "2026-12-25T09:00:00",
            "ends_at": "2026-12-25T17:00:00",
            "timezone": "Asia/Tokyo",
        },
        headers=h,
    )
    assert cancel.status_code == 201, cancel.text
    assert cancel.json()["starts_at"].startswith("2026-12-25T00:00")  # 09:00 in Tokyo
    assert client.delete(f"{base}/overrides/{cancel.json()['id']}", headers=h).status_code == 204
    assert client.delete(f"{base}/overrides/{cancel.json()['id']}", headers=h).status_code == 404

    problems: list[tuple[dict[str, Any], str]] = [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"weekday": 7}, "weekday"),
        ({"user_id": "00000000-0000-0000-0000-000000000000"}, "user_id"),
    ]
    for change, field in problems:
        body = {
            "user_id": str(staff.id),
            "weekday": 0,
            "starts_local": "08:00",
            "ends_local": "16:00",
            **change,
        }
        resp = client.post(f"{base}/shifts", json=body, headers=h)
        assert resp.status_code == 422, resp.text
        assert field in {f["field"].split(".")[-1] for f in resp.json()["error"]["fields"]}
    backwards = client.post(
        f"{base}/overrides",
        json={
            "user_id": str(staff.id),
            "kind": "extra",
            "starts_at": "2026-12-25T10:00:00Z",
            "ends_at": "2026-12-25T09:00:00Z",
        },
        headers=h,
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"]["fields"][0]["field"] == "ends_at"
    assert client.delete(f"{base}/shifts/{shift_out['id']}", headers=h).status_code == 204
    assert client.patch(f"{base}/shifts/{shift_out['id']}", json={}, headers=h).status_code == 404

    # Staff may not change the roster; nobody signed in: 401.
    assert client.get(f"{base}/shifts", headers=login(client, staff)).status_code == 403
    assert client.get(f"{base}/gaps").status_code == 401


def test_on_duty_endpoint_shows_the_roster_and_the_fallbacks(db: Session, client: Any) -> None:
    admin = create_user(db, role=Role.admin)
    resp = client.get("/api/v1/admin/roster/on-duty", headers=login(client, admin))
    assert resp.status_code == 200
    body = resp.json()
    assert body["roster_empty"] is True and body["on_duty"] == []
    assert str(admin.id) in {p["id"] for p in body["supervisors"]}


@pytest.mark.sqlite
def test_on_sqlite_the_roster_answers_the_same(db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    shift(db, staff, 6, "00:00", "02:00")
    shift(db, staff, 6, "03:00", "00:00")
    start = _utc("2026-12-06T00:00")
    found = [g for g in roster.gaps(db, start, start + dt.timedelta(days=1)) if g.kind == "staff"]
    assert [(g.start, g.end) for g in found] == [
        (_utc("2026-12-06T02:00"), _utc("2026-12-06T03:00"))
    ]
    assert roster.on_duty(db, _utc("2026-12-06T01:00")) == [staff]


# Reminders at 3 a.m. on a public holiday ---------------------------------------------------


def test_a_request_at_23_30_on_a_holiday_reminds_whoever_is_on_duty_at_00_00_and_00_15(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    # Friday 25 December 2026, a public holiday.
    regular = create_user(db, role=Role.staff)  # Friday 17:00-01:00 in Berlin, off for the day
    cover = create_user(db, role=Role.staff)  # the holiday cover, until midnight UTC
    night = create_user(db, role=Role.staff)  # Friday 19:00-03:00 in New York = 00:00-08:00 UTC
    tokyo = create_user(db, role=Role.staff)  # Saturday 08:00-10:00 in Tokyo, cancelled
    idle = create_user(db, role=Role.staff)  # on no shift at all
    shift(db, regular, 4, "17:00", "01:00", tz="Europe/Berlin")
    shift(db, night, 4, "19:00", "03:00", tz="America/New_York")
    shift(db, tokyo, 5, "08:00", "10:00", tz="Asia/Tokyo")
    override(db, regular, OverrideKind.cancel, _utc("2026-12-25T00:00"), _utc("2026-12-26T06:00"))
    override(db, cover, OverrideKind.extra, _utc("2026-12-25T16:00"), _utc("2026-12-26T00:00"))
    override(db, tokyo, OverrideKind.cancel, _utc("2026-12-25T23:00"), _utc("2026-12-26T01:00"))
    take(mail_dir)

    set_time(clock, _utc("2026-12-25T23:30"))
    req = make_request(db, country="CN", region="east_asia")  # no expert in that region
    scheduling.schedule(db, req)
    assert {u.id for u in roster.on_duty_staff(db, req.received_at)} == {cover.id}

    set_time(clock, _utc("2026-12-26T00:00:05"))
    drain_all(db)
    first = take(mail_dir, "Reminder:")
    assert recipients(first) == {night.email}
    assert all("30 minutes" in s for _, s, _ in first)

    set_time(clock, _utc("2026-12-26T00:15:05"))
    drain_all(db)
    second = take(mail_dir, "Reminder:")
    assert recipients(second) == {night.email}
    assert all("45 minutes" in s for _, s, _ in second)
    for person in (regular, cover, tokyo, idle):
        assert person.email not in recipients(first + second)
