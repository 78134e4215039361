"""The admin console's Roster page: the week grid in the viewer's zone (cut at their midnights,
right across daylight-saving changes, each shift's own zone beside it), adding, changing and
deleting weekly shifts, adding and deleting one-off changes through the API's services (same
validation, audited), and the gaps of the next 7 days in words. Staff and experts get 403; a
form without its CSRF token changes nothing."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import (
    AuditEvent,
    DutyLevel,
    OverrideKind,
    Region,
    Role,
    RosterOverride,
    RosterShift,
    User,
)
from app.roster import service as roster
from app.web import admin_roster as roster_page
from tests.conftest import Clock
from tests.factories import (
    around_the_clock,
    create_expert,
    create_user,
    csrf,
    field_error,
    override,
    shift,
    signed_in,
)

PATH = roster_page.PATH
UTC = dt.UTC
DASH = "\u2013"


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def _shift(
    weekday: int,
    start: str,
    end: str,
    tz: str = "UTC",
    *,
    level: DutyLevel = DutyLevel.member,
    user_id: uuid.UUID | None = None,
    id: int = 1,
) -> RosterShift:
    return RosterShift(
        id=id,
        user_id=user_id or uuid.UUID(int=1),
        timezone=tz,
        weekday=weekday,
        starts_local=dt.time.fromisoformat(start),
        ends_local=dt.time.fromisoformat(end),
        level=level,
        note=None,
    )


def _override(kind: OverrideKind, start: str, end: str, *, id: int = 9) -> RosterOverride:
    return RosterOverride(
        id=id,
        user_id=uuid.UUID(int=1),
        kind=kind,
        starts_at=_utc(start),
        ends_at=_utc(end),
        level=DutyLevel.member,
        note=None,
    )


def _view(entries: list[roster.WeekEntry]) -> list[tuple[str, str, str, str]]:
    """Each piece as (local day, start, end, own zone's span) for reading the assertions."""
    return [
        (
            e.day.isoformat(),
            f"{e.start:%H:%M}",
            "24:00" if e.into_next_day else f"{e.end:%H:%M}",
            f"{e.own_start:%H:%M}-{e.own_end:%H:%M}",
        )
        for e in entries
    ]


# The week grid (pure) ----------------------------------------------------------------------


def test_a_shift_past_the_viewers_midnight_is_cut_into_one_piece_per_day() -> None:
    # The week of Monday 4 January 2027, viewer and shifts in UTC: Monday 22:00-06:00 runs into
    # Tuesday; last week's Sunday night runs into this Monday, this Sunday's into next week.
    # Wednesday's shifts start and end on its midnights: neither is cut.
    monday = dt.date(2027, 1, 4)
    shifts = [_shift(0, "22:00", "06:00", id=1), _shift(6, "22:00", "06:00", id=2)]
    shifts += [_shift(2, "00:00", "04:00", id=3), _shift(2, "20:00", "00:00", id=4)]
    entries = roster.week_entries(shifts, [], monday, "UTC")
    assert _view(entries) == [
        ("2027-01-04", "00:00", "06:00", "22:00-06:00"),
        ("2027-01-04", "22:00", "24:00", "22:00-06:00"),
        ("2027-01-05", "00:00", "06:00", "22:00-06:00"),
        ("2027-01-06", "00:00", "04:00", "00:00-04:00"),
        ("2027-01-06", "20:00", "00:00", "20:00-00:00"),
        ("2027-01-10", "22:00", "24:00", "22:00-06:00"),
    ]
    flags = [(e.source_id, e.from_previous_day, e.into_next_day) for e in entries]
    assert flags == [
        (2, True, False),
        (1, False, True),
        (1, True, False),
        (3, False, False),
        (4, False, False),
        (2, False, True),
    ]


def test_a_viewer_ahead_of_utc_sees_a_london_evening_shift_on_their_next_morning() -> None:
    # Bishkek is UTC+6 all year; London is UTC in January. Monday 20:00-23:00 in London is
    # Tuesday 02:00-05:00 in Bishkek.
    entries = roster.week_entries(
        [_shift(0, "20:00", "23:00", "Europe/London")], [], dt.date(2027, 1, 4), "Asia/Bishkek"
    )
    assert _view(entries) == [("2027-01-05", "02:00", "05:00", "20:00-23:00")]
    assert entries[0].own_zone == "Europe/London"
    assert entries[0].start.utcoffset() == dt.timedelta(hours=6)


def test_a_viewer_behind_utc_sees_a_monday_night_shift_on_sunday_evening() -> None:
    # New York is UTC-5 in January: Monday 02:00-06:00 UTC is Sunday 21:00-01:00 there; the
    # shift of 4 January begins the evening before the week, next week's on its last evening.
    entries = roster.week_entries(
        [_shift(0, "02:00", "06:00")], [], dt.date(2027, 1, 4), "America/New_York"
    )
    assert _view(entries) == [
        ("2027-01-04", "00:00", "01:00", "02:00-06:00"),
        ("2027-01-10", "21:00", "24:00", "02:00-06:00"),
    ]


def test_the_week_the_clocks_go_forward_uses_each_days_own_offset() -> None:
    # London moves to BST on Sunday 28 March 2027 at 01:00 UTC. A Bishkek shift 14:00-22:00
    # (08:00-16:00 UTC) reads 08:00-16:00 on Saturday and 09:00-17:00 on Sunday in London.
    monday = dt.date(2027, 3, 22)
    shifts = [_shift(5, "14:00", "22:00", "Asia/Bishkek", id=1)]
    shifts.append(_shift(6, "14:00", "22:00", "Asia/Bishkek", id=2))
    # A London night shift on the night of the change lasts 7 hours, not 8.
    shifts.append(_shift(5, "22:00", "06:00", "Europe/London", id=3))
    entries = roster.week_entries(shifts, [], monday, "Europe/London")
    assert _view(entries) == [
        ("2027-03-27", "08:00", "16:00", "14:00-22:00"),
        ("2027-03-27", "22:00", "24:00", "22:00-06:00"),
        ("2027-03-28", "00:00", "06:00", "22:00-06:00"),
        ("2027-03-28", "09:00", "17:00", "14:00-22:00"),
    ]
    night = [e for e in entries if e.source_id == 3]
    # Measured in UTC: aware times sharing one zone subtract by wall clock.
    hours = sum((e.end.astimezone(UTC) - e.start.astimezone(UTC) for e in night), dt.timedelta())
    assert hours == dt.timedelta(hours=7)
    days = roster.week_days(monday, "Europe/London")
    assert days[6][2] - days[6][1] == dt.timedelta(hours=23)
    assert days[6][1] == _utc("2027-03-28T00:00") and days[6][2] == _utc("2027-03-28T23:00")


def test_a_new_york_viewer_sees_utc_shifts_an_hour_later_after_the_clocks_go_forward() -> None:
    # New York moves to EDT on Sunday 14 March 2027: 12:00-20:00 UTC is 07:00-15:00 on
    # Saturday and 08:00-16:00 on Sunday (a fixed offset would get one of them wrong).
    entries = roster.week_entries(
        [_shift(5, "12:00", "20:00", id=1), _shift(6, "12:00", "20:00", id=2)],
        [],
        dt.date(2027, 3, 8),
        "America/New_York",
    )
    assert _view(entries) == [
        ("2027-03-13", "07:00", "15:00", "12:00-20:00"),
        ("2027-03-14", "08:00", "16:00", "12:00-20:00"),
    ]


def test_one_off_changes_are_cut_at_midnight_and_mark_the_shifts_they_cancel() -> None:
    monday = dt.date(2027, 1, 4)
    shifts = [_shift(0, "09:00", "17:00", id=1), _shift(1, "09:00", "17:00", id=2)]
    overrides = [
        _override(OverrideKind.cancel, "2027-01-04T08:00", "2027-01-04T18:00", id=7),
        _override(OverrideKind.cancel, "2027-01-05T12:00", "2027-01-05T13:00", id=8),
        _override(OverrideKind.extra, "2027-01-06T20:00", "2027-01-07T04:00", id=9),
    ]
    entries = roster.week_entries(
        shifts, overrides, monday, "UTC", {uuid.UUID(int=1): "Asia/Bishkek"}
    )
    got = [(e.kind, e.source_id, e.day.day, f"{e.start:%H:%M}", e.off) for e in entries]
    assert got == [
        ("cancel", 7, 4, "08:00", ""),
        ("shift", 1, 4, "09:00", "all"),
        ("shift", 2, 5, "09:00", "part"),
        ("cancel", 8, 5, "12:00", ""),
        ("extra", 9, 6, "20:00", ""),
        ("extra", 9, 7, "00:00", ""),
    ]
    extra = entries[-1]
    assert (extra.own_zone, f"{extra.own_start:%d %H:%M}") == ("Asia/Bishkek", "07 02:00")


def test_times_and_gaps_read_in_words() -> None:
    tz = roster.zone("Europe/London")
    start = dt.datetime(2027, 3, 30, 2, tzinfo=tz)
    assert roster_page.gap_words(start, start.replace(hour=6)) == f"Tue 30 Mar, 02:00{DASH}06:00"
    midnight = dt.datetime(2027, 3, 31, tzinfo=tz)
    assert roster_page.gap_words(start, midnight) == f"Tue 30 Mar, 02:00{DASH}24:00"
    later = dt.datetime(2027, 4, 1, 6, tzinfo=tz)
    assert roster_page.gap_words(start, later) == f"Tue 30 Mar 02:00 {DASH} Thu 1 Apr 06:00"
    night = dt.datetime(2027, 3, 30, 22, tzinfo=tz)
    assert roster_page.span_words(night, night + dt.timedelta(hours=8)) == f"22:00{DASH}06:00"
    assert roster_page.parse_week("2027-03-31", "UTC") == dt.date(2027, 3, 29)
    assert roster_page.parse_week("31/03/2027", "UTC") is None


# The page ----------------------------------------------------------------------------------


@pytest.fixture
def admin(db: Session) -> User:
    return create_user(db, role=Role.admin, display_name="Ada Admin")


@pytest.fixture
def staff(db: Session) -> User:
    return create_user(db, role=Role.staff, display_name="Sam Staff")


def audited(db: Session, action: str, target: str | None = None) -> list[AuditEvent]:
    db.expire_all()
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    if target is not None:
        stmt = stmt.where(AuditEvent.target == target)
    return list(db.scalars(stmt))


def post(web: TestClient, url: str, **data: str) -> Any:
    return web.post(url, data={**csrf(web, PATH), **data}, follow_redirects=False)


def shifts_of(db: Session, user: User) -> list[RosterShift]:
    db.expire_all()
    return list(db.scalars(select(RosterShift).where(RosterShift.user_id == user.id)))


def overrides_of(db: Session, user: User) -> list[RosterOverride]:
    db.expire_all()
    return list(db.scalars(select(RosterOverride).where(RosterOverride.user_id == user.id)))


def shift_form(user: User, **changes: str) -> dict[str, str]:
    base = {
        "user_id": str(user.id),
        "weekday": "1",
        "starts_local": "09:00",
        "ends_local": "17:00",
        "timezone": "Asia/Bishkek",
        "level": "lead",
        "note": "",
        "week": "2027-03-29",
    }
    return {**base, **changes}


def override_form(user: User, **changes: str) -> dict[str, str]:
    base = {
        "user_id": str(user.id),
        "kind": "extra",
        "starts_at": "2027-03-30T08:00",
        "ends_at": "2027-03-30T12:00",
        "level": "member",
        "note": "",
        "week": "2027-03-29",
    }
    return {**base, **changes}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def _section(html: str, element_id: str) -> str:
    """The text of the element with this id (up to its own closing tag, by its name)."""
    found = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert found is not None, element_id
    return _text(found.group(2)).strip()


# Who may open it ---------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in_and_comes_back(web: TestClient, db: Session) -> None:
    resp = web.get(PATH + "?week=2027-03-29", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/staff/sign-in?next=/admin/roster%3Fweek%3D2027-03-29"


@pytest.mark.parametrize("role", [Role.staff, Role.expert])
def test_staff_and_experts_get_403_for_the_page_and_every_action(
    web: TestClient, db: Session, role: Role, staff: User
) -> None:
    existing = shift(db, staff, 0, "09:00", "17:00")
    extra = override(
        db, staff, OverrideKind.extra, _utc("2027-03-30T08:00"), _utc("2027-03-30T09:00")
    )
    signed_in(web, create_user(db, role=role))
    assert web.get(PATH).status_code == 403
    assert web.get(f"{PATH}/shifts/{existing.id}").status_code == 403
    token = {"csrf_token": csrf(web, "/my-account")["csrf_token"]}
    for url, data in (
        (f"{PATH}/shifts", shift_form(staff)),
        (f"{PATH}/shifts/{existing.id}", shift_form(staff, starts_local="10:00")),
        (f"{PATH}/shifts/{existing.id}/delete", {}),
        (f"{PATH}/overrides", override_form(staff)),
        (f"{PATH}/overrides/{extra.id}/delete", {}),
    ):
        assert web.post(url, data={**token, **data}).status_code == 403, url
    assert [(s.id, s.starts_local) for s in shifts_of(db, staff)] == [(existing.id, dt.time(9))]
    assert [o.id for o in overrides_of(db, staff)] == [extra.id]


def test_the_navigation_offers_the_roster_to_admins_only(
    web: TestClient, db: Session, admin: User, staff: User
) -> None:
    signed_in(web, staff)
    assert 'id="nav-roster"' not in web.get("/staff/queue").text
    web.cookies.clear()
    signed_in(web, admin)
    assert 'aria-current="page">Roster<' in web.get(PATH).text


# The week grid on the page -----------------------------------------------------------------


def test_the_grid_shows_shifts_in_the_viewers_zone_with_their_own_zone_and_level(
    web: TestClient, db: Session, admin: User, staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    shift(db, staff, 5, "14:00", "22:00", tz="Asia/Bishkek", level=DutyLevel.lead)
    shift(db, staff, 6, "14:00", "22:00", tz="Asia/Bishkek")
    monkeypatch.setattr(roster_page, "viewer_zone", lambda _user: "Europe/London")
    signed_in(web, admin)
    html = web.get(PATH + "?week=2027-03-24").text  # a Wednesday: its week from Monday 22nd
    assert "Week of Mon 22 Mar" in _text(html) and "Sun 28 Mar" in _text(html)
    assert "Europe/London" in _section(html, "zone-note")
    row = _section(html, f"person-{staff.id}")
    assert f"08:00{DASH}16:00 Duty lead (Asia/Bishkek 14:00{DASH}22:00)" in row
    assert f"09:00{DASH}17:00 Member (Asia/Bishkek 14:00{DASH}22:00)" in row
    assert 'href="/admin/roster?week=2027-03-15"' in html
    assert 'href="/admin/roster?week=2027-03-29"' in html


def test_a_night_shift_shows_on_both_days_of_the_viewer(
    web: TestClient, db: Session, admin: User, staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    shift(db, staff, 0, "20:00", "23:00", tz="Europe/London")
    monkeypatch.setattr(roster_page, "viewer_zone", lambda _user: "Asia/Bishkek")
    signed_in(web, admin)
    html = web.get(PATH + "?week=2027-01-04").text
    cells = re.findall(r'<td data-label="([^"]+)">(.*?)</td>', html, re.S)
    filled = [(day, _text(body).strip()) for day, body in cells if "roster-entry" in body]
    assert filled == [
        ("Tue 5 Jan", f"02:00{DASH}05:00 Member (Europe/London 20:00{DASH}23:00)"),
    ]


def test_a_week_that_is_not_a_date_is_refused_naming_the_field(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    resp = web.get(PATH + "?week=next-tuesday")
    assert resp.status_code == 400
    assert "Enter a date" in field_error(resp.text, "week")
    assert 'id="error-summary"' in resp.text


# Weekly shifts -----------------------------------------------------------------------------


def test_an_admin_adds_a_shift_and_sees_it_in_the_grid_audited(
    web: TestClient, db: Session, admin: User, staff: User
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/shifts", **shift_form(staff, note="front desk"))
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{PATH}?week=2027-03-29&done=shift_added"
    (row,) = shifts_of(db, staff)
    assert (row.weekday, row.starts_local, row.ends_local) == (1, dt.time(9), dt.time(17))
    assert (row.timezone, row.level, row.note) == ("Asia/Bishkek", DutyLevel.lead, "front desk")
    assert len(audited(db, f"POST {PATH}/shifts")) == 1
    html = web.get(resp.headers["location"]).text
    assert "The shift is added." in html
    assert f"03:00{DASH}11:00 Duty lead (Asia/Bishkek 09:00{DASH}17:00)" in _section(
        html, f"person-{staff.id}"
    )


def test_an_end_before_the_start_is_a_night_shift_into_the_next_day(
    web: TestClient, db: Session, admin: User, staff: User
) -> None:
    signed_in(web, admin)
    form = shift_form(staff, starts_local="22:00", ends_local="06:00", timezone="UTC")
    assert post(web, f"{PATH}/shifts", **form).status_code == 303
    html = web.get(PATH + "?week=2027-03-29").text
    row = _section(html, f"person-{staff.id}")
    assert f"22:00{DASH}24:00 Member, continues next day" not in row  # the level was lead
    assert f"22:00{DASH}24:00 Duty lead, continues next day" in row
    assert f"00:00{DASH}06:00 Duty lead, from the day before" in row


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "time zone name"),
        ({"user_id": ""}, "user_id", "Choose a person"),
        ({"starts_local": "25:00"}, "starts_local", "start time"),
        ({"ends_local": ""}, "ends_local", "end time"),
        ({"weekday": "7"}, "weekday", "weekday"),
        ({"level": "boss"}, "level", "member, duty lead or supervisor"),
        ({"note": "x" * 201}, "note", "200 characters"),
    ],
)
def test_a_shift_with_a_mistake_is_refused_by_the_field_and_nothing_is_added(
    web: TestClient,
    db: Session,
    admin: User,
    staff: User,
    changes: dict[str, str],
    field: str,
    message: str,
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/shifts", **shift_form(staff, **changes))
    assert resp.status_code == 422
    assert message in field_error(resp.text, f"shift-{field}")
    assert f'href="#shift-{field}"' in resp.text  # the summary leads to the field
    assert shifts_of(db, staff) == []
    # The answers stay in the form.
    assert 'value="Asia/Bishkek"' in resp.text or field == "timezone"


def test_a_shift_for_a_deactivated_account_is_refused_by_the_service(
    web: TestClient, db: Session, admin: User, staff: User
) -> None:
    staff.is_active = False
    db.flush()
    signed_in(web, admin)
    resp = post(web, f"{PATH}/shifts", **shift_form(staff))
    assert resp.status_code == 422
    assert "deactivated" in field_error(resp.text, "shift-user_id")
    assert shifts_of(db, staff) == []


def test_a_form_without_its_csrf_token_changes_nothing(
    web: TestClient, db: Session, admin: User, staff: User
) -> None:
    existing = shift(db, staff, 0, "09:00", "17:00")
    extra = override(
        db, staff, OverrideKind.extra, _utc("2027-03-30T08:00"), _utc("2027-03-30T09:00")
    )
    signed_in(web, admin)
    for url, data in (
        (f"{PATH}/shifts", shift_form(staff)),
        (f"{PATH}/shifts/{existing.id}", shift_form(staff, starts_local="10:00")),
        (f"{PATH}/shifts/{existing.id}/delete", {}),
        (f"{PATH}/overrides", override_form(staff)),
        (f"{PATH}/overrides/{extra.id}/delete", {}),
    ):
        assert web.post(url, data=data).status_code == 403, url
        assert web.post(url, data={**data, "csrf_token": "forged"}).status_code == 403, url
    assert [(s.id, s.starts_local) for s in shifts_of(db, staff)] == [(existing.id, dt.time(9))]
    assert [o.id for o in overrides_of(db, staff)] == [extra.id]


def test_an_admin_changes_a_shift_from_its_page_audited(
    web: TestClient, db: Session, admin: User, staff: User
) -> None:
    existing = shift(db, staff, 0, "09:00", "17:00", tz="Europe/London")
    signed_in(web, admin)
    page = web.get(f"{PATH}/shifts/{existing.id}?week=2027-03-29").text
    assert 'value="Europe/London"' in page and "Sam Staff" in page
    form = shift_form(staff, weekday="2", starts_local="10:00", level="supervisor", note="cover")
    resp = post(web, f"{PATH}/shifts/{existing.id}", **form)
    assert resp.status_code == 303
    assert resp.headers["location"] == (
        f"{PATH}?week=2027-03-29&done=shift_changed#person-{staff.id}"
    )
    db.refresh(existing)
    assert (existing.weekday, existing.starts_local, existing.timezone) == (
        2,
        dt.time(10),
        "Asia/Bishkek",
    )
    assert (existing.level, existing.note) == (DutyLevel.supervisor, "cover")
    assert len(audited(db, f"POST {PATH}/shifts/{{shift_id}}", f"shift_id={existing.id}")) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"starts_local": "9am"}, "starts_local"),
    ],
)
def test_a_change_with_a_mistake_is_refused_and_the_shift_stays(
    web: TestClient, db: Session, admin: User, staff: User, changes: dict[str, str], field: str
) -> None:
    existing = shift(db, staff, 0, "09:00", "17:00", tz="Europe/London")
    signed_in(web, admin)
    resp = post(web, f"{PATH}/shifts/{existing.id}", **shift_form(staff, weekday="3", **changes))
    assert resp.status_code == 422
    assert field_error(resp.text, f"shift-{field}")
    db.expire_all()
    db.refresh(existing)
    assert (existing.weekday, existing.timezone, existing.starts_local) == (
        0,
        "Europe/London",
        dt.time(9),
    )


