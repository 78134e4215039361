"""The requester's booking pages in-process: slots grouped by local date in the request's zone
(and in a zone chosen on the page), booking, a slot taken meanwhile (409 with the reason and the
fresh list, never a 500), rescheduling, cancelling with a confirmation step, the calendar file,
the link's cookie (another request's is 404), CSRF, discretion and languages."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import Settings, get_settings
from app.flows import request as flows
from app.intake import records
from app.intake import service as intake
from app.models import Consultation, ConsultationStatus, IntakeRequest, RequestStatus, User
from app.scheduling import service as scheduling
from tests.factories import at, day_in, expert_with_hours, hidden_fields, submission, title_of
from tests.mail_reader import event_of

LONDON = "Europe/London"
AUCKLAND = "Pacific/Auckland"  # London's 09:00-12:00 crosses midnight there
LINK = "https://meet.example.org/dr-web"

DAY_OR_SLOT = re.compile(
    r'<div class="day" data-date="([0-9-]+)">|data-start="([^"]+)"><span dir="ltr">([^<]+)</span>'
)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    s = get_settings()
    monkeypatch.setattr(s, "form_min_fill_seconds", 0.0)
    yield s


@pytest.fixture
def web(db: Session, settings: Settings) -> Iterator[TestClient]:
    """Over https: the pages' cookies are Secure."""
    from app.main import create_app

    with TestClient(
        create_app(), base_url="https://testserver", raise_server_exceptions=False
    ) as c:
        yield c


@pytest.fixture
def expert(db: Session) -> User:
    return expert_with_hours(db, countries=("KG",), zone=LONDON, link=LINK, name="Dr Web")


def _request(db: Session, *, zone: str = LONDON, **overrides: Any) -> tuple[IntakeRequest, str]:
    reply = intake.submit(db, submission(timezone=zone, language="en", **overrides))
    req = records.get_by_reference(db, reply["reference"])
    assert req is not None
    return req, str(reply["access_token"])


def _open(web: TestClient, req: IntakeRequest, token: str) -> None:
    """As the link does: ``?token=`` sets the request's cookie in this client."""
    resp = web.get(f"/r/{req.reference}?token={token}")
    assert resp.status_code == 200, resp.text


def _slots(html: str) -> dict[str, list[tuple[str, str]]]:
    """{local date: [(start_utc, label), ...]} in page order."""
    out: dict[str, list[tuple[str, str]]] = {}
    day = None
    for date, start, label in DAY_OR_SLOT.findall(html):
        if date:
            day = date
            out[day] = []
        else:
            assert day is not None
            out[day].append((start, label))
    return out


def _hold(web: TestClient, req: IntakeRequest, start: str, page: str | None = None) -> Any:
    """Choose a time on the booking page (it is held; the answer leads to the confirm step)."""
    html = page if page is not None else web.get(f"/r/{req.reference}/book").text
    hidden = hidden_fields(html)
    return web.post(
        f"/r/{req.reference}/book",
        data={**hidden, "start": start, "tz": req.timezone},
        follow_redirects=False,
    )


def _book(web: TestClient, req: IntakeRequest, start: str, page: str | None = None) -> Any:
    """Choose a time, then confirm it (the answer to the confirm, or a refused choice)."""
    held = _hold(web, req, start, page)
    if held.status_code != 303:
        return held
    assert held.headers["location"].startswith(f"/r/{req.reference}/book/confirm?")
    confirm = web.get(held.headers["location"])
    assert confirm.status_code == 200, confirm.text
    return web.post(
        f"/r/{req.reference}/book/confirm",
        data=hidden_fields(confirm.text),
        follow_redirects=False,
    )


def _consultations(db: Session, req: IntakeRequest) -> list[Consultation]:
    return list(
        db.scalars(
            select(Consultation)
            .where(Consultation.request_id == req.id)
            .execution_options(populate_existing=True)
        )
    )


