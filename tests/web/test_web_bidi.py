"""Text from people and times never reorder a page: requesters' names and texts are isolated
(``<bdi>``) with the directional controls made visible, and times, references and addresses
read left to right on right-to-left pages too."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.flows import request as flows
from app.inbound import set_aside
from app.intake import records
from app.intake import service as intake
from app.main import create_app
from app.models import Assignment, ExpertProfile, Role
from app.models.inbound import SetAsideReason
from app.notifications import dates
from app.web import bidi
from tests.conftest import Clock
from tests.factories import (
    at,
    create_expert,
    create_user,
    csrf,
    expert_with_hours,
    form_values,
    hidden_fields,
    hours,
    signed_in,
    submission,
    submit,
)

RLO = "\u202e"  # right-to-left override: reverses everything after it, up to the paragraph's end
NAME = f"Ali {RLO}Reza"
SHOWN = "Ali [U+202E]Reza"
LONDON = "Europe/London"


@pytest.fixture
def web(db: Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(get_settings(), "form_min_fill_seconds", 0.0)
    with TestClient(
        create_app(), base_url="https://testserver", raise_server_exceptions=False
    ) as c:
        yield c


def test_every_directional_control_is_shown_and_the_text_escaped() -> None:
    controls = [chr(c) for c in (0x202A, 0x202B, 0x202C, 0x202D, 0x202E)]
    controls += [chr(c) for c in (0x2066, 0x2067, 0x2068, 0x2069)]
    shown = bidi.controls_shown("".join(controls))
    assert not set(shown) & bidi.CONTROLS
    assert shown.count("[U+") == 9 and "[U+202E]" in shown and "[U+2069]" in shown
    assert str(bidi.bdi(f"<b>{RLO}x</b>")) == "<bdi>&lt;b&gt;[U+202E]x&lt;/b&gt;</bdi>"
    assert str(bidi.ltr("11:30\u201312:15")) == '<bdi dir="ltr">11:30\u201312:15</bdi>'
    arabic = "\u0639\u0644\u064a"  # a right-to-left name is kept as it is, only isolated
    assert str(bidi.bdi(arabic)) == f"<bdi>{arabic}</bdi>"


def test_staff_see_a_requesters_override_isolated_and_visible_on_every_part_of_the_case(
    web: TestClient, db: Session
) -> None:
    expert = create_expert(db, countries=["KG"], name=f"Dr {RLO}Expert")
    req = submit(db, full_name=NAME, case_summary=f"Summary {RLO}reversed")
    email = records.reveal_pii(req)["email"]
    signed_in(web, create_user(db, role=Role.staff, display_name=f"Staff {RLO}Member"))
    case = f"/staff/cases/{req.reference}"
    posted = [
        ("notes", {"body": f"Note {RLO}here"}),
        ("contact", {"channel": "phone", "note": f"Called {RLO}back"}),
        ("reply/preview", {"subject": f"Re {RLO}you", "body": f"Body {RLO}text"}),
        ("assign", {"expert_id": str(expert.id)}),
    ]
    for action, data in posted:
        answer = web.post(f"{case}/{action}", data={**csrf(web, case), **data})
        assert answer.status_code == 200, answer.text
        if action == "reply/preview":  # the preview shows the override too; then it is sent
            shown = re.search(r'<dd id="preview-subject">(.*?)</dd>', answer.text)
            assert shown is not None and "Re [U+202E]you" in shown.group(1)
            assert RLO not in shown.group(1)
            sent = web.post(f"{case}/reply", data=form_values(answer.text, "send-form"))
            assert sent.status_code == 200, sent.text
    html = web.get(case).text
    assert RLO not in html
    for text in (
        SHOWN,
        "Summary [U+202E]reversed",
        "Note [U+202E]here",
        "Called [U+202E]back",
        "Re [U+202E]you",
        "Body [U+202E]text",
        "Dr [U+202E]Expert",  # the assigned expert, the offers, the routing decisions
        "Staff [U+202E]Member",  # who signed in, the note's author, the history
    ):
        assert f"<bdi>{text}</bdi>" in html, text
    assert f'<bdi dir="ltr">{email}</bdi>' in html
    assert f'<bdi dir="ltr">{req.reference}</bdi>' in html
    assert '<option value="' + str(expert.id) + '"' in html and "Dr [U+202E]Expert" in html
    queue = web.get("/staff/queue").text
    assert RLO not in queue
    assert "<bdi>Dr [U+202E]Expert</bdi>" in queue
    assert f'<bdi dir="ltr">{req.reference}</bdi>' in queue


def test_the_expert_sees_the_requesters_name_isolated_once_accepted(
    web: TestClient, db: Session
) -> None:
    expert = create_expert(db, countries=["KG"])
    req = submit(db, full_name=NAME)
    offer = db.scalar(select(Assignment).where(Assignment.request_id == req.id))
    assert offer is not None and offer.expert_id == expert.id
    flows.answer_offer(db, offer.id, expert, accept=True)
    signed_in(web, expert)
    html = web.get(f"/expert/cases/{req.reference}").text
    assert RLO not in html
    assert f"<bdi>{SHOWN}</bdi>" in html


def _pin(clock: Clock, instant: dt.datetime) -> None:
    clock.at(instant)  # clock.set counts from the suite's instant (INTAKE_TEST_NOW), not from now


def test_an_arabic_page_keeps_times_and_the_time_range_whole(
    web: TestClient, db: Session, clock: Clock
) -> None:
    """Monday 1 June 2026, 08:00 UTC: 09:00 in London (UTC+01:00). One slot, 11:30-12:15."""
    _pin(clock, dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC))
    expert = expert_with_hours(
        db, zone=LONDON, weekly=hours("11:30", "12:15"), slot_minutes=45, min_notice_minutes=0
    )
    profile = db.get(ExpertProfile, expert.id)
    assert profile is not None
    profile.public_name = f"Dr {RLO}Hours"
    reply = intake.submit(db, submission(timezone=LONDON, language="ar"))
    req = records.get_by_reference(db, reply["reference"])
    assert req is not None
    assert web.get(f"/r/{req.reference}?token={reply['access_token']}").status_code == 200
    page = web.get(f"/r/{req.reference}").text
    assert '<html lang="ar" dir="rtl">' in page
    received = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
    # In Arabic words, isolated as one piece: "الاثنين، 1 يونيو 2026 الساعة 9:00 ص (توقيت لندن)".
    assert f"<bdi>{dates.when_in_words(received, LONDON, 'ar')}</bdi>" in page  # received
    promised = received + dt.timedelta(hours=1)
    assert f"<bdi>{dates.when_in_words(promised, LONDON, 'ar')}</bdi>" in page
    assert "توقيت لندن" in page and "Europe/London" not in page
    book = web.get(f"/r/{req.reference}/book").text
    start = at(dt.date(2026, 6, 1), "11:30", LONDON).isoformat()
    booked = web.post(
        f"/r/{req.reference}/book",
        data={**hidden_fields(book), "start": start, "tz": LONDON},
        follow_redirects=False,
    )
    assert booked.status_code == 303, booked.text
    confirm = web.get(booked.headers["location"]).text  # the held time, to confirm
    assert '<html lang="ar" dir="rtl">' in confirm
    done = web.post(
        f"/r/{req.reference}/book/confirm", data=hidden_fields(confirm), follow_redirects=False
    )
    assert done.status_code == 303, done.text
    html = web.get(done.headers["location"]).text
    assert '<html lang="ar" dir="rtl">' in html
    slot_start = dt.datetime.fromisoformat(start)
    clock_from = dates.time_in_words(slot_start, LONDON, "ar")
    clock_to = dates.time_in_words(slot_start + dt.timedelta(minutes=45), LONDON, "ar")
    assert f'<bdi id="booked-time">{clock_from}\u2013{clock_to}</bdi>' in html
    assert "(<bdi>توقيت لندن</bdi>)" in html
    assert "<bdi>Dr [U+202E]Hours</bdi>" in html and RLO not in html


def test_mail_set_aside_shows_an_overriding_subject_isolated_and_visible(
    web: TestClient, db: Session
) -> None:
    set_aside.record(
        db,
        raw=b"Subject: x\r\n\r\nbody",
        message_id=f"<bidi-{RLO}@example.org>",
        reason=SetAsideReason.auto_reply,
        detail="Auto-Submitted: auto-replied",
        received_at=now(),
        via="webhook",
        sender="sender@example.org",
        subject=f"Out of {RLO}office",
    )
    db.flush()
    signed_in(web, create_user(db, role=Role.staff))
    html = web.get("/staff/inbound/set-aside").text
    assert "<bdi>Out of [U+202E]office</bdi>" in html
    assert RLO not in html
