"""The admin console's Experts pages: the list with load at a glance, adding an expert (an
existing expert account, or someone invited in the same step), and one expert's profile, state,
region lead, CV, weekly hours, consultation settings, date overrides, unavailable periods,
assignments and consultations. Each action goes through the API's service and is audited by
the middleware as the API's are; a refusal names its field and changes nothing; a form without
its CSRF token changes nothing; staff and experts get 403; an unknown expert is 404."""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.core.settings import get_settings
from app.core.time import now
from app.experts import service as experts
from app.meetings.errors import MeetingConfigError
from app.meetings.factory import build_meeting_provider
from app.meetings.providers import MeetingSpec
from app.models import (
    AccountToken,
    AssignmentStatus,
    AuditEvent,
    AvailabilityOverride,
    Document,
    ExpertAvailability,
    ExpertProfile,
    Region,
    Role,
    UnavailablePeriod,
    User,
)
from app.web import admin_experts as experts_page
from tests.factories import (
    add_absence,
    assignment,
    booked_consultation,
    create_expert,
    create_user,
    csrf,
    day_in,
    expert_with_hours,
    field_error,
    make_request,
    profile,
    signed_in,
    tiny_pdf,
)

PATH = experts_page.PATH
REGION = "eastern_europe_post_soviet"


@pytest.fixture
def admin(db: Session) -> User:
    return create_user(db, role=Role.admin, display_name="Ada Admin")


@pytest.fixture
def expert(db: Session) -> User:
    return create_expert(db, countries=["KG"], regions=[REGION], languages=["ru", "en"])


def post(web: TestClient, url: str, files: Any = None, **data: Any) -> Any:
    return web.post(url, data={**csrf(web, PATH), **data}, files=files, follow_redirects=False)


def page_audited(db: Session, route: str, **params: object) -> list[AuditEvent]:
    """The audit middleware's rows for a page form, as it writes them for the API's routes."""
    db.expire_all()
    target = ",".join(f"{k}={v}" for k, v in sorted(params.items())) or None
    stmt = select(AuditEvent).where(AuditEvent.action == f"POST {PATH}{route}")
    stmt = stmt.where(AuditEvent.target == target if target else AuditEvent.target.is_(None))
    return list(db.scalars(stmt))


def card(html: str, user: User) -> str:
    found = re.search(rf'<li class="expert-card[^"]*" id="expert-{user.id}".*?</li>', html, re.S)
    assert found is not None, f"no card for {user.id}"
    return found.group(0)


def stored_availability(db: Session, user: User) -> ExpertAvailability | None:
    db.expire_all()
    return db.get(ExpertAvailability, user.id)


def overrides_of(db: Session, user: User) -> dict[dt.date, list[dict[str, str]]]:
    db.expire_all()
    rows = db.scalars(select(AvailabilityOverride).where(AvailabilityOverride.expert_id == user.id))
    return {o.date: list(o.ranges) for o in rows}


# Who may open them -------------------------------------------------------------------------

ACTIONS = (
    "profile",
    "deactivate",
    "reactivate",
    "lead",
    "lead/{region}/remove",
    "cv",
    "hours",
    "settings",
    "overrides",
    "overrides/2099-01-01/remove",
    "unavailable",
    "unavailable/1/remove",
)