def _start(date: dt.date, hhmm: str, zone: str = LONDON) -> str:
    return at(date, hhmm, zone).isoformat()


# Slots -----------------------------------------------------------------------------------------


def test_slots_are_grouped_by_local_date_in_the_requests_zone(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db, zone=AUCKLAND)
    _open(web, req, token)
    resp = web.get(f"/r/{req.reference}/book")
    assert resp.status_code == 200, resp.text
    found = _slots(resp.text)
    tz = zoneinfo.ZoneInfo(AUCKLAND)
    # Independently: London's 09:00, 10:00, 11:00 whose Auckland date is one of days 1 to 5.
    wanted = [day_in(AUCKLAND, n) for n in range(1, 6)]
    expected: dict[str, list[tuple[str, str]]] = {d.isoformat(): [] for d in wanted}
    for offset in range(-1, 8):
        for hhmm in ("09:00", "10:00", "11:00"):
            instant = at(day_in(LONDON, offset), hhmm, LONDON)
            local = instant.astimezone(tz)
            if local.date() in wanted:
                expected[local.date().isoformat()].append((instant.isoformat(), f"{local:%H:%M}"))
    for date, slots in expected.items():
        assert found[date] == sorted(slots), date
    # Every slot on the page sits under its own local date.
    for date, slots in found.items():
        for start, _label in slots:
            assert dt.datetime.fromisoformat(start).astimezone(tz).date().isoformat() == date
    assert 'data-zone="Pacific/Auckland"' in resp.text
    assert "A consultation lasts 60 minutes" in resp.text
    assert expert.id is not None


def test_a_zone_chosen_on_the_page_relabels_and_regroups_the_same_instants(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db, zone=AUCKLAND)
    _open(web, req, token)
    in_london = _slots(web.get(f"/r/{req.reference}/book?tz={LONDON}").text)
    date = day_in(LONDON, 2)
    assert in_london[date.isoformat()] == [
        (_start(date, hhmm), hhmm) for hhmm in ("09:00", "10:00", "11:00")
    ]
    unknown = web.get(f"/r/{req.reference}/book?tz=Mars/Olympus")
    assert unknown.status_code == 200
    assert 'id="f-tz-error"' in unknown.text and 'aria-invalid="true"' in unknown.text
    assert 'data-zone="Pacific/Auckland"' in unknown.text  # back to the request's zone


def test_later_dates_page_on_by_a_week(web: TestClient, db: Session, expert: User) -> None:
    req, token = _request(db)
    _open(web, req, token)
    first = web.get(f"/r/{req.reference}/book").text
    assert 'id="earlier"' not in first
    later = re.search(r'id="later" href="([^"]+)"', first)
    assert later is not None
    second = web.get(later.group(1).replace("&amp;", "&")).text
    dates = sorted(_slots(second))
    assert dates[0] == day_in(LONDON, 7).isoformat()
    assert 'id="earlier"' in second


# Book ------------------------------------------------------------------------------------------


def test_booking_a_slot_shows_the_time_in_the_zone_and_the_join_link(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db, zone="Asia/Bishkek")
    _open(web, req, token)
    date = day_in(LONDON, 2)
    start = _start(date, "10:00")
    resp = _book(web, req, start)
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"].startswith(f"/r/{req.reference}/booked?")
    page = web.get(resp.headers["location"])
    assert page.status_code == 200
    local = dt.datetime.fromisoformat(start).astimezone(zoneinfo.ZoneInfo("Asia/Bishkek"))
    assert f'id="booked-time">{local:%H:%M}\u2013' in page.text
    assert "(<bdi>Bishkek time</bdi>)" in page.text
    assert f'id="join-link" href="{LINK}"' in page.text
    assert f'href="/r/{req.reference}/consultation.ics"' in page.text
    assert "<h1>Your consultation is booked</h1>" in page.text
    [c] = _consultations(db, req)
    assert c.status == ConsultationStatus.booked and c.start_at.isoformat() == start
    db.refresh(req)
    assert req.status == RequestStatus.consultation_scheduled
    # The request page shows the booking with reschedule and cancel.
    request_page = web.get(f"/r/{req.reference}").text
    assert f'data-booked="{start}"' in request_page
    for control in ('id="reschedule"', 'id="cancel-booking"', 'id="add-to-calendar"'):
        assert control in request_page


