# ruff: noqa: RUF001 - Russian and Arabic words and the en dash on purpose
"""Staff and expert e-mails write times in words, in the recipient's own language and zone (their
account's settings; an expert's zone is their profile's), as requesters read them: no machine
"2027-03-28 01:30" anywhere. The suite's instant is the night Europe's clocks go forward
(01:00 UTC on 28 March 2027): received at 01:30 Berlin winter time, due at 03:30 summer time.
The expected words are written out here, not computed with the service's helper."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.models import Assignment, Role
from app.sla import scheduling as sla_scheduling
from tests.conftest import Clock
from tests.factories import (
    at,
    bearer,
    create_expert,
    create_user,
    day_in,
    drain,
    drain_all,
    expert_with_hours,
    iso,
    make_request,
    submit,
)
from tests.mail_reader import Mail, take

INSTANT = dt.datetime(2027, 3, 28, 0, 30, tzinfo=dt.UTC)  # 01:30 in Berlin, 30 min to the switch
BERLIN = "Europe/Berlin"
# A machine's time ("2027-03-28 01:30", "2027-03-28T01:30") or the old "(UTC+01:00)" label.
MACHINE = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}|\(UTC[+-]\d{2}:\d{2}\)")
# received (before the clocks go forward) and due (after), in each language's words.
RECEIVED_DUE = {
    "ru": (
        "воскресенье, 28 марта 2027 г. в 01:30 (часовой пояс: Берлин)",
        "воскресенье, 28 марта 2027 г. в 03:30 (часовой пояс: Берлин)",
    ),
    "ar": (
        "الأحد، 28 مارس 2027 الساعة 1:30 ص (توقيت برلين)",
        "الأحد، 28 مارس 2027 الساعة 3:30 ص (توقيت برلين)",
    ),
}
MONTH_DAY = {"ru": "марта 2027 г.", "ar": "مارس 2027"}
CITY = {"ru": "(часовой пояс: Берлин)", "ar": "(توقيت برلين)"}


def _flat(text: str) -> str:
    return " ".join(text.split())


def _only_words(found: list[Mail]) -> None:
    assert found
    for to, subject, body in found:
        assert not MACHINE.search(subject + "\n" + body), (to, subject, MACHINE.search(body))


@pytest.mark.parametrize("lang", ["ru", "ar"])
def test_a_staff_reminder_across_the_clock_change_is_in_words_in_the_readers_language(
    db: Session, clock: Clock, mail_dir: Path, lang: str
) -> None:
    clock.at(INSTANT)
    staff = create_user(db, role=Role.staff)
    accounts.update_settings(db, staff, timezone=BERLIN, language=lang)
    req = make_request(db, country="CN", region="east_asia")  # no expert of the region
    sla_scheduling.schedule(db, req)
    take(mail_dir)
    clock.advance(minutes=31)
    drain_all(db)
    found = [m for m in take(mail_dir, "Reminder:") if m[0] == staff.email]
    assert len(found) == 1
    received, due = RECEIVED_DUE[lang]
    body = _flat(found[0][2])
    assert received in body and due in body
    _only_words(found)


@pytest.mark.parametrize("lang", ["ru", "ar"])
def test_an_offer_to_an_expert_says_when_to_answer_in_their_words(
    db: Session, clock: Clock, mail_dir: Path, lang: str
) -> None:
    clock.at(INSTANT)
    expert = create_expert(db, countries=["KG"], languages=["ru"])
    accounts.update_settings(db, expert, timezone=BERLIN, language=lang)
    req = submit(db)
    a = db.scalar(select(Assignment).where(Assignment.request_id == req.id))
    assert a is not None and a.expert_id == expert.id
    drain(db)
    found = [m for m in take(mail_dir) if m[0] == expert.email]
    assert len(found) == 1
    body = _flat(found[0][2])
    local = a.respond_by.astimezone(zoneinfo.ZoneInfo(BERLIN))
    assert f"28 {MONTH_DAY[lang]}" in body and CITY[lang] in body
    assert (f"{local:%H:%M}" if lang == "ru" else f"{local.hour}:{local:%M}") in body
    _only_words(found)


@pytest.mark.parametrize("lang", ["ru", "ar"])
def test_the_experts_booking_and_reminder_e_mails_are_in_their_words(
    client: TestClient, db: Session, clock: Clock, mail_dir: Path, lang: str
) -> None:
    clock.at(INSTANT)
    expert = expert_with_hours(db, zone="Europe/London")  # hours 09:00-12:00 London
    accounts.update_settings(db, expert, timezone=BERLIN, language=lang)
    sub = submit(client, full_name="Zqxwords Applicant", timezone="Europe/London")
    start = at(day_in("Europe/London", 3), "10:00", "Europe/London")  # 11:00 in Berlin
    booked = client.post(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": iso(start)},
        headers=bearer(sub["access_token"]),
    )
    assert booked.status_code == 201, booked.text
    drain(db)
    invite = [m for m in take(mail_dir) if m[0] == expert.email]
    assert len(invite) == 1
    body = _flat(invite[0][2])
    assert CITY[lang] in body
    assert ("11:00–12:00" if lang == "ru" else "11:00 ص–12:00 م") in body
    _only_words(invite)

    clock.at(start - dt.timedelta(minutes=59))
    drain_all(db)
    reminder = [m for m in take(mail_dir) if m[0] == expert.email]
    assert reminder, "the expert is reminded of the consultation"
    assert all(CITY[lang] in _flat(body) for _, _, body in reminder)
    _only_words(reminder)