def test_an_admin_deletes_a_shift_audited(
    web: TestClient, db: Session, admin: User, staff: User
) -> None:
    existing = shift(db, staff, 0, "09:00", "17:00")
    signed_in(web, admin)
    target = f"shift_id={existing.id}"
    resp = post(web, f"{PATH}/shifts/{existing.id}/delete", week="2027-03-29")
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{PATH}?week=2027-03-29&done=shift_deleted"
    assert shifts_of(db, staff) == []
    assert len(audited(db, f"POST {PATH}/shifts/{{shift_id}}/delete", target)) == 1


def test_a_shift_or_change_that_does_not_exist_is_404(
    web: TestClient, db: Session, admin: User, staff: User
) -> None:
    signed_in(web, admin)
    missing = 987654321
    assert web.get(f"{PATH}/shifts/{missing}").status_code == 404
    assert post(web, f"{PATH}/shifts/{missing}", **shift_form(staff)).status_code == 404
    assert post(web, f"{PATH}/shifts/{missing}/delete").status_code == 404
    assert post(web, f"{PATH}/overrides/{missing}/delete").status_code == 404
    assert shifts_of(db, staff) == []


# One-off changes ---------------------------------------------------------------------------


def test_a_one_off_change_is_entered_in_the_viewers_zone_and_stored_in_utc(
    web: TestClient, db: Session, admin: User, staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(roster_page, "viewer_zone", lambda _user: "Asia/Bishkek")
    signed_in(web, admin)
    form = override_form(staff, starts_at="2027-04-05T23:00", ends_at="2027-04-06T03:00")
    form.update(level="lead", note="cover")
    resp = post(web, f"{PATH}/overrides", **form)
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{PATH}?week=2027-04-05&done=override_added"
    (row,) = overrides_of(db, staff)
    assert (row.kind, row.level, row.note) == (OverrideKind.extra, DutyLevel.lead, "cover")
    assert (row.starts_at, row.ends_at) == (_utc("2027-04-05T17:00"), _utc("2027-04-05T21:00"))
    assert len(audited(db, f"POST {PATH}/overrides")) == 1
    html = web.get(resp.headers["location"]).text
    assert "The one-off change is added." in html
    row_text = _section(html, f"person-{staff.id}")
    assert f"23:00{DASH}24:00 Extra duty, Duty lead, continues next day" in row_text
    assert f"00:00{DASH}03:00 Extra duty, Duty lead, from the day before" in row_text
    assert f"Mon 5 Apr 23:00 {DASH} Tue 6 Apr 03:00" in _section(html, f"override-{row.id}")


def test_time_off_marks_the_shift_it_cancels(
    web: TestClient, db: Session, admin: User, staff: User
) -> None:
    shift(db, staff, 1, "09:00", "17:00")
    signed_in(web, admin)
    form = override_form(
        staff, kind="cancel", starts_at="2027-03-30T00:00", ends_at="2027-03-31T00:00"
    )
    assert post(web, f"{PATH}/overrides", **form).status_code == 303
    row = _section(web.get(PATH + "?week=2027-03-29").text, f"person-{staff.id}")
    assert f"00:00{DASH}24:00 Off" in row
    assert f"09:00{DASH}17:00 Member, cancelled (off)" in row


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"ends_at": "2027-03-30T07:00"}, "ends_at", "The end must be after the start."),
        ({"ends_at": "2027-03-30T08:00"}, "ends_at", "The end must be after the start."),
        ({"ends_at": "2027-05-30T08:00"}, "ends_at", "at most 31 days"),
        ({"starts_at": ""}, "starts_at", "date and time"),
        ({"starts_at": "2027-03-30T08:00+02:00"}, "starts_at", "date and time"),
        ({"kind": "holiday"}, "kind", "extra duty or off"),
        ({"user_id": str(uuid.UUID(int=5))}, "user_id", "Choose a person"),
        ({"level": "boss"}, "level", "member, duty lead or supervisor"),
    ],
)
def test_a_one_off_change_with_a_mistake_is_refused_by_the_field(
    web: TestClient,
    db: Session,
    admin: User,
    staff: User,
    changes: dict[str, str],
    field: str,
    message: str,
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/overrides", **override_form(staff, **changes))
    assert resp.status_code == 422
    assert message in field_error(resp.text, f"override-{field}")
    assert f'href="#override-{field}"' in resp.text
    db.expire_all()
    assert db.scalars(select(RosterOverride)).all() == []


def test_an_admin_deletes_a_one_off_change_audited(
    web: TestClient, db: Session, admin: User, staff: User
) -> None:
    extra = override(
        db, staff, OverrideKind.extra, _utc("2027-03-30T08:00"), _utc("2027-03-30T09:00")
    )
    signed_in(web, admin)
    html = web.get(PATH + "?week=2027-03-29").text
    assert f'action="/admin/roster/overrides/{extra.id}/delete"' in html
    target = f"override_id={extra.id}"
    resp = post(web, f"{PATH}/overrides/{extra.id}/delete", week="2027-03-29")
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{PATH}?week=2027-03-29&done=override_deleted"
    assert overrides_of(db, staff) == []
    assert len(audited(db, f"POST {PATH}/overrides/{{override_id}}/delete", target)) == 1


# Gaps --------------------------------------------------------------------------------------


def _cover_every_region(db: Session) -> User:
    codes = list(db.scalars(select(Region.code)))
    expert = create_expert(db, regions=codes, name="Everywhere Expert")
    around_the_clock(db, expert)
    return expert


def test_the_gaps_of_the_next_7_days_read_in_the_viewers_zone(
    web: TestClient,
    db: Session,
    admin: User,
    staff: User,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock.at(_utc("2027-03-29T00:00"))  # a Monday
    _cover_every_region(db)
    for day in (0, 2, 3, 4, 5, 6):
        shift(db, staff, day, "00:00", "00:00")
    shift(db, staff, 1, "00:00", "02:00")
    shift(db, staff, 1, "06:00", "00:00")
    signed_in(web, admin)
    gaps = _section(web.get(PATH).text, "gap-list")
    assert gaps.strip() == f"Tue 30 Mar, 02:00{DASH}06:00: nobody on duty"
    monkeypatch.setattr(roster_page, "viewer_zone", lambda _user: "America/New_York")
    gaps = _section(web.get(PATH).text, "gap-list")
    assert gaps.strip() == f"Mon 29 Mar 22:00 {DASH} Tue 30 Mar 02:00: nobody on duty"


def test_a_region_without_an_expert_on_duty_is_named(
    web: TestClient, db: Session, admin: User, staff: User, clock: Clock
) -> None:
    clock.at(_utc("2027-03-29T00:00"))
    codes = [c for c in db.scalars(select(Region.code)) if c != "east_africa"]
    around_the_clock(db, create_expert(db, regions=codes))
    around_the_clock(db, staff)
    signed_in(web, admin)
    gaps = _section(web.get(PATH).text, "gap-list")
    assert (
        gaps.strip()
        == f"Mon 29 Mar 00:00 {DASH} Mon 5 Apr 00:00: no expert for East Africa on duty"
    )


def test_no_gaps_is_stated_and_an_empty_roster_is_explained(
    web: TestClient, db: Session, admin: User, staff: User
) -> None:
    signed_in(web, admin)
    html = web.get(PATH).text
    assert 'id="roster-empty"' in html and 'id="gap-list"' not in html
    assert 'id="no-shifts"' in html
    _cover_every_region(db)
    around_the_clock(db, staff)
    html = web.get(PATH).text
    assert 'id="no-gaps"' in html and 'id="gap-list"' not in html
    assert 'id="roster-empty"' not in html