def test_a_slot_taken_meanwhile_answers_the_reason_and_the_fresh_list(
    web: TestClient, db: Session, expert: User
) -> None:
    first, _ = _request(db)
    second, token = _request(db)
    _open(web, second, token)
    date = day_in(LONDON, 3)
    start = _start(date, "09:00")
    page = web.get(f"/r/{second.reference}/book").text
    assert start in dict(_slots(page)[date.isoformat()])
    # Someone else takes it between the page and the click.
    scheduling.book(
        db,
        first,
        start=dt.datetime.fromisoformat(start),
        zone=None,
        caller=scheduling.Caller("requester"),
    )
    resp = _book(web, second, start, page)
    assert resp.status_code == 409
    assert 'id="error-summary"' in resp.text and "just been taken" in resp.text
    assert title_of(resp.text).startswith("Error: ")
    fresh = _slots(resp.text)
    assert start not in dict(fresh[date.isoformat()])
    assert _start(date, "10:00") in dict(fresh[date.isoformat()])
    assert _consultations(db, second) == []
    db.refresh(second)
    assert second.status == RequestStatus.new


@pytest.mark.sqlite
def test_book_a_taken_slot_reschedule_and_cancel_on_sqlite(
    web: TestClient, db: Session, expert: User
) -> None:
    """The embedded default: the savepoint around a refused attempt works on SQLite too."""
    first, _ = _request(db)
    req, token = _request(db)
    _open(web, req, token)
    date = day_in(LONDON, 2)
    page = web.get(f"/r/{req.reference}/book").text
    taken = _start(date, "09:00")
    scheduling.book(
        db,
        first,
        start=dt.datetime.fromisoformat(taken),
        zone=None,
        caller=scheduling.Caller("requester"),
    )
    refused = _book(web, req, taken, page)
    assert refused.status_code == 409 and "just been taken" in refused.text
    assert _book(web, req, _start(date, "10:00")).status_code == 303
    assert _book(web, req, _start(date, "11:00")).status_code == 303
    [c] = _consultations(db, req)
    assert c.start_at.isoformat() == _start(date, "11:00") and c.ical_sequence == 1
    confirm = web.get(f"/r/{req.reference}/cancel").text
    web.post(f"/r/{req.reference}/cancel", data=hidden_fields(confirm))
    [c] = _consultations(db, req)
    assert c.status == ConsultationStatus.cancelled


def test_a_start_that_is_not_a_time_is_422_with_the_list(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db)
    _open(web, req, token)
    resp = _book(web, req, "not-a-time")
    assert resp.status_code == 422 and "Choose one of the free times" in resp.text
    assert _slots(resp.text)
    never = _book(web, req, _start(day_in(LONDON, 2), "15:00"))  # outside the hours
    assert never.status_code == 409 and "not one of the free times" in never.text


# Reschedule and cancel -------------------------------------------------------------------------


def test_reschedule_from_the_request_page_moves_the_same_consultation(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db)
    _open(web, req, token)
    date = day_in(LONDON, 2)
    assert _book(web, req, _start(date, "09:00")).status_code == 303
    [before] = _consultations(db, req)
    page = web.get(f"/r/{req.reference}/book")
    assert "Choose a new time" in title_of(page.text) and 'id="current-booking"' in page.text
    moved = _book(web, req, _start(date, "11:00"), page.text)
    assert moved.status_code == 303 and "done=rescheduled" in moved.headers["location"]
    assert "moved to the new time" in web.get(moved.headers["location"]).text
    [after] = _consultations(db, req)
    assert after.id == before.id and after.start_at.isoformat() == _start(date, "11:00")
    assert after.ical_sequence == 1
    assert f'data-booked="{_start(date, "11:00")}"' in web.get(f"/r/{req.reference}").text


