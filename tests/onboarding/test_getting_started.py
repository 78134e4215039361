"""The first-run checklist: each item ticks itself from the database (and not one step before),
an admin's sign-in lands on it while something is unticked, the navigation offers it until all
is done, and staff and experts cannot open it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.core.settings import get_settings
from app.core.time import now
from app.models import Region, Role, User
from app.models.roster import RosterShift
from app.models.scheduling import ExpertAvailability
from app.onboarding import service as onboarding
from app.sendouts import service as sendouts
from app.web import getting_started
from tests.conftest import Clock
from tests.factories import (
    around_the_clock,
    create_expert,
    create_user,
    expert_with_hours,
    hidden_fields,
    profile,
    shift,
    sign_in,
    signed_in,
    tiny_pdf,
)

REGION = "middle_east"
OTHER_REGION = "eastern_europe_post_soviet"
# A Monday: the 7 days ahead hold every weekday once.
MONDAY = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def meeting_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings of a test changed through the environment, restored afterwards."""
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def with_meeting_link(db: Session, expert: User) -> User:
    profile(db, expert).personal_meeting_link = "https://meet.example.org/dr-expert"
    db.flush()
    return expert


def item(html: str, key: str) -> str:
    """The checklist item's own markup."""
    start = html.index(f'id="item-{key}"')
    return html[start : html.index("</li>", start)]


def done(db: Session, admin: User) -> dict[str, bool]:
    return onboarding.checklist(db, admin).done


def sample(db: Session, admin: User, *, region: str | None = None) -> None:
    sendouts.upload_sample_report(
        db,
        data=tiny_pdf(),
        filename="sample.pdf",
        uploaded_by=admin.id,
        country_code=None,
        region_code=region,
    )
    db.flush()


def all_regions(db: Session) -> tuple[str, ...]:
    return tuple(db.scalars(select(Region.code)).all())


def everything_ticked(db: Session, admin: User) -> str:
    """Set up the whole checklist; returns the admin's TOTP secret (second factor on)."""
    expert = expert_with_hours(db, countries=(), regions=all_regions(db))
    for code in all_regions(db):
        sample(db, admin, region=code)
    around_the_clock(db, create_user(db, role=Role.staff))
    around_the_clock(db, expert)
    secret, _ = accounts.totp_setup(db, admin)
    admin.totp_enabled = True
    db.flush()
    return secret


# The items ---------------------------------------------------------------------------------


