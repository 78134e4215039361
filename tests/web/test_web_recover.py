"""The lost-link page (/recover) in-process: one answer whatever matches, the e-mail only on a
match, CSRF, honeypot, the submission limit, errors at the top, links from every requester page,
and the wait told in a full sentence."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.settings import Settings, get_settings
from app.web.public import wait_text
from tests.factories import drain, form, hidden_fields
from tests.mail_reader import clear, messages, text_of


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


def _submitted(web: TestClient, email: str) -> dict[str, Any]:
    """The API's reply to a request sent through it (reference, access token)."""
    resp = web.post("/api/v1/requests", json=form(email=email))
    assert resp.status_code == 201, resp.text
    reply: dict[str, Any] = resp.json()
    return reply


def _recover(web: TestClient, reference: str, email: str, lang: str = "en", **extra: str) -> Any:
    hidden = hidden_fields(web.get(f"/recover?lang={lang}").text)
    return web.post(
        f"/recover?lang={lang}",
        data={**hidden, "reference": reference, "email": email, **extra},
        follow_redirects=False,
    )


def _main(html: str) -> str:
    """The page's <main>, without the per-page CSRF token."""
    found = re.search(r"<main.*</main>", html, re.S)
    assert found is not None
    return re.sub(r'name="csrf_token" value="[^"]*"', "", found.group(0))


def test_the_same_answer_whether_or_not_reference_and_address_match(
    web: TestClient, db: Session, mail_dir: Path
) -> None:
    body = _submitted(web, "stored@example.org")
    drain(db)
    clear(mail_dir)
    match = _recover(web, body["reference"].lower(), "Stored@Example.org")
    wrong_address = _recover(web, body["reference"], "someone@example.org")
    unknown = _recover(web, "ZZZZZZZZ", "stored@example.org")
    answers = [match, wrong_address, unknown]
    assert {r.status_code for r in answers} == {303}
    assert {r.headers["location"] for r in answers} == {"/recover?lang=en&sent=1#recover-sent"}
    pages = {_main(web.get(r.headers["location"]).text) for r in answers}
    assert len(pages) == 1
    assert "If the reference and the e-mail address match" in pages.pop()
    # Only the match sent anything, and only to the stored address.
    assert drain(db) == 1
    (msg,) = messages(mail_dir)
    assert msg["To"] == "stored@example.org"
    assert f"#token={body['access_token']}" in text_of(msg)


def test_a_post_without_the_csrf_token_is_refused_and_sends_nothing(
    web: TestClient, db: Session, mail_dir: Path
) -> None:
    body = _submitted(web, "csrf@example.org")
    drain(db)
    clear(mail_dir)
    web.get("/recover")
    forged = web.post(
        "/recover",
        data={"reference": body["reference"], "email": "csrf@example.org", "csrf_token": "x"},
    )
    assert forged.status_code == 403
    assert drain(db) == 0


def test_a_filled_honeypot_gets_the_same_answer_and_sends_nothing(
    web: TestClient, db: Session, mail_dir: Path
) -> None:
    body = _submitted(web, "bot@example.org")
    drain(db)
    clear(mail_dir)
    resp = _recover(web, body["reference"], "bot@example.org", website="http://spam")
    assert resp.status_code == 303 and resp.headers["location"].endswith("sent=1#recover-sent")
    assert drain(db) == 0


def test_recovery_attempts_per_address_are_limited_with_a_sentence_to_wait(
    web: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "submit_rate_limit", 2)
    assert _recover(web, "ABCDEFGH", "a@example.org").status_code == 303
    assert _recover(web, "ABCDEFGH", "a@example.org").status_code == 303
    over = _recover(web, "ABCDEFGH", "a@example.org", lang="ru")
    assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
    wait = re.search(r'<span id="wait">(.*?)</span>', over.text)
    assert wait is not None and re.fullmatch(r"Попробуйте снова через \d+ минут[уы]?\.", wait[1])


def test_mistakes_come_back_in_a_focused_summary_linking_to_each_field(web: TestClient) -> None:
    resp = _recover(web, "", "not an address", lang="es")
    assert resp.status_code == 422
    html = resp.text
    summary = html.index('id="error-summary"')
    assert summary < html.index('id="recover-form"')
    assert re.search(r'<div class="error-summary"[^>]*tabindex="-1"[^>]*autofocus', html)
    assert 'href="#f-reference"' in html and 'href="#f-email"' in html
    assert 'id="f-reference-error"' in html and 'id="f-email-error"' in html
    assert 'value="not an address"' in html  # what was typed stays


@pytest.mark.parametrize(
    ("lang", "seconds", "sentence"),
    [
        ("en", 1, "Please try again in 1 minute."),
        ("en", 61, "Please try again in 2 minutes."),
        ("ru", 60 * 5, "Попробуйте снова через 5 минут."),
        ("ru", 60 * 2, "Попробуйте снова через 2 минуты."),
        ("ru", 60 * 21, "Попробуйте снова через 21 минуту."),
    ],
)
def test_the_wait_is_a_full_sentence_with_the_right_plural(
    lang: str, seconds: int, sentence: str
) -> None:
    assert wait_text(lang, seconds) == sentence


def test_every_requester_page_links_to_the_recovery_page_in_its_language(
    web: TestClient,
) -> None:
    for lang in ("en", "ru", "ar"):
        for url in (f"/apply?lang={lang}", f"/recover?lang={lang}", f"/r/ABCDEFGH?lang={lang}"):
            html = web.get(url).text
            assert f'id="recover-link" href="/recover?lang={lang}"' in html, url