def test_cancel_asks_first_then_frees_the_request_to_book_again(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db)
    _open(web, req, token)
    assert _book(web, req, _start(day_in(LONDON, 2), "09:00")).status_code == 303
    confirm = web.get(f"/r/{req.reference}/cancel")
    assert confirm.status_code == 200 and 'id="confirm-cancel"' in confirm.text
    [c] = _consultations(db, req)
    assert c.status == ConsultationStatus.booked  # asking changes nothing
    forged = web.post(f"/r/{req.reference}/cancel", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    done = web.post(
        f"/r/{req.reference}/cancel", data=hidden_fields(confirm.text), follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].endswith("done=cancelled")
    [c] = _consultations(db, req)
    assert c.status == ConsultationStatus.cancelled
    db.refresh(req)
    assert req.status == RequestStatus.in_progress
    page = web.get(done.headers["location"]).text
    assert 'id="cancelled-message"' in page and 'id="book-link"' in page
    assert "data-booked" not in page
    # Nothing left to cancel or download.
    again = web.get(f"/r/{req.reference}/cancel", follow_redirects=False)
    assert again.status_code == 303
    assert web.get(f"/r/{req.reference}/consultation.ics").status_code == 404


# The calendar file -----------------------------------------------------------------------------


def test_the_calendar_file_has_the_start_in_utc_and_the_invites_uid(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db, zone="America/Mexico_City")
    _open(web, req, token)
    start = at(day_in(LONDON, 2), "10:00", LONDON)
    assert _book(web, req, start.isoformat()).status_code == 303
    resp = web.get(f"/r/{req.reference}/consultation.ics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/calendar")
    assert 'attachment; filename="consultation.ics"' in resp.headers["content-disposition"]
    assert f"DTSTART:{start:%Y%m%dT%H%M%S}Z" in resp.text
    event = event_of(Calendar.from_ical(resp.content))
    assert event.decoded("dtstart") == start
    assert event.decoded("dtend") == start + dt.timedelta(hours=1)
    [c] = _consultations(db, req)
    assert str(event["uid"]) == c.ical_uid and int(event["sequence"]) == 0
    assert str(event["location"]) == LINK
    assert str(event["summary"]) == f"Free consultation [{req.reference}]"


# Export --------------------------------------------------------------------------------------


def test_the_request_page_offers_the_export_of_everything_held(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db, full_name="Zqxexport Person")
    _open(web, req, token)
    page = web.get(f"/r/{req.reference}").text
    assert f'id="export-link" href="/r/{req.reference}/export"' in page
    resp = web.get(f"/r/{req.reference}/export")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    disposition = resp.headers["content-disposition"]
    assert disposition == f'attachment; filename="request-{req.reference}.json"'
    assert resp.headers["cache-control"] == "no-store"
    assert req.reference in resp.text and "Zqxexport Person" in resp.text  # decrypted
    resp.json()


# Who may -------------------------------------------------------------------------------------


def test_another_requests_cookie_or_none_is_404_and_shows_nothing(
    web: TestClient, db: Session, expert: User
) -> None:
    mine, token = _request(db)
    _other, other_token = _request(db)
    _open(web, mine, token)
    hidden = hidden_fields(web.get(f"/r/{mine.reference}/book").text)
    assert _book(web, mine, _start(day_in(LONDON, 2), "09:00")).status_code == 303
    ref = mine.reference
    for cookie in (f"requester_link={other_token}", "requester_link=rl_forged", ""):
        headers = {"Cookie": f"csrf={web.cookies.get('csrf')}; {cookie}"}
        page = web.get(f"/r/{ref}/book", headers=headers)
        assert page.status_code == 200 and "data-start" not in page.text  # the open form only
        assert "data-auto-open" in page.text
        for method, path in (
            ("GET", "booked"),
            ("GET", "consultation.ics"),
            ("GET", "export"),
            ("GET", "cancel"),
            ("POST", "cancel"),
            ("POST", "book"),
        ):
            data = {**hidden, "start": _start(day_in(LONDON, 3), "09:00")}
            resp = web.request(
                method, f"/r/{ref}/{path}", headers=headers, data=data if method == "POST" else None
            )
            assert resp.status_code == 404, (cookie, path)
    [c] = _consultations(db, mine)
    assert c.status == ConsultationStatus.booked and c.start_at.isoformat() == _start(
        day_in(LONDON, 2), "09:00"
    )


def test_booking_without_the_csrf_token_is_refused(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db)
    _open(web, req, token)
    start = _start(day_in(LONDON, 2), "09:00")
    resp = web.post(f"/r/{req.reference}/book", data={"start": start, "tz": LONDON})
    assert resp.status_code == 403 and "Please try again" in resp.text
    assert _consultations(db, req) == []


def test_the_emails_booking_link_opens_then_comes_back_to_the_book_page(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db)
    web.cookies.clear()
    page = web.get(f"/r/{req.reference}/book")
    hidden = hidden_fields(page.text)
    assert hidden["next"] == "book"
    resp = web.post(
        f"/r/{req.reference}/open", data={**hidden, "token": token}, follow_redirects=False
    )
    assert resp.status_code == 303 and resp.headers["location"] == f"/r/{req.reference}/book"
    assert _slots(web.get(resp.headers["location"]).text)


def test_a_request_that_cannot_book_says_so_and_books_nothing(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db)
    _open(web, req, token)
    page = web.get(f"/r/{req.reference}/book").text
    flows.withdraw(db, req)
    db.flush()
    now_page = web.get(f"/r/{req.reference}/book")
    assert 'id="not-bookable"' in now_page.text and "data-start" not in now_page.text
    resp = _book(web, req, _start(day_in(LONDON, 2), "09:00"), page)
    assert resp.status_code == 409 and "can no longer be booked" in resp.text
    assert _consultations(db, req) == []


# Discretion and languages ----------------------------------------------------------------------


def test_titles_of_a_discreet_request_never_say_asylum(
    web: TestClient, db: Session, expert: User
) -> None:
    req, token = _request(db, discreet=True)
    _open(web, req, token)
    pages = [web.get(f"/r/{req.reference}/book").text]
    booked = _book(web, req, _start(day_in(LONDON, 2), "09:00"))
    pages.append(web.get(booked.headers["location"]).text)
    pages.append(web.get(f"/r/{req.reference}/cancel").text)
    pages.append(web.get(f"/r/{req.reference}/book?lang=ru").text)
    pages.append(web.get(f"/r/{req.reference}/book?lang=ar").text)
    for html in pages:
        assert 'id="quick-exit"' in html
        assert "asylum" not in title_of(html).lower() and "убежищ" not in title_of(html)
        assert "asylum" not in html.lower()
    assert title_of(pages[1]) == "Your appointment is booked"


@pytest.mark.parametrize(
    ("lang", "direction", "heading"),
    [
        ("ru", "ltr", "Записаться на бесплатную консультацию"),
        ("es", "ltr", "Reservar una consulta gratuita"),
        ("ar", "rtl", "احجز استشارة مجانية"),
    ],
)
def test_the_book_page_speaks_the_pages_language(
    web: TestClient, db: Session, expert: User, lang: str, direction: str, heading: str
) -> None:
    req, token = _request(db)
    _open(web, req, token)
    html = web.get(f"/r/{req.reference}/book?lang={lang}").text
    assert f'<html lang="{lang}" dir="{direction}">' in html
    assert title_of(html) == heading
    assert 'id="quick-exit"' in html