def test_a_new_organisation_has_nothing_ticked(db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    assert done(db, admin) == dict.fromkeys(onboarding.ITEMS, False)
    assert not onboarding.checklist(db, admin).complete


def test_experts_ticks_with_one_active_expert_and_not_for_an_inactive_one(db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    expert = with_meeting_link(db, create_expert(db))
    profile(db, expert).is_active = False
    db.flush()
    assert not done(db, admin)["experts"]
    profile(db, expert).is_active = True
    expert.is_active = False  # the account switched off counts as inactive too
    db.flush()
    assert not done(db, admin)["experts"]
    expert.is_active = True
    db.flush()
    assert done(db, admin)["experts"]


def test_experts_stays_unticked_while_an_active_expert_cannot_hold_a_meeting(db: Session) -> None:
    """The suite's default is the embedded ``link`` provider without a meeting link template:
    an expert with a Zoom user but no personal meeting link gets bookings without a meeting."""
    admin = create_user(db, role=Role.admin)
    with_meeting_link(db, create_expert(db))
    assert done(db, admin)["experts"]
    linkless = create_expert(db)
    assert profile(db, linkless).zoom_user  # a Zoom user alone does not make a link
    result = onboarding.checklist(db, admin)
    assert not result.done["experts"] and result.experts_without_meeting == 1
    # An inactive expert without a link is never booked: it does not hold the item back.
    profile(db, linkless).is_active = False
    db.flush()
    assert done(db, admin)["experts"]
    profile(db, linkless).is_active = True
    db.flush()
    with_meeting_link(db, linkless)
    assert done(db, admin)["experts"]
    assert onboarding.checklist(db, admin).experts_without_meeting == 0


def test_a_single_expert_without_a_meeting_link_is_no_expert_yet(db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    expert = create_expert(db)
    assert not done(db, admin)["experts"]
    profile(db, expert).personal_meeting_link = "   "  # blank is no link
    db.flush()
    assert not done(db, admin)["experts"]
    with_meeting_link(db, expert)
    assert done(db, admin)["experts"]


def test_experts_without_a_link_tick_with_a_link_template_or_zoom(
    db: Session, meeting_settings: pytest.MonkeyPatch
) -> None:
    """The rule is the booking's: a template gives every expert a room; Zoom hosts on the
    expert's Zoom user or e-mail address."""
    admin = create_user(db, role=Role.admin)
    create_expert(db)
    assert not done(db, admin)["experts"]
    meeting_settings.setenv("INTAKE_MEETING_LINK_TEMPLATE", "https://meet.example.org/{room}")
    get_settings.cache_clear()
    assert done(db, admin)["experts"]
    meeting_settings.delenv("INTAKE_MEETING_LINK_TEMPLATE")
    for name in ("ACCOUNT_ID", "CLIENT_ID", "CLIENT_SECRET"):
        meeting_settings.setenv(f"INTAKE_ZOOM_{name}", "x")
    get_settings.cache_clear()
    assert get_settings().resolved_meeting_provider == "zoom"
    assert done(db, admin)["experts"]


def test_hours_stays_unticked_while_one_active_expert_has_none(db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    expert_with_hours(db)
    assert done(db, admin)["hours"]
    without = create_expert(db)
    result = onboarding.checklist(db, admin)
    assert not result.done["hours"] and result.experts_without_hours == 1
    # Stored availability with no weekly hours is no hours either.
    db.add(ExpertAvailability(expert_id=without.id, timezone="UTC", weekly=[]))
    db.flush()
    assert not done(db, admin)["hours"]
    # An inactive expert without hours does not hold it back.
    profile(db, without).is_active = False
    db.flush()
    assert done(db, admin)["hours"]


def test_hours_is_not_ticked_without_any_expert(db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    assert not done(db, admin)["hours"]


def test_samples_need_one_tagged_with_each_region_that_has_an_expert(db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    create_expert(db, regions=(REGION,))
    sample(db, admin)  # general
    sample(db, admin, region=OTHER_REGION)
    result = onboarding.checklist(db, admin)
    assert not result.done["samples"]
    assert result.regions_without_sample == (REGION,)
    sample(db, admin, region=REGION)
    assert done(db, admin)["samples"]


def test_samples_without_regional_experts_need_at_least_one(db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    create_expert(db, countries=("KG",))
    assert not done(db, admin)["samples"]
    sample(db, admin)
    assert done(db, admin)["samples"]


def test_roster_ticks_only_without_a_gap_in_the_next_seven_days(db: Session, clock: Clock) -> None:
    clock.at(MONDAY)
    admin = create_user(db, role=Role.admin)
    staff = create_user(db, role=Role.staff)
    assert not done(db, admin)["roster"]  # an empty roster is not a filled one
    # Every region is covered by an expert on duty around the clock.
    around_the_clock(db, create_expert(db, regions=all_regions(db)))
    # The staff every day around the clock but Sunday, which stops at 23:00: a one-hour gap.
    for day in range(6):
        shift(db, staff, day, "00:00", "00:00")
    last = shift(db, staff, 6, "00:00", "23:00")
    result = onboarding.checklist(db, admin)
    assert not result.done["roster"] and result.roster_uncovered == ("staff",)
    last.ends_local = dt.time(0, 0)
    db.flush()
    assert done(db, admin)["roster"]
    # A region whose only expert leaves the roster is a gap too.
    lonely = create_expert(db, regions=(REGION,))
    db.get(Region, REGION).lead_expert_id = None  # type: ignore[union-attr]
    db.flush()
    assert done(db, admin)["roster"]  # still covered by the first expert
    db.execute(delete(RosterShift).where(RosterShift.user_id != staff.id))
    around_the_clock(db, lonely)
    result = onboarding.checklist(db, admin)
    assert not result.done["roster"] and REGION not in result.roster_uncovered
    assert OTHER_REGION in result.roster_uncovered


def test_second_factor_ticks_for_the_admin_who_has_it(db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    other = create_user(db, role=Role.admin)
    accounts.totp_setup(db, other)
    other.totp_enabled = True
    db.flush()
    assert not done(db, admin)["second_factor"]
    assert done(db, other)["second_factor"]


def test_everything_set_up_completes_the_checklist(db: Session, clock: Clock) -> None:
    clock.at(MONDAY)
    admin = create_user(db, role=Role.admin)
    everything_ticked(db, admin)
    assert onboarding.checklist(db, admin).complete


# The page and the sign-in ------------------------------------------------------------------


def test_an_admins_first_sign_in_lands_on_the_checklist(web: TestClient, db: Session) -> None:
    admin = create_user(db, role=Role.admin)
    with_meeting_link(db, create_expert(db))  # an expert without hours
    resp = sign_in(web, admin)
    assert resp.status_code == 303
    assert resp.headers["location"] == getting_started.PATH
    page = web.get(getting_started.PATH)
    assert page.status_code == 200
    assert 'id="nav-getting-started"' in page.text
    items = dict(
        re.findall(
            r'id="item-(\w+)">\s*<h2><span class="checklist-state" '
            r'data-state="(\w+)"',
            page.text,
        )
    )
    assert items == {
        "experts": "done",
        "hours": "todo",
        "samples": "todo",
        "roster": "todo",
        "second_factor": "todo",
    }
    # A done item needs no directions; one to do says what to do on which page.
    assert "<a href" not in item(page.text, "experts")
    hours = item(page.text, "hours")
    assert f'<a href="{getting_started.HOURS_LINK}">Go to Experts</a>' in hours
    assert 'under "Weekly hours"' in hours
    assert "/api/" not in page.text.split('id="checklist"')[1]
    # The navigation offers it on the other staff pages too.
    assert 'id="nav-getting-started"' in web.get("/staff/queue").text


def test_each_item_to_do_says_what_to_press_on_the_page_its_link_opens(
    web: TestClient, db: Session
) -> None:
    """Every name the directions quote (a section, a field or a button) is on the admin page
    the item links to (the experts' and hours' on Experts and an expert's own page)."""
    admin = create_user(db, role=Role.admin)
    expert = create_expert(db)  # no meeting link, no hours
    signed_in(web, admin)
    page = web.get(getting_started.PATH).text
    targets = {
        "experts": ("/admin/experts", f"/admin/experts/{expert.id}"),
        "hours": ("/admin/experts", f"/admin/experts/{expert.id}"),
        "samples": ("/admin/sample-reports",),
        "roster": ("/admin/roster",),
    }
    for key, paths in targets.items():
        text = getting_started.ITEMS[key]
        assert text.link == paths[0]
        html = item(page, key)
        assert f'<a href="{text.link}">{text.link_text}</a>' in html
        assert text.how in html and "/api/" not in text.how
        quoted = re.findall(r'"([^"]+)"', text.how)
        assert quoted, key
        shown = "".join(web.get(path).text for path in paths)
        for name in quoted:
            assert f">{name}<" in shown, (key, name)
    assert "1 active expert has no way to hold a consultation" in item(page, "experts")
    assert 'id="experts-missing"' in page
    with_meeting_link(db, expert)
    assert 'id="experts-missing"' not in web.get(getting_started.PATH).text


def test_an_admin_with_everything_ticked_lands_on_the_queue(
    web: TestClient, db: Session, clock: Clock
) -> None:
    clock.at(MONDAY)
    admin = create_user(db, role=Role.admin)
    secret = everything_ticked(db, admin)
    first = sign_in(web, admin)
    hidden = hidden_fields(first.text)
    resp = web.post(
        "/staff/sign-in",
        data={**hidden, "totp_code": pyotp.TOTP(secret).at(now())},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/staff/queue"
    assert 'id="nav-getting-started"' not in web.get("/staff/queue").text
    page = web.get(getting_started.PATH)
    assert page.status_code == 200 and 'id="setup-complete"' in page.text


def test_an_admin_asked_for_a_page_goes_there_not_to_the_checklist(
    web: TestClient, db: Session
) -> None:
    admin = create_user(db, role=Role.admin)
    resp = sign_in(web, admin, next="/staff/reports")
    assert resp.headers["location"] == "/staff/reports"


def test_staff_land_on_the_queue_and_may_not_open_the_checklist(
    web: TestClient, db: Session
) -> None:
    staff = create_user(db, role=Role.staff)
    resp = sign_in(web, staff)
    assert resp.headers["location"] == "/staff/queue"
    assert 'id="nav-getting-started"' not in web.get("/staff/queue").text
    assert web.get(getting_started.PATH).status_code == 403


def test_experts_land_on_their_assignments_and_may_not_open_the_checklist(
    web: TestClient, db: Session
) -> None:
    expert = create_expert(db)
    resp = sign_in(web, expert)
    assert resp.headers["location"] == "/expert/assignments"
    assert web.get(getting_started.PATH).status_code == 403


def test_the_checklist_needs_a_sign_in(web: TestClient) -> None:
    resp = web.get(getting_started.PATH, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/staff/sign-in?next=/staff/getting-started")


def test_the_checklist_page_renders_at_a_glance_for_a_signed_in_admin(
    web: TestClient, db: Session
) -> None:
    admin = create_user(db, role=Role.admin)
    signed_in(web, admin)
    page = web.get(getting_started.PATH)
    assert "<script" not in page.text.split("</head>")[1]  # works without JavaScript
    assert page.headers["content-security-policy"]