def test_anonymous_is_sent_to_sign_in_and_comes_back(web: TestClient, db: Session) -> None:
    resp = web.get(PATH, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/staff/sign-in?next=/admin/experts"


@pytest.mark.parametrize("role", [Role.staff, Role.expert])
def test_staff_and_experts_get_403_for_every_page_and_action(
    web: TestClient, db: Session, expert: User, role: Role
) -> None:
    signed_in(web, create_user(db, role=role))
    assert web.get(PATH).status_code == 403
    assert web.get(f"{PATH}/{expert.id}").status_code == 403
    token = {"csrf_token": csrf(web, "/my-account")["csrf_token"]}
    resp = web.post(PATH, data={**token, "user_id": "new", "display_name": "X"})
    assert resp.status_code == 403
    for action in ACTIONS:
        url = f"{PATH}/{expert.id}/{action.format(region=REGION)}"
        data = {**token, "public_name": "Hijacked", "lead_region": REGION, "day0": "09:00-10:00"}
        assert web.post(url, data=data).status_code == 403, action
    db.expire_all()
    p = profile(db, expert)
    assert p.public_name != "Hijacked" and p.is_active
    assert db.get(Region, REGION).lead_expert_id is None  # type: ignore[union-attr]
    assert stored_availability(db, expert) is None


def test_the_navigation_offers_experts_to_admins_only(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, create_user(db, role=Role.staff))
    assert 'id="nav-experts"' not in web.get("/staff/queue").text
    web.cookies.clear()
    signed_in(web, admin)
    html = web.get(PATH).text
    assert 'id="nav-experts" aria-current="page"' in html


def test_an_unknown_expert_is_not_found_on_every_route(
    web: TestClient, db: Session, admin: User
) -> None:
    staff = create_user(db, role=Role.staff)  # a user, but no expert profile
    signed_in(web, admin)
    for missing in (uuid.uuid4(), staff.id):
        assert web.get(f"{PATH}/{missing}").status_code == 404
        for action in ACTIONS:
            url = f"{PATH}/{missing}/{action.format(region=REGION)}"
            resp = post(web, url, lead_region=REGION, day0="09:00-10:00", override_date="2099-1-1")
            assert resp.status_code == 404, action
    assert db.get(Region, REGION).lead_expert_id is None  # type: ignore[union-attr]


# The list ----------------------------------------------------------------------------------


def test_the_list_shows_coverage_load_cv_and_hours_of_active_and_deactivated_experts(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    busy = expert_with_hours(db, countries=("KZ",), max_open=3)
    gone = create_expert(db, countries=["TJ"], languages=["tg"])
    experts.set_active(db, gone.id, False)
    assignment(db, busy, make_request(db), status=AssignmentStatus.accepted)
    assignment(db, busy, make_request(db), status=AssignmentStatus.offered)
    assignment(db, busy, make_request(db), status=AssignmentStatus.declined)
    experts.set_cv(db, busy.id, data=tiny_pdf(), filename="cv.pdf", by=admin)
    signed_in(web, admin)
    html = web.get(PATH).text

    mine = card(html, expert)
    assert "Eastern Europe &amp; Post-Soviet States" in mine
    assert '<dd class="expert-countries"><bdi dir="ltr">KG</bdi></dd>' in mine
    assert '<bdi dir="ltr">ru, en</bdi>' in mine
    assert '<dd class="expert-load">0 open of 10; offers pending: 0</dd>' in mine
    assert '<dd class="expert-cv">No</dd>' in mine
    assert '<dd class="expert-hours">Not set: no slots</dd>' in mine

    theirs = card(html, busy)
    assert '<dd class="expert-load">2 open of 3; offers pending: 1</dd>' in theirs
    assert '<dd class="expert-cv">Yes</dd>' in theirs
    assert '<dd class="expert-hours">Set</dd>' in theirs
    assert "deactivated" not in theirs

    assert "(deactivated)" in card(html, gone)
    assert f'href="/admin/experts/{gone.id}"' in card(html, gone)


# A way to hold the meeting ------------------------------------------------------------------

NO_MEETING = "No way to hold a consultation"


def meeting_made(db: Session, user: User) -> bool:
    """Whether the configured provider makes this expert's meeting, as a booking asks it."""
    spec = MeetingSpec(
        topic="Consultation",
        start=now(),
        duration_minutes=60,
        host=profile(db, user).zoom_user or profile(db, user).email,
        personal_meeting_url=profile(db, user).personal_meeting_link,
    )
    try:
        build_meeting_provider(get_settings()).create(spec)
    except MeetingConfigError:
        return False
    return True


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_an_expert_with_no_way_to_hold_a_meeting_is_warned_on_the_list_and_their_page(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    """The suite runs the embedded link provider without a template: a Zoom user (which
    create_expert sets) makes no meeting, a personal meeting link does."""
    linked = expert_with_hours(db)
    assert profile(db, expert).zoom_user and not meeting_made(db, expert)
    assert meeting_made(db, linked)
    signed_in(web, admin)
    html = web.get(PATH).text
    assert f'id="no-meeting-{expert.id}"' in card(html, expert)
    assert NO_MEETING in card(html, expert)
    assert NO_MEETING not in card(html, linked)
    page = web.get(f"{PATH}/{expert.id}").text
    assert 'id="no-meeting"' in page and 'personal meeting link under "Profile"' in page
    assert 'id="no-meeting"' not in web.get(f"{PATH}/{linked.id}").text

    # Saving the profile with a link ends the warning; saving it without brings it back.
    assert post(web, f"{PATH}/{expert.id}/profile", **PROFILE).status_code == 303
    assert meeting_made(db, expert)
    assert 'id="no-meeting"' not in web.get(f"{PATH}/{expert.id}").text
    assert NO_MEETING not in card(web.get(PATH).text, expert)
    unlinked = {**PROFILE, "personal_meeting_link": "", "zoom_user": "zoom@example.org"}
    assert post(web, f"{PATH}/{expert.id}/profile", **unlinked).status_code == 303
    assert not meeting_made(db, expert)
    assert 'id="no-meeting"' in web.get(f"{PATH}/{expert.id}").text


def test_no_warning_where_a_link_template_or_zoom_gives_every_expert_a_meeting(
    web: TestClient, db: Session, admin: User, expert: User, settings_env: pytest.MonkeyPatch
) -> None:
    signed_in(web, admin)
    settings_env.setenv("INTAKE_MEETING_LINK_TEMPLATE", "https://meet.example.org/{room}")
    get_settings.cache_clear()
    assert meeting_made(db, expert)
    assert 'id="no-meeting"' not in web.get(f"{PATH}/{expert.id}").text
    assert NO_MEETING not in web.get(PATH).text
    settings_env.delenv("INTAKE_MEETING_LINK_TEMPLATE")
    for name in ("ACCOUNT_ID", "CLIENT_ID", "CLIENT_SECRET"):
        settings_env.setenv(f"INTAKE_ZOOM_{name}", "x")
    get_settings.cache_clear()
    assert get_settings().resolved_meeting_provider == "zoom"
    assert 'id="no-meeting"' not in web.get(f"{PATH}/{expert.id}").text
    assert NO_MEETING not in web.get(PATH).text


def test_weekly_hours_count_as_set_only_with_a_range(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    signed_in(web, admin)
    # Only settings saved (no ranges): still no slots.
    assert post(web, f"{PATH}/{expert.id}/settings", **SETTINGS).status_code == 303
    assert "Not set: no slots" in card(web.get(PATH).text, expert)


# Adding an expert ----------------------------------------------------------------------------


def test_an_expert_account_without_a_profile_is_offered_and_added(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    bare = create_user(db, role=Role.expert, display_name="Bare Expert")
    staff = create_user(db, role=Role.staff, display_name="Sam Staff")
    signed_in(web, admin)
    html = web.get(PATH).text
    assert f'<option value="{bare.id}">' in html
    assert f'<option value="{staff.id}"' not in html  # not an expert
    assert f'<option value="{expert.id}"' not in html  # has a profile already
    resp = post(
        web,
        PATH,
        user_id=str(bare.id),
        public_name="",
        timezone="Asia/Bishkek",
        languages="ru, EN",
        countries="kg kz",
        regions=[REGION, "central_asia"] if _region(db, "central_asia") else [REGION],
        max_open_assignments="4",
    )
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == f"{PATH}/{bare.id}?done=added"
    rec = experts.get_record(db, bare.id)
    assert rec.profile.public_name == "Bare Expert"  # the account's name when left empty
    assert rec.profile.email == bare.email and rec.profile.timezone == "Asia/Bishkek"
    assert rec.profile.languages == ["ru", "en"] and rec.countries == ["KG", "KZ"]
    assert REGION in rec.regions and rec.profile.max_open_assignments == 4
    assert page_audited(db, "")[0].actor == str(admin.id)
    assert "The expert is added" in web.get(resp.headers["location"]).text


def _region(db: Session, code: str) -> bool:
    return db.get(Region, code) is not None


def test_someone_new_is_invited_as_an_expert_with_their_profile_in_one_go(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    resp = post(
        web,
        PATH,
        user_id="new",
        display_name="Nadia Nova",
        email=" Nadia@Example.org ",
        public_name="Dr Nadia Nova",
        timezone="Europe/Berlin",
        languages="de",
        countries="",
        max_open_assignments="10",
    )
    assert resp.status_code == 303, resp.text
    user = accounts.get_user_by_email(db, "nadia@example.org")
    assert user is not None and user.role == Role.expert and user.password_hash is None
    assert resp.headers["location"] == f"{PATH}/{user.id}?done=invited"
    assert db.scalars(select(AccountToken).where(AccountToken.user_id == user.id)).one()
    p = profile(db, user)
    assert (p.public_name, p.email, p.is_active) == ("Dr Nadia Nova", "nadia@example.org", True)
    [invited] = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "users.invited", AuditEvent.target == str(user.id)
        )
    ).all()
    assert invited.actor == str(admin.id)
    assert page_audited(db, "")
    page = web.get(resp.headers["location"]).text
    assert "invited, no password yet" in page


def test_add_errors_name_their_fields_and_create_nothing(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    before = db.scalar(select(func.count()).select_from(User))
    resp = post(
        web,
        PATH,
        user_id="new",
        display_name="",
        email="not an address",
        timezone="Mars/Olympus",
        languages="ru, !!",
        countries="KG, ZZ",
        max_open_assignments="-1",
    )
    assert resp.status_code == 422
    assert 'id="error-summary"' in resp.text
    assert "Enter their name" in field_error(resp.text, "display_name")
    assert "e-mail address" in field_error(resp.text, "email")
    assert "time zone" in field_error(resp.text, "timezone")
    assert "&#39;!!&#39; is not a language tag" in field_error(resp.text, "languages")
    assert "&#39;ZZ&#39; is not a country code" in field_error(resp.text, "countries")
    assert "whole number" in field_error(resp.text, "max_open_assignments")
    assert 'value="Mars/Olympus"' in resp.text  # what was typed is kept
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(User)) == before


def test_what_was_typed_is_escaped_in_the_error_messages(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    signed_in(web, admin)
    resp = post(web, PATH, user_id="new", languages="<b>x</b>", timezone="UTC")
    assert resp.status_code == 422
    assert "<b>x</b>" not in resp.text
    assert "&#39;&lt;b&gt;x&lt;/b&gt;&#39; is not a language tag" in resp.text
    resp = post(web, f"{PATH}/{expert.id}/hours", day0="<i>nine</i>")
    assert resp.status_code == 422
    assert "<i>nine</i>" not in resp.text
    assert "&lt;i&gt;nine&lt;/i&gt;" in field_error(resp.text, "day0")


def test_an_invite_whose_profile_is_refused_leaves_no_account_behind(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    resp = post(
        web,
        PATH,
        user_id="new",
        display_name="Olga",
        email="olga@example.org",
        timezone="UTC",
        regions=["atlantis"],
        max_open_assignments="5",
    )
    assert resp.status_code == 422
    assert "Choose regions from the list" in field_error(resp.text, "regions")
    db.expire_all()
    assert accounts.get_user_by_email(db, "olga@example.org") is None
    assert not db.scalars(select(AuditEvent).where(AuditEvent.action == "users.invited")).all()


def test_an_invite_with_a_taken_address_or_a_non_candidate_account_is_refused(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    staff = create_user(db, role=Role.staff)
    signed_in(web, admin)
    taken = post(
        web,
        PATH,
        user_id="new",
        display_name="Twin",
        email=staff.email,
        timezone="UTC",
        max_open_assignments="3",
    )
    assert taken.status_code == 422
    assert "already" in field_error(taken.text, "email")
    for who in (str(staff.id), str(expert.id), "not-a-uuid"):
        resp = post(web, PATH, user_id=who, timezone="UTC", max_open_assignments="1")
        assert resp.status_code == 422
        assert "without a profile" in field_error(resp.text, "user_id")
    db.expire_all()
    assert db.get(ExpertProfile, staff.id) is None


# One expert: what it shows -----------------------------------------------------------------


def test_the_page_shows_assignments_and_consultations_in_the_viewers_zone(
    web: TestClient, db: Session, admin: User, expert: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(experts_page, "viewer_zone", lambda _user: "Asia/Bishkek")
    offered_req = make_request(db)
    accepted_req = make_request(db)
    offered = assignment(db, expert, offered_req)
    accepted = assignment(db, expert, accepted_req, status=AssignmentStatus.accepted)
    declined = assignment(db, expert, make_request(db), status=AssignmentStatus.declined)
    c = booked_consultation(db, accepted_req, expert, hours=30)
    signed_in(web, admin)
    html = web.get(f"{PATH}/{expert.id}").text
    bishkek = zoneinfo.ZoneInfo("Asia/Bishkek")

    def shown(value: dt.datetime) -> str:
        return value.astimezone(bishkek).strftime("%a %d %b %Y %H:%M")

    row = re.search(rf'id="assignment-{offered.id}".*?</li>', html, re.S)
    assert row is not None
    assert f'href="/staff/cases/{offered_req.reference}"' in row.group(0)
    assert "Offered, waiting for an answer" in row.group(0)
    assert f'{shown(offered.offered_at)}</bdi></time> <bdi dir="ltr">Asia/Bishkek' in row.group(0)
    row = re.search(rf'id="assignment-{accepted.id}".*?</li>', html, re.S)
    assert row is not None and "Accepted" in row.group(0)
    assert accepted.responded_at is not None and shown(accepted.responded_at) in row.group(0)
    assert f'id="assignment-{declined.id}"' not in html
    assert shown(c.start_at) in html
    assert '<dd id="expert-load">2 open of 10; offers pending: 1</dd>' in html


def test_times_are_shown_in_utc_with_its_name_by_default(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    period = add_absence(db, expert, starts=dt.datetime(2099, 5, 1, 6, 0, tzinfo=dt.UTC))
    signed_in(web, admin)
    html = web.get(f"{PATH}/{expert.id}").text
    row = re.search(rf'id="absence-{period.id}".*?</li>', html, re.S)
    assert row is not None
    assert 'Fri 01 May 2099 06:00</bdi></time> <bdi dir="ltr">UTC</bdi>' in row.group(0)


# Profile and state -----------------------------------------------------------------------------

PROFILE = {
    "public_name": "Dr Renamed",
    "email": "renamed@example.org",
    "phone": "+44 20 7946 0001",
    "timezone": "Asia/Almaty",
    "languages": "kk, ru",
    "countries": "KZ, KG",
    "regions": [REGION],
    "topics": ["corruption"],
    "max_open_assignments": "7",
    "zoom_user": "",
    "personal_meeting_link": "https://meet.example.org/renamed",
}


def test_the_profile_is_saved_through_the_service_and_audited(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{expert.id}/profile", **PROFILE)
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == f"{PATH}/{expert.id}?done=profile#profile"
    rec = experts.get_record(db, expert.id)
    p = rec.profile
    assert (p.public_name, p.email, p.phone) == (
        "Dr Renamed",
        "renamed@example.org",
        "+442079460001",
    )
    assert (p.timezone, p.languages, p.topics) == ("Asia/Almaty", ["kk", "ru"], ["corruption"])
    assert rec.countries == ["KG", "KZ"] and rec.regions == [REGION]
    assert p.max_open_assignments == 7 and p.zoom_user is None
    assert p.personal_meeting_link == "https://meet.example.org/renamed"
    [row] = page_audited(db, "/{expert_id}/profile", expert_id=expert.id)
    assert (row.actor, row.outcome) == (str(admin.id), "ok")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("public_name", "", "Enter the name requesters see"),
        ("email", "nobody", "e-mail address"),
        ("phone", "12", "country code"),
        ("timezone", "Nowhere/Town", "time zone"),
        ("max_open_assignments", "many", "whole number"),
        ("max_open_assignments", "", "whole number"),
        ("personal_meeting_link", "http://meet.example.org", "https://"),
        ("countries", "KG, XX", "&#39;XX&#39; is not a country code"),
        ("regions", ["atlantis"], "Choose regions from the list"),
        ("topics", ["gardening"], "Choose topics from the list"),
    ],
)
def test_a_bad_profile_field_is_named_and_nothing_changes(
    web: TestClient, db: Session, admin: User, expert: User, field: str, value: Any, message: str
) -> None:
    before = profile(db, expert).public_name
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{expert.id}/profile", **{**PROFILE, field: value})
    assert resp.status_code == 422
    assert message in field_error(resp.text, field)
    assert f'href="#{field}"' in resp.text
    rec = experts.get_record(db, expert.id)
    assert rec.profile.public_name == before and rec.regions == [REGION]


def test_deactivate_withdraws_pending_offers_and_reactivate_restores(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    offer = assignment(db, expert, make_request(db))
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{expert.id}/deactivate")
    assert resp.status_code == 303
    assert "The expert is deactivated" in web.get(resp.headers["location"]).text
    assert not profile(db, expert).is_active
    db.refresh(offer)
    assert offer.status != AssignmentStatus.offered
    assert page_audited(db, "/{expert_id}/deactivate", expert_id=expert.id)
    assert post(web, f"{PATH}/{expert.id}/reactivate").status_code == 303
    assert profile(db, expert).is_active
    assert page_audited(db, "/{expert_id}/reactivate", expert_id=expert.id)


def test_lead_of_a_region_is_set_and_removed_and_audited(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{expert.id}/lead", lead_region=REGION)
    assert resp.status_code == 303
    db.expire_all()
    assert db.get(Region, REGION).lead_expert_id == expert.id  # type: ignore[union-attr]
    assert page_audited(db, "/{expert_id}/lead", expert_id=expert.id)
    assert "Leads Eastern Europe" in web.get(f"{PATH}/{expert.id}").text
    other = create_expert(db)
    # Someone else's region is not theirs to give up.
    assert post(web, f"{PATH}/{other.id}/lead/{REGION}/remove").status_code == 404
    resp = post(web, f"{PATH}/{expert.id}/lead/{REGION}/remove")
    assert resp.status_code == 303
    db.expire_all()
    assert db.get(Region, REGION).lead_expert_id is None  # type: ignore[union-attr]
    assert page_audited(
        db, "/{expert_id}/lead/{region_code}/remove", expert_id=expert.id, region_code=REGION
    )


def test_an_unknown_region_or_a_deactivated_expert_cannot_lead(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{expert.id}/lead", lead_region="atlantis")
    assert resp.status_code == 422
    assert "Choose a region" in field_error(resp.text, "lead_region")
    experts.set_active(db, expert.id, False)
    resp = post(web, f"{PATH}/{expert.id}/lead", lead_region=REGION)
    assert resp.status_code == 409
    assert "deactivated expert cannot lead" in field_error(resp.text, "lead_region")
    db.expire_all()
    assert db.get(Region, REGION).lead_expert_id is None  # type: ignore[union-attr]


# CV ------------------------------------------------------------------------------------------


def test_a_cv_is_uploaded_then_replaced_and_audited(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    signed_in(web, admin)
    url = f"{PATH}/{expert.id}/cv"
    resp = post(web, url, files={"cv": ("my cv.pdf", tiny_pdf(), "application/pdf")})
    assert resp.status_code == 303, resp.text
    first = profile(db, expert).cv_document_id
    assert first is not None
    assert '<bdi dir="ltr">my cv.pdf</bdi>' in web.get(f"{PATH}/{expert.id}").text
    resp = post(web, url, files={"cv": ("new.pdf", tiny_pdf(pages=2), "application/pdf")})
    assert resp.status_code == 303
    second = profile(db, expert).cv_document_id
    assert second is not None and second != first
    doc = db.get(Document, second)
    assert doc is not None and doc.owner_id == expert.id and doc.uploaded_by == admin.id
    assert len(page_audited(db, "/{expert_id}/cv", expert_id=expert.id)) == 2


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"cv": ("cv.pdf", b"MZ\x90\x00 not a pdf at all", "application/pdf")},
            "not a readable PDF",
        ),
        ({"cv": ("cv.pdf", b"%PDF-1.4\n%broken", "application/pdf")}, "not a readable PDF"),
        ({"cv": ("", b"", "application/octet-stream")}, "Choose a PDF file"),
        (None, "Choose a PDF file"),
    ],
)
def test_a_cv_that_is_not_a_pdf_is_refused_beside_the_field(
    web: TestClient, db: Session, admin: User, expert: User, files: Any, message: str
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{expert.id}/cv", files=files)
    assert resp.status_code == 422
    assert message in field_error(resp.text, "cv")
    assert profile(db, expert).cv_document_id is None
    assert db.scalar(select(func.count()).select_from(Document)) == 0


# Weekly hours, settings, overrides -----------------------------------------------------------

SETTINGS = {
    "slot_minutes": "30",
    "interval_minutes": "",
    "buffer_before_minutes": "5",
    "buffer_after_minutes": "10",
    "min_notice_minutes": "60",
    "horizon_days": "14",
    "max_per_day": "4",
}


def test_weekly_hours_are_saved_in_the_experts_zone_and_audited(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    signed_in(web, admin)
    html = web.get(f"{PATH}/{expert.id}").text
    assert "In the expert's own time zone (Europe/London)" in html
    resp = post(
        web,
        f"{PATH}/{expert.id}/hours",
        day0="09:00-12:00, 14:00-17:30",
        day4="22:00-02:00",
        hours_timezone="Asia/Bishkek",
    )
    assert resp.status_code == 303, resp.text
    row = stored_availability(db, expert)
    assert row is not None and row.timezone == "Asia/Bishkek"
    assert row.weekly == [
        {"weekday": 0, "start": "09:00", "end": "12:00"},
        {"weekday": 0, "start": "14:00", "end": "17:30"},
        {"weekday": 4, "start": "22:00", "end": "02:00"},
    ]
    assert page_audited(db, "/{expert_id}/hours", expert_id=expert.id)
    html = web.get(f"{PATH}/{expert.id}").text
    assert 'id="day0" name="day0" value="09:00-12:00, 14:00-17:30"' in html


@pytest.mark.parametrize(
    ("days", "field", "message"),
    [
        ({"day1": "09:00-12:00, 11:00-13:00"}, "day1", "09:00-12:00 and 11:00-13:00 overlap"),
        (
            {"day2": "09:00-12:00, 12:00-13:00", "day3": "10:00-11:00, 10:30-10:45"},
            "day3",
            "overlap",
        ),
        ({"day6": "22:00-03:00", "day0": "02:00-04:00"}, "day0", "overlap"),
        ({"day2": "25:00-26:00"}, "day2", "HH:MM"),
        ({"day5": "morning"}, "day5", "is not a range like 09:00-12:00"),
        ({"day0": "09:00-10:00", "hours_timezone": "Mars/Base"}, "hours_timezone", "time zone"),
    ],
)
def test_overlapping_or_invalid_hours_are_refused_beside_their_day(
    web: TestClient,
    db: Session,
    admin: User,
    expert: User,
    days: dict[str, str],
    field: str,
    message: str,
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{expert.id}/hours", **days)
    assert resp.status_code == 422
    assert message in field_error(resp.text, field)
    assert stored_availability(db, expert) is None


def test_ranges_that_only_touch_are_fine(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    signed_in(web, admin)
    resp = post(
        web,
        f"{PATH}/{expert.id}/hours",
        day1="09:00-12:00, 12:00-13:00",
        day6="22:00-00:00",
        day0="00:00-01:00",
    )
    assert resp.status_code == 303, resp.text


def test_settings_are_saved_and_keep_the_hours_and_overrides(
    web: TestClient, db: Session, admin: User
) -> None:
    expert = expert_with_hours(db)
    day = (now() + dt.timedelta(days=5)).date()
    signed_in(web, admin)
    assert post(web, f"{PATH}/{expert.id}/overrides", override_date=str(day)).status_code == 303
    resp = post(web, f"{PATH}/{expert.id}/settings", **SETTINGS)
    assert resp.status_code == 303, resp.text
    row = stored_availability(db, expert)
    assert row is not None
    assert (row.slot_minutes, row.interval_minutes, row.max_per_day) == (30, None, 4)
    assert (row.buffer_before_minutes, row.buffer_after_minutes) == (5, 10)
    assert (row.min_notice_minutes, row.horizon_days) == (60, 14)
    assert len(row.weekly) == 7
    assert overrides_of(db, expert) == {day: []}
    assert page_audited(db, "/{expert_id}/settings", expert_id=expert.id)
    # Saving hours keeps the settings and the override too.
    assert post(web, f"{PATH}/{expert.id}/hours", day2="10:00-11:00").status_code == 303
    row = stored_availability(db, expert)
    assert (
        row is not None
        and row.slot_minutes == 30
        and row.weekly == [{"weekday": 2, "start": "10:00", "end": "11:00"}]
    )
    assert overrides_of(db, expert) == {day: []}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("slot_minutes", "3"),
        ("slot_minutes", ""),
        ("interval_minutes", "1000"),
        ("buffer_after_minutes", "-5"),
        ("horizon_days", "0"),
        ("max_per_day", "lots"),
    ],
)
def test_a_bad_setting_is_named_and_nothing_changes(
    web: TestClient, db: Session, admin: User, expert: User, field: str, value: str
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{expert.id}/settings", **{**SETTINGS, field: value})
    assert resp.status_code == 422
    assert "Enter" in field_error(resp.text, field)
    assert stored_availability(db, expert) is None


def test_a_date_override_is_added_replaced_and_removed(
    web: TestClient, db: Session, admin: User
) -> None:
    expert = expert_with_hours(db)
    day = (now() + dt.timedelta(days=3)).date()
    signed_in(web, admin)
    url = f"{PATH}/{expert.id}/overrides"
    resp = post(web, url, override_date=str(day), override_ranges="10:00-13:00")
    assert resp.status_code == 303, resp.text
    assert overrides_of(db, expert) == {day: [{"start": "10:00", "end": "13:00"}]}
    assert page_audited(db, "/{expert_id}/overrides", expert_id=expert.id)
    assert post(web, url, override_date=str(day), override_ranges="").status_code == 303
    assert overrides_of(db, expert) == {day: []}  # the same date again: replaced; a day off
    assert "day off" in web.get(f"{PATH}/{expert.id}").text
    resp = post(web, f"{url}/{day}/remove")
    assert resp.status_code == 303
    assert overrides_of(db, expert) == {}
    assert post(web, f"{url}/{day}/remove").status_code == 404
    row = stored_availability(db, expert)
    assert row is not None and len(row.weekly) == 7  # the weekly hours stay


def test_an_override_for_today_in_the_experts_zone_is_fine(
    web: TestClient, db: Session, admin: User
) -> None:
    expert = expert_with_hours(db, zone="Pacific/Kiritimati")  # UTC+14: often a day ahead
    today = day_in("Pacific/Kiritimati", 0)
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{expert.id}/overrides", override_date=str(today))
    assert resp.status_code == 303, resp.text
    assert overrides_of(db, expert) == {today: []}
    yesterday = str(today - dt.timedelta(days=1))
    resp = post(web, f"{PATH}/{expert.id}/overrides", override_date=yesterday)
    assert resp.status_code == 422


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"override_date": "someday"}, "override_date", "Enter a date"),
        ({"override_date": "2000-01-01"}, "override_date", "today or later"),
        ({"override_ranges": "10:00-12:00, 11:00-12:30"}, "override_ranges", "overlap"),
        ({"override_ranges": "10:00-99:00"}, "override_ranges", "Enter ranges like"),
        ({"override_ranges": "ten to noon"}, "override_ranges", "is not a range"),
    ],
)
def test_a_bad_override_is_named_and_nothing_changes(
    web: TestClient,
    db: Session,
    admin: User,
    expert: User,
    data: dict[str, str],
    field: str,
    message: str,
) -> None:
    signed_in(web, admin)
    day = str((now() + dt.timedelta(days=3)).date())
    resp = post(web, f"{PATH}/{expert.id}/overrides", **{"override_date": day, **data})
    assert resp.status_code == 422
    assert message in field_error(resp.text, field)
    assert overrides_of(db, expert) == {}


# Unavailable periods ---------------------------------------------------------------------------


def test_an_unavailable_period_is_entered_in_the_viewers_zone_and_removed(
    web: TestClient, db: Session, admin: User, expert: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(experts_page, "viewer_zone", lambda _user: "Asia/Bishkek")  # UTC+6
    signed_in(web, admin)
    resp = post(
        web,
        f"{PATH}/{expert.id}/unavailable",
        absence_starts_at="2099-07-01T09:00",
        absence_ends_at="2099-07-10T18:00",
        absence_kind="leave",
        absence_note="Summer",
    )
    assert resp.status_code == 303, resp.text
    db.expire_all()
    [period] = experts.list_absences(db, expert.id)
    assert period.starts_at == dt.datetime(2099, 7, 1, 3, 0, tzinfo=dt.UTC)
    assert period.ends_at == dt.datetime(2099, 7, 10, 12, 0, tzinfo=dt.UTC)
    assert period.note == "Summer"
    assert page_audited(db, "/{expert_id}/unavailable", expert_id=expert.id)
    html = web.get(f"{PATH}/{expert.id}").text
    assert "Times in Asia/Bishkek" in html and "Wed 01 Jul 2099 09:00" in html
    url = f"{PATH}/{expert.id}/unavailable/{period.id}/remove"
    assert post(web, url).status_code == 303
    assert experts.list_absences(db, expert.id) == []
    assert page_audited(
        db, "/{expert_id}/unavailable/{period_id}/remove", expert_id=expert.id, period_id=period.id
    )


def test_another_experts_period_is_not_found(
    web: TestClient, db: Session, admin: User, expert: User
) -> None:
    other = create_expert(db)
    period = add_absence(db, other)
    signed_in(web, admin)
    assert post(web, f"{PATH}/{expert.id}/unavailable/{period.id}/remove").status_code == 404
    db.expire_all()
    assert db.get(UnavailablePeriod, period.id) is not None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"absence_starts_at": "soon"}, "absence_starts_at"),
        ({"absence_ends_at": ""}, "absence_ends_at"),
        ({"absence_ends_at": "2099-06-30T09:00"}, "absence_ends_at"),
        ({"absence_kind": "holiday"}, "absence_kind"),
        ({"absence_note": "x" * 501}, "absence_note"),
    ],
)
def test_a_bad_period_is_named_and_nothing_is_added(
    web: TestClient, db: Session, admin: User, expert: User, data: dict[str, str], field: str
) -> None:
    signed_in(web, admin)
    good = {
        "absence_starts_at": "2099-07-01T09:00",
        "absence_ends_at": "2099-07-02T09:00",
        "absence_kind": "day_off",
    }
    resp = post(web, f"{PATH}/{expert.id}/unavailable", **{**good, **data})
    assert resp.status_code == 422
    assert field_error(resp.text, field)
    assert experts.list_absences(db, expert.id) == []


# CSRF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [*ACTIONS, "add"])
def test_a_form_without_its_csrf_token_changes_nothing(
    web: TestClient, db: Session, admin: User, action: str
) -> None:
    expert = expert_with_hours(db)
    period = add_absence(db, expert)
    day = (now() + dt.timedelta(days=2)).date()
    experts.set_region_lead(db, REGION, expert.id)
    signed_in(web, admin)
    assert post(web, f"{PATH}/{expert.id}/overrides", override_date=str(day)).status_code == 303
    before_seq = db.scalar(select(func.max(AuditEvent.seq)))
    url = (
        PATH
        if action == "add"
        else f"{PATH}/{expert.id}/"
        + action.format(region=REGION)
        .replace("2099-01-01", str(day))
        .replace("/1/", f"/{period.id}/")
    )
    data = {
        **PROFILE,
        **SETTINGS,
        "user_id": "new",
        "display_name": "Mallory",
        "email": "mallory@example.org",
        "lead_region": REGION,
        "day0": "01:00-02:00",
        "override_date": str(day),
        "absence_starts_at": "2099-07-01T09:00",
        "absence_ends_at": "2099-07-02T09:00",
        "absence_kind": "leave",
    }
    for token in ({}, {"csrf_token": "forged"}):
        files = {"cv": ("cv.pdf", tiny_pdf(), "application/pdf")} if action == "cv" else None
        resp = web.post(url, data={**data, **token}, files=files, follow_redirects=False)
        assert resp.status_code == 403
    db.expire_all()
    p = profile(db, expert)
    assert p.is_active and p.public_name != "Dr Renamed" and p.cv_document_id is None
    assert db.get(Region, REGION).lead_expert_id == expert.id  # type: ignore[union-attr]
    row = stored_availability(db, expert)
    assert row is not None and len(row.weekly) == 7 and row.slot_minutes == 60
    assert overrides_of(db, expert) == {day: []}
    assert [a.id for a in experts.list_absences(db, expert.id)] == [period.id]
    assert accounts.get_user_by_email(db, "mallory@example.org") is None
    # The refusals are recorded as denied; nothing as done.
    db.expire_all()
    after = db.scalars(select(AuditEvent).where(AuditEvent.seq > before_seq)).all()
    assert {(e.outcome, e.status_code) for e in after} == {("denied", 403)}
