"""Consultation invites in Spanish and Arabic: the requester's e-mail, its subject and its
calendar entry are in their language, the time in words in their language and zone
(``dates.span_in_words``); a discreet request's invite and cancellation say nothing of asylum,
consultations or experts in any part (subject, text, HTML, calendar)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.notifications import dates
from tests.factories import at, bearer, day_in, drain, expert_with_hours, iso, submit
from tests.mail_reader import clear, invites, raw_text, text_of

ZONE = "America/Mexico_City"
# Words that would tell a reader what the request is about, per language.
TELLING = {
    "es": ("asilo", "consulta", "perito", "experto", "asylum"),
    "ar": ("لجوء", "اللجوء", "استشارة", "استشارت", "خبير", "asylum"),
}
# What each invite says, per (language, discreet): greeting, the subject's words, calendar title.
EXPECTED = {
    ("es", False): (
        "Hola, Zqxinvite Applicant:",
        "Su consulta gratuita está reservada",
        "Consulta gratuita",
    ),
    ("es", True): ("Hola, Zqxinvite Applicant:", "Su cita está reservada", "Cita"),
    ("ar", False): ("مرحباً Zqxinvite Applicant،", "تم حجز استشارتكم المجانية", "استشارة مجانية"),
    ("ar", True): ("مرحباً Zqxinvite Applicant،", "تم حجز موعدكم", "موعد"),
}
CANCELLED = {
    ("es", True): "Su cita ha sido cancelada",
    ("ar", True): "أُلغي موعدكم",
    ("es", False): "Su consulta ha sido cancelada",
    ("ar", False): "أُلغيت استشارتكم",
}


def _all_words(msg: Any, calendar: Any) -> str:
    """Every part of the e-mail and its calendar, lower case, without the calendar's product
    id and event id (machine identifiers, the same in every invite)."""
    raw = raw_text(msg) + calendar.to_ical().decode()
    return re.sub(r"(?im)^(prodid|uid):.*$", "", raw).lower()


def _requester_invites(mail_dir: Path) -> list[Any]:
    return [i for i in invites(mail_dir) if str(i[0]["To"]).startswith("applicant-")]


@pytest.mark.parametrize("discreet", [False, True])
@pytest.mark.parametrize("lang", ["es", "ar"])
def test_the_invite_and_its_cancellation_in_the_requesters_language(
    client: TestClient, db: Session, mail_dir: Path, lang: str, discreet: bool
) -> None:
    expert_with_hours(db, link="https://meet.example.org/room-7")
    sub = submit(
        client,
        full_name="Zqxinvite Applicant",
        timezone=ZONE,
        language=lang,
        discreet=discreet,
    )
    drain(db)
    clear(mail_dir)
    start = at(day_in("Europe/London", 2), "10:00", "Europe/London")
    booked = client.post(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": iso(start)},
        headers=bearer(sub["access_token"]),
    )
    assert booked.status_code == 201, booked.text
    end = dt.datetime.fromisoformat(booked.json()["end_utc"])
    drain(db)
    [(msg, alternative, attachment)] = _requester_invites(mail_dir)
    greeting, subject, title = EXPECTED[(lang, discreet)]
    assert str(msg["Subject"]) == f"{subject} [{sub['reference']}]"
    text = text_of(msg)
    assert text.startswith(greeting)
    # The time in words, in the requester's language and zone: no machine time.
    assert dates.span_in_words(start, end, ZONE, lang) in text
    assert "Ciudad de México" in text if lang == "es" else "مكسيكو" in text
    assert str(alternative.walk("VEVENT")[0]["SUMMARY"]) == f"{title} [{sub['reference']}]"
    assert str(attachment.walk("VEVENT")[0]["SUMMARY"]) == f"{title} [{sub['reference']}]"
    everything = _all_words(msg, alternative)
    if discreet:
        for word in TELLING[lang]:
            assert word not in everything, word
    else:
        # The open copy does name the consultation (so the check above would see it).
        assert {"es": "consulta", "ar": "استشارة"}[lang] in everything

    clear(mail_dir)
    cancelled = client.delete(
        f"/api/v1/requests/{sub['reference']}/consultation", headers=bearer(sub["access_token"])
    )
    assert cancelled.status_code == 200, cancelled.text
    drain(db)
    [(msg, alternative, _)] = _requester_invites(mail_dir)
    assert str(msg["Subject"]) == f"{CANCELLED[(lang, discreet)]} [{sub['reference']}]"
    assert dates.when_in_words(start, ZONE, lang) in text_of(msg)
    if discreet:
        everything = _all_words(msg, alternative)
        for word in TELLING[lang]:
            assert word not in everything, word
