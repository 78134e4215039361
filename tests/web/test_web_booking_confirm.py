"""The booking pages' confirm step in-process: choosing a time holds it and shows date, time,
zone in words, length and the expert's public name; only "Confirm" books it; "Choose another
time" releases it; a confirm after the hold expired comes back as that week with the reason
and the time offered again. And no page or e-mail a requester reads shows a machine date
("2026-12-06 01:11"): times are in words, in their language and zone."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.settings import Settings, get_settings
from app.intake import records
from app.intake import service as intake
from app.models import Consultation, IntakeRequest, SlotHold, User
from app.notifications import dates
from tests.conftest import Clock
from tests.factories import at, day_in, drain, expert_with_hours, hidden_fields, submission
from tests.mail_reader import html_of, messages, text_of

ZONE = "Europe/Berlin"
MACHINE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    s = get_settings()
    monkeypatch.setattr(s, "form_min_fill_seconds", 0.0)
    yield s


@pytest.fixture
def web(db: Session, settings: Settings) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(
        create_app(), base_url="https://testserver", raise_server_exceptions=False
    ) as c:
        yield c


@pytest.fixture
def expert(db: Session) -> User:
    return expert_with_hours(
        db, countries=("KG",), zone=ZONE, name="Dr Confirm", slot_minutes=45, min_notice_minutes=0
    )


def _request(db: Session, web: TestClient, lang: str = "en") -> IntakeRequest:
    reply = intake.submit(db, submission(timezone=ZONE, language=lang))
    req = records.get_by_reference(db, reply["reference"])
    assert req is not None
    assert web.get(f"/r/{req.reference}?token={reply['access_token']}").status_code == 200
    return req


def _choose(web: TestClient, req: IntakeRequest, start: dt.datetime) -> str:
    """Press a time's button on the booking page; the confirm step's URL."""
    page = web.get(f"/r/{req.reference}/book").text
    assert f'data-start="{start.isoformat()}"' in page
    resp = web.post(
        f"/r/{req.reference}/book",
        data={**hidden_fields(page), "start": start.isoformat(), "tz": ZONE},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    location = resp.headers["location"]
    assert location.startswith(f"/r/{req.reference}/book/confirm?")
    return location


def _count(db: Session, model: type[Consultation] | type[SlotHold]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


class _Text(HTMLParser):
    """The text a person sees (no tags, attributes, scripts or styles)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def test_choosing_a_time_holds_it_and_only_confirm_books_it(
    web: TestClient, db: Session, expert: User
) -> None:
    req = _request(db, web)
    start = at(day_in(ZONE, 2), "09:00", ZONE)
    confirm_url = _choose(web, req, start)
    assert _count(db, Consultation) == 0 and _count(db, SlotHold) == 1
    page = web.get(confirm_url)
    assert page.status_code == 200
    html = page.text
    assert "<h1>Confirm your consultation</h1>" in html
    assert f'<dd id="held-day">{dates.day_in_words(start, ZONE, "en")}</dd>' in html
    assert '<bdi id="held-time">09:00\u201309:45</bdi>' in html
    assert '<dd id="held-zone"><bdi>Berlin time</bdi></dd>' in html
    assert '<dd id="held-length">45 minutes</dd>' in html
    assert '<dd id="held-expert"><bdi>Dr Confirm</bdi></dd>' in html
    row = db.scalar(select(SlotHold))
    assert row is not None
    until = dates.time_in_words(row.expires_at, ZONE, "en")
    assert f"We are keeping this time for you until <bdi>{until}</bdi>." in html
    done = web.post(
        f"/r/{req.reference}/book/confirm", data=hidden_fields(html), follow_redirects=False
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith(f"/r/{req.reference}/booked?")
    [c] = db.scalars(select(Consultation)).all()
    assert c.start_at == start and c.expert_id == expert.id
    assert _count(db, SlotHold) == 0


def test_choose_another_time_releases_the_hold(web: TestClient, db: Session, expert: User) -> None:
    req = _request(db, web)
    start = at(day_in(ZONE, 2), "09:00", ZONE)
    html = web.get(_choose(web, req, start)).text
    fields = hidden_fields(html.split('action="/r/', 2)[2])  # the second form: release
    back = web.post(f"/r/{req.reference}/book/release", data=fields, follow_redirects=False)
    assert back.status_code == 303
    assert back.headers["location"].startswith(f"/r/{req.reference}/book?")
    assert _count(db, SlotHold) == 0 and _count(db, Consultation) == 0


def test_a_confirm_after_the_hold_expired_shows_the_week_again_with_the_reason(
    web: TestClient, db: Session, expert: User, clock: Clock
) -> None:
    req = _request(db, web)
    start = at(day_in(ZONE, 2), "09:00", ZONE)
    html = web.get(_choose(web, req, start)).text
    row = db.scalar(select(SlotHold))
    assert row is not None
    clock.at(row.expires_at + dt.timedelta(seconds=1))
    refused = web.post(f"/r/{req.reference}/book/confirm", data=hidden_fields(html))
    assert refused.status_code == 409
    minutes = get_settings().slot_hold_minutes
    assert (
        f"We kept the time for you for {minutes} minutes, but it was not confirmed, so it was "
        "released. Choose a time again."
    ) in refused.text
    assert 'id="error-summary"' in refused.text
    assert f'data-start="{start.isoformat()}"' in refused.text  # offered again
    assert _count(db, Consultation) == 0


def test_a_confirm_page_without_a_hold_leads_back_to_the_times(
    web: TestClient, db: Session, expert: User
) -> None:
    req = _request(db, web)
    page = web.get(f"/r/{req.reference}/book/confirm")
    assert page.status_code == 200
    assert "No time is held for you any more. Choose a time again." in page.text
    assert 'id="slots"' in page.text


@pytest.mark.parametrize(
    ("lang", "zone_words", "confirm"),
    [
        ("ru", "часовой пояс: Берлин", "Подтвердить запись"),
        ("es", "hora de Berlín", "Confirmar la reserva"),
        ("ar", "توقيت برلين", "تأكيد الحجز"),
    ],
)
def test_the_confirm_step_speaks_the_requesters_language(
    web: TestClient, db: Session, expert: User, lang: str, zone_words: str, confirm: str
) -> None:
    req = _request(db, web, lang)
    start = at(day_in(ZONE, 2), "09:00", ZONE)
    html = web.get(_choose(web, req, start)).text
    assert f'<html lang="{lang}"' in html
    assert f"<bdi>{zone_words}</bdi>" in html
    assert confirm in html
    assert dates.day_in_words(start, ZONE, lang) in html


@pytest.mark.parametrize("lang", ["en", "ru", "es", "ar"])
def test_no_requester_page_or_email_shows_a_machine_date(
    web: TestClient, db: Session, expert: User, clock: Clock, mail_dir: Path, lang: str
) -> None:
    req = _request(db, web, lang)
    start = at(day_in(ZONE, 2), "09:00", ZONE)
    confirm_url = _choose(web, req, start)
    pages = {"confirm": web.get(confirm_url).text}
    done = web.post(
        f"/r/{req.reference}/book/confirm",
        data=hidden_fields(pages["confirm"]),
        follow_redirects=False,
    )
    assert done.status_code == 303
    for name, url in {
        "booked": done.headers["location"],
        "request": f"/r/{req.reference}",
        "book": f"/r/{req.reference}/book",
        "cancel": f"/r/{req.reference}/cancel",
        "recover": f"/recover?lang={lang}",
    }.items():
        resp = web.get(url)
        assert resp.status_code == 200, (name, resp.status_code)
        pages[name] = resp.text
    for name, html in pages.items():
        shown = visible(html)
        assert not MACHINE_TIME.search(shown), (name, MACHINE_TIME.findall(shown))
    assert dates.day_in_words(start, ZONE, lang) in visible(pages["booked"])
    # The e-mails: acknowledgement, invite, and the reminders (a day and an hour before).
    drain(db)
    clock.at(start - dt.timedelta(minutes=59))
    drain(db)
    pii = records.reveal_pii(req)
    assert pii is not None
    sent = messages(mail_dir, to=pii["email"])  # the requester's (the expert's are not words)
    kinds = {str(m["Subject"]) for m in sent}
    assert len(sent) >= 3, kinds  # acknowledgement, invite, the reminder an hour before
    for m in sent:
        for body in (text_of(m), html_of(m)):
            assert not MACHINE_TIME.search(body), (m["Subject"], MACHINE_TIME.findall(body))
    words = dates.span_in_words(start, start + dt.timedelta(minutes=45), ZONE, lang)
    assert any(words in text_of(m) for m in sent), words
