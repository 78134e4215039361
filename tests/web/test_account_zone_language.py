"""Each person's time zone and language: set on /my-account (and PATCH /api/v1/auth/me), checked
field by field, audited; the desk pages then speak that language (Arabic right to left) and show
every time in that zone, and a time typed into a desk form is read in it. An expert's zone is
their profile's zone, whichever side changes it."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.experts import service as experts
from app.experts.schemas import ExpertUpdate
from app.models import AuditEvent, RequestContact, Role, User, UserLanguage
from tests.conftest import Clock
from tests.factories import (
    assignment,
    create_expert,
    create_user,
    csrf,
    field_error,
    field_problems,
    login,
    make_request,
    profile,
    signed_in,
)

# The suite's own awkward instant: 00:30 UTC is 06:30 in Bishkek (UTC+6 all year).
INSTANT = dt.datetime(2027, 3, 28, 0, 30, tzinfo=dt.UTC)


def _settings(web: TestClient, **fields: str) -> object:
    return web.post(
        "/my-account/settings",
        data={**csrf(web, "/my-account"), **fields},
        follow_redirects=False,
    )


def _fresh(db: Session, user: User) -> User:
    found = db.get(User, user.id, populate_existing=True)
    assert found is not None
    return found


# Setting them -------------------------------------------------------------------------------


def test_a_staff_member_saves_their_zone_and_language_and_it_is_audited(
    web: TestClient, db: Session
) -> None:
    staff = create_user(db, role=Role.staff)
    signed_in(web, staff)
    page = web.get("/my-account")
    assert 'id="settings"' in page.text
    assert '<option value="Asia/Bishkek">' in page.text
    assert '<option value="UTC" selected>' in page.text
    resp = _settings(web, timezone="Asia/Bishkek", language="es")
    assert resp.status_code == 303  # type: ignore[attr-defined]
    assert resp.headers["location"] == "/my-account?done=settings"  # type: ignore[attr-defined]
    saved = _fresh(db, staff)
    assert (saved.timezone, saved.language) == ("Asia/Bishkek", UserLanguage.es)
    row = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "auth.settings_changed", AuditEvent.target == str(staff.id)
        )
    ).one()
    assert row.actor == str(staff.id)
    assert row.details == {
        "timezone": {"from": "UTC", "to": "Asia/Bishkek"},
        "language": {"from": "en", "to": "es"},
    }
    again = web.get("/my-account")
    assert '<html lang="es" dir="ltr">' in again.text
    assert '<option value="Asia/Bishkek" selected>' in again.text


def test_an_unknown_zone_or_language_comes_back_next_to_its_field_and_nothing_is_saved(
    web: TestClient, db: Session
) -> None:
    staff = create_user(db, role=Role.staff)
    signed_in(web, staff)
    resp = _settings(web, timezone="Mars/Olympus_Mons", language="fr")
    assert resp.status_code == 422  # type: ignore[attr-defined]
    html = resp.text  # type: ignore[attr-defined]
    assert 'id="error-summary"' in html
    assert "time zone" in field_error(html, "timezone")
    assert "languages" in field_error(html, "language")
    assert 'aria-describedby="timezone-error"' in html
    only_zone = _settings(web, timezone="", language="ru")
    assert only_zone.status_code == 422  # type: ignore[attr-defined]
    field_error(only_zone.text, "timezone")  # type: ignore[attr-defined]
    saved = _fresh(db, staff)
    assert (saved.timezone, saved.language) == ("UTC", UserLanguage.en)
    assert (
        db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.settings_changed")).all()
        == []
    )


def test_the_api_sets_my_own_settings_and_names_a_bad_field(web: TestClient, db: Session) -> None:
    expert = create_expert(db)
    other = create_user(db, role=Role.staff)
    headers = login(web, expert)
    resp = web.patch(
        "/api/v1/auth/me", json={"timezone": "Asia/Bishkek", "language": "ar"}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["timezone"] == "Asia/Bishkek" and resp.json()["language"] == "ar"
    assert web.get("/api/v1/auth/me", headers=headers).json()["timezone"] == "Asia/Bishkek"
    bad = web.patch(
        "/api/v1/auth/me", json={"timezone": "Europe/Atlantis", "language": "de"}, headers=headers
    )
    assert bad.status_code == 422
    assert set(field_problems(bad)) == {"timezone", "language"}
    # Only one's own: there is no id to name, and the admin route takes no zone.
    assert web.patch("/api/v1/auth/me", json={"timezone": "UTC"}).status_code == 401
    assert _fresh(db, other).timezone == "UTC"
    admin_headers = login(web, create_user(db, role=Role.admin))
    refused = web.patch(
        f"/api/v1/admin/users/{other.id}", json={"timezone": "Asia/Bishkek"}, headers=admin_headers
    )
    assert refused.status_code == 422
    assert _fresh(db, other).timezone == "UTC"
    assert _fresh(db, expert).timezone == "Asia/Bishkek"


def test_an_experts_zone_is_their_profiles_zone_whichever_side_changes_it(db: Session) -> None:
    expert = create_expert(db)
    assert _fresh(db, expert).timezone == "Europe/London"  # copied when the profile was made
    accounts.update_settings(db, expert, timezone="Asia/Bishkek")
    assert profile(db, expert).timezone == "Asia/Bishkek"
    experts.update(db, expert.id, ExpertUpdate(timezone="America/Lima"))
    assert _fresh(db, expert).timezone == "America/Lima"
    staff = create_user(db, role=Role.staff)
    accounts.update_settings(db, staff, timezone="Asia/Bishkek")  # no profile: nothing else
    assert _fresh(db, staff).timezone == "Asia/Bishkek"


# The pages in the person's language ------------------------------------------------------------


def test_a_user_who_chose_arabic_gets_right_to_left_pages(web: TestClient, db: Session) -> None:
    expert = create_expert(db)
    accounts.update_settings(db, expert, language="ar")
    signed_in(web, expert)
    for path in ("/expert/assignments", "/my-account"):
        html = web.get(path).text
        assert '<html lang="ar" dir="rtl">' in html, path


def test_the_sign_in_page_follows_lang_or_the_browser_until_someone_signs_in(
    web: TestClient, db: Session
) -> None:
    assert '<html lang="en" dir="ltr">' in web.get("/staff/sign-in").text
    browser = web.get("/staff/sign-in", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert '<html lang="ru" dir="ltr">' in browser.text
    chosen = web.get("/staff/sign-in?lang=ar", headers={"Accept-Language": "ru"})
    assert '<html lang="ar" dir="rtl">' in chosen.text
    assert 'action="/staff/sign-in?lang=ar"' in chosen.text  # a mistake re-renders in it too
    staff = create_user(db, role=Role.staff)
    accounts.update_settings(db, staff, language="es")
    signed_in(web, staff)
    # Signed in, the account's own language wins over the browser's.
    queue = web.get("/staff/queue", headers={"Accept-Language": "ru"})
    assert '<html lang="es" dir="ltr">' in queue.text


# Times in the person's zone ------------------------------------------------------------------


def test_the_case_page_shows_times_in_the_viewers_zone_and_names_it(
    web: TestClient, db: Session, clock: Clock
) -> None:
    clock.at(INSTANT)
    req = make_request(db)  # received now: 00:30 UTC
    staff = create_user(db, role=Role.staff)
    accounts.update_settings(db, staff, timezone="Asia/Bishkek")
    signed_in(web, staff)
    html = web.get(f"/staff/cases/{req.reference}").text
    received = re.search(r"<dt>Source, received</dt><dd>(.*?)</dd>", html, re.S)
    assert received is not None
    assert "Sun 28 Mar 2027, 06:30" in received.group(1)
    assert "Sun 28 Mar 2027, 07:30" in html  # the first response is due an hour later
    assert "00:30" not in received.group(1)
    zone = re.search(r'id="viewer-zone"[^>]*>(.*?)</a>', html, re.S)
    assert zone is not None and "Asia/Bishkek, UTC+06:00" in zone.group(1)


def test_a_contact_time_typed_in_the_viewers_zone_is_stored_as_that_instant(
    web: TestClient, db: Session, clock: Clock
) -> None:
    clock.at(INSTANT)
    req = make_request(db)
    staff = create_user(db, role=Role.staff)
    accounts.update_settings(db, staff, timezone="Asia/Bishkek")
    signed_in(web, staff)
    clock.at(INSTANT + dt.timedelta(hours=1))  # 01:30 UTC, 07:30 in Bishkek
    url = f"/staff/cases/{req.reference}"
    resp = web.post(
        f"{url}/contact",
        data={**csrf(web, url), "channel": "phone", "contacted_at": "2027-03-28T07:15"},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    contact = db.scalars(select(RequestContact).where(RequestContact.request_id == req.id)).one()
    assert contact.contacted_at == dt.datetime(2027, 3, 28, 1, 15, tzinfo=dt.UTC)
    page = web.get(url).text
    assert "Sun 28 Mar 2027, 07:15" in page


def test_an_experts_desk_shows_the_answer_by_time_in_their_zone(
    web: TestClient, db: Session, clock: Clock
) -> None:
    clock.at(INSTANT)
    expert = create_expert(db, countries=["KG"])
    accounts.update_settings(db, expert, timezone="Asia/Bishkek")
    a = assignment(db, expert, make_request(db))
    signed_in(web, expert)
    html = web.get("/expert/assignments").text
    local = a.respond_by.astimezone(dt.timezone(dt.timedelta(hours=6)))
    assert f"{local:%a} {local.day} {local:%b %Y, %H:%M}" in html
    assert "Asia/Bishkek" in html
