"""The public pages in-process: the form's contract, errors by field and language, CSRF,
honeypot and fill time, headers, the submission limit, the link's cookie, withdraw, discretion."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.settings import Settings, get_settings
from app.intake import records, service
from app.intake.schemas import SubmitIn
from app.models import IntakeRequest, RequestStatus
from tests.factories import hidden_fields, open_form, page_answers, post_form, title_of


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    s = get_settings()
    monkeypatch.setattr(s, "form_min_fill_seconds", 0.0)
    yield s


@pytest.fixture
def web(db: Session, settings: Settings) -> Iterator[TestClient]:
    """Over https: the pages' cookies are Secure, and a browser sends them only over TLS."""
    from app.main import create_app

    with TestClient(
        create_app(), base_url="https://testserver", raise_server_exceptions=False
    ) as c:
        yield c


def _count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(IntakeRequest)) or 0)


def _reference(html: str) -> str:
    found = re.search(r'id="reference" dir="ltr">([0-9A-Z]{8})<', html)
    assert found is not None, html
    return found.group(1)


def _token(html: str) -> str:
    found = re.search(r"#token=(rl_[A-Za-z0-9_-]+)", html)
    assert found is not None
    return found.group(1)


def _set_cookies(resp: Any) -> dict[str, str]:
    out = {}
    for header in resp.headers.get_list("set-cookie"):
        out[header.split("=", 1)[0]] = header
    return out


# The form's contract ---------------------------------------------------------------------


def test_the_form_has_a_control_for_every_field_the_api_takes(web: TestClient) -> None:
    html = web.get("/apply/all").text  # the one-page form (/apply asks in steps)
    names = set(re.findall(r'name="([a-z_]+)"', html))
    assert set(SubmitIn.model_fields) <= names, set(SubmitIn.model_fields) - names


def test_a_valid_form_stores_the_request_and_shows_reference_and_link(
    web: TestClient, db: Session
) -> None:
    before = _count(db)
    resp = post_form(
        web,
        requester_type="law_firm",
        law_firm_name="Smith & Partners",
        contact_name="Jo Smith",
        preferred_channel="whatsapp",
        whatsapp="+44 7911 123456",
        phone="020 7946 0958",
        topics=["political_repression", "freedom_of_speech"],
        consent_updates=["organisation_news"],
        case_summary="Posts on social media.",
        deadline="2099-01-31",
        discreet="on",
        language="ru",
    )
    assert resp.status_code == 200, resp.text
    assert _count(db) == before + 1
    reference, token = _reference(resp.text), _token(resp.text)
    req = service.authenticate_requester(db, reference, token)  # the link works
    assert req.requester_type.value == "law_firm" and req.preferred_channel.value == "whatsapp"
    assert req.topics == ["political_repression", "freedom_of_speech"]
    assert req.consent_updates == ["organisation_news"] and req.discreet is True
    assert req.language == "ru" and str(req.deadline) == "2099-01-31"
    pii = records.reveal_pii(req)
    assert pii is not None
    assert pii["phone"] == "+442079460958" and pii["law_firm_name"] == "Smith & Partners"
    assert f"/r/{reference}#token={token}" in resp.text
    assert "shown only once" in resp.text


def test_sending_the_same_page_twice_replays_the_first_reply(web: TestClient, db: Session) -> None:
    hidden = open_form(web)
    body = {**hidden, **page_answers()}
    first = web.post("/apply", data=body)
    second = web.post("/apply", data=body)
    assert first.status_code == second.status_code == 200
    assert _reference(first.text) == _reference(second.text)
    assert _token(first.text) == _token(second.text)


def test_mistakes_come_back_next_to_each_field_with_the_answers_kept(
    web: TestClient, db: Session
) -> None:
    before = _count(db)
    resp = post_form(
        web,
        full_name="",
        email="not-an-address",
        preferred_channel="phone",
        phone="",
        consent_data_processing=...,
        wants=[],
        country_of_origin="QQ",
        case_summary="kept text",
    )
    assert resp.status_code == 422
    assert _count(db) == before
    html = resp.text
    for field in ("full_name", "email", "phone", "consent_data_processing", "wants"):
        assert f'id="f-{field}-error"' in html, field
    for field in ("full_name", "email", "phone"):
        control = re.search(rf'<input id="f-{field}"[^>]*>', html)
        assert control is not None
        assert 'aria-invalid="true"' in control.group(0)
        assert f"f-{field}-error" in control.group(0)  # aria-describedby names the message
    assert "Write a valid e-mail address" in html
    assert "Required, because it is your preferred way to be contacted." in html
    assert "kept text" in html and 'value="not-an-address"' in html
    assert title_of(html).startswith("Error: ")
    assert 'id="error-summary"' in html


def test_errors_are_in_the_page_language(web: TestClient) -> None:
    hidden = open_form(web, "/apply?lang=ru")
    resp = web.post("/apply?lang=ru", data={**hidden, **page_answers(email="nope", full_name="")})
    assert resp.status_code == 422
    assert "Укажите правильный адрес электронной почты" in resp.text
    assert "Это поле обязательно." in resp.text
    assert "Write a valid e-mail address" not in resp.text
    hidden = open_form(web, "/apply?lang=ar")
    resp = web.post("/apply?lang=ar", data={**hidden, **page_answers(deadline="2001-01-01")})
    assert "هذا التاريخ في الماضي" in resp.text


# CSRF, honeypot, fill time ---------------------------------------------------------------


def test_a_post_without_the_csrf_cookie_or_token_is_refused(web: TestClient, db: Session) -> None:
    before = _count(db)
    hidden = open_form(web)
    wrong = web.post("/apply", data={**hidden, **page_answers(), "csrf_token": "forged"})
    assert wrong.status_code == 403
    assert "Please try again" in wrong.text
    web.cookies.clear()
    no_cookie = web.post("/apply", data={**hidden, **page_answers()})
    assert no_cookie.status_code == 403
    assert _count(db) == before
    ok = post_form(web)  # a fresh page works again
    assert ok.status_code == 200


def test_the_honeypot_and_a_too_fast_submission_store_nothing(
    web: TestClient, db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _count(db)
    bot = post_form(web, website="http://spam.example")
    assert bot.status_code == 422
    assert "Please take a moment" in bot.text
    assert 'name="website" type="text" value=""' in bot.text  # not echoed back
    monkeypatch.setattr(settings, "form_min_fill_seconds", 60.0)
    fast = post_form(web, full_name="Quick Typist")
    assert fast.status_code == 422 and "Please take a moment" in fast.text
    assert 'value="Quick Typist"' in fast.text
    assert _count(db) == before
    monkeypatch.setattr(settings, "form_min_fill_seconds", 0.0)
    forged = web.post(
        "/apply", data={**hidden_fields(fast.text), **page_answers(), "form_stamp": "1.x"}
    )
    assert forged.status_code == 422 and _count(db) == before
    again = web.post("/apply", data={**hidden_fields(fast.text), **page_answers()})
    assert again.status_code == 200 and _count(db) == before + 1


# Headers -----------------------------------------------------------------------------------


def test_strict_headers_on_pages_and_hsts_only_over_https(
    db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.main import create_app

    app = create_app()
    with TestClient(app, base_url="https://testserver") as tls:
        resp = tls.get("/apply")
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["strict-transport-security"].startswith("max-age=")
        assert "<script>" not in resp.text and "style=" not in resp.text
    with TestClient(app, base_url="http://testserver") as plain:
        assert "strict-transport-security" not in plain.get("/apply").headers
        forwarded = plain.get("/privacy", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in forwarded.headers  # proxy not trusted
        monkeypatch.setattr(settings, "trust_proxy_headers", True)
        trusted = plain.get("/privacy", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" in trusted.headers
        js = plain.get("/static/public.js")
        assert js.status_code == 200 and "location.replace" in js.text


# Submission limit --------------------------------------------------------------------------


def test_submissions_per_address_are_limited_with_429_and_retry_after(
    web: TestClient, db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.factories import form

    monkeypatch.setattr(settings, "submit_rate_limit", 2)
    assert web.post("/api/v1/requests", json=form()).status_code == 201
    assert post_form(web).status_code == 200  # the page counts towards the same limit
    api = web.post("/api/v1/requests", json=form())
    assert api.status_code == 429
    assert 1 <= int(api.headers["retry-after"]) <= settings.submit_rate_window_minutes * 60
    assert api.json()["error"]["code"] == "too_many_requests"
    page = post_form(web)
    assert page.status_code == 429 and int(page.headers["retry-after"]) >= 1
    assert "Please wait" in page.text


# Language ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "accept", "lang", "direction"),
    [
        ("", "", "en", "ltr"),
        ("", "ar-EG,ar;q=0.9,en;q=0.5", "ar", "rtl"),
        ("", "de-DE, es;q=0.8, ru;q=0.9", "ru", "ltr"),
        ("", "ru;q=0, es;q=0.1", "es", "ltr"),
        ("?lang=es", "ar", "es", "ltr"),
        ("?lang=xx", "ar", "ar", "rtl"),
    ],
)
def test_language_from_the_url_else_accept_language_else_english(
    web: TestClient, query: str, accept: str, lang: str, direction: str
) -> None:
    resp = web.get(f"/apply{query}", headers={"Accept-Language": accept} if accept else {})
    assert f'<html lang="{lang}" dir="{direction}">' in resp.text


# The requester's link, cookie, page, withdraw ---------------------------------------------


def _submitted(web: TestClient, **overrides: Any) -> tuple[str, str, str]:
    resp = post_form(web, **overrides)
    assert resp.status_code == 200, resp.text
    return _reference(resp.text), _token(resp.text), resp.text


def test_the_link_sets_a_strict_cookie_for_its_path_and_redirects_to_a_clean_url(
    web: TestClient, db: Session
) -> None:
    reference, token, _ = _submitted(web)
    web.cookies.clear()
    resp = web.get(f"/r/{reference}?token={token}", follow_redirects=False)
    # A same-site refresh to the clean URL (a redirect would lose a Strict cookie after a
    # click on another site; the browser test proves that case).
    assert resp.status_code == 200
    assert f'<meta http-equiv="refresh" content="0; url=/r/{reference}">' in resp.text
    assert token not in resp.text
    cookie = _set_cookies(resp)["requester_link"]
    for flag in ("HttpOnly", "Secure", "SameSite=strict", f"Path=/r/{reference}"):
        assert flag.lower() in cookie.lower(), (flag, cookie)
    page = web.get(f"/r/{reference}")
    assert page.status_code == 200
    assert 'data-status="new"' in page.text
    assert web.get("/privacy").status_code == 200
    web.cookies.clear()
    csrf = _set_cookies(web.get("/apply"))["csrf"].lower()  # strictly necessary, same flags
    for flag in ("httponly", "secure", "samesite=strict", "path=/"):
        assert flag in csrf
    assert "max-age" not in csrf and "expires" not in csrf  # gone when the browser closes


def test_wrong_tokens_are_404_and_no_cookie_shows_only_the_open_form(
    web: TestClient, db: Session
) -> None:
    reference, token, _ = _submitted(web)
    _other_ref, other_token, _ = _submitted(web)
    web.cookies.clear()
    assert web.get(f"/r/{reference}?token={other_token}").status_code == 404
    assert web.get(f"/r/{reference}?token=rl_wrong").status_code == 404
    assert web.get("/r/not-a-ref").status_code == 404
    opened = web.get(f"/r/{reference}")
    assert opened.status_code == 200 and 'data-status="' not in opened.text
    assert "data-auto-open" in opened.text
    # Another request's token in this request's cookie: the open form, never the request.
    mixed = web.get(f"/r/{reference}", headers={"Cookie": f"requester_link={other_token}"})
    assert 'data-status="' not in mixed.text
    own = web.get(f"/r/{reference}", headers={"Cookie": f"requester_link={token}"})
    assert 'data-status="new"' in own.text


def test_the_open_form_takes_a_pasted_link(web: TestClient, db: Session) -> None:
    reference, token, _html = _submitted(web)
    web.cookies.delete("requester_link")
    hidden = open_form(web, f"/r/{reference}")
    pasted = f"https://example.org/r/{reference}#token={token}"
    resp = web.post(
        f"/r/{reference}/open", data={**hidden, "token": pasted}, follow_redirects=False
    )
    assert resp.status_code == 303 and resp.headers["location"] == f"/r/{reference}"
    assert "requester_link" in _set_cookies(resp)
    wrong = web.post(f"/r/{reference}/open", data={**hidden, "token": "rl_" + "x" * 43})
    assert wrong.status_code == 404
    no_csrf = web.post(f"/r/{reference}/open", data={"token": token})
    assert no_csrf.status_code == 403


def test_withdraw_needs_the_cookie_csrf_and_a_confirmation(web: TestClient, db: Session) -> None:
    reference, token, _ = _submitted(web)
    web.get(f"/r/{reference}?token={token}")
    hidden = hidden_fields(web.get(f"/r/{reference}").text)
    unconfirmed = web.post(f"/r/{reference}/withdraw", data=hidden)
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    forged = web.post(f"/r/{reference}/withdraw", data={"confirm": "yes", "csrf_token": "x"})
    assert forged.status_code == 403
    req = records.get_by_reference(db, reference)
    assert req is not None
    db.refresh(req)
    assert req.status == RequestStatus.new
    done = web.post(f"/r/{reference}/withdraw", data={**hidden, "confirm": "yes"})
    assert done.status_code == 200 and "Your request is withdrawn" in done.text
    assert 'data-status="withdrawn"' in done.text
    assert 'id="withdraw"' not in done.text and 'id="booking"' not in done.text
    db.refresh(req)
    assert req.status.value == "withdrawn"
    web.cookies.clear()
    assert web.post(f"/r/{reference}/withdraw", data={"confirm": "yes"}).status_code == 404


def test_forget_removes_the_cookie(web: TestClient, db: Session) -> None:
    reference, token, _ = _submitted(web)
    web.get(f"/r/{reference}?token={token}")
    hidden = hidden_fields(web.get(f"/r/{reference}").text)
    resp = web.post(f"/r/{reference}/forget", data=hidden, follow_redirects=False)
    assert resp.status_code == 303
    cookie = _set_cookies(resp)["requester_link"]
    assert "max-age=0" in cookie.lower() and f"Path=/r/{reference}" in cookie


# Discretion --------------------------------------------------------------------------------


def test_titles_of_a_discreet_request_never_say_asylum(web: TestClient, db: Session) -> None:
    reference, token, html = _submitted(web, discreet="on")
    assert "asylum" not in title_of(html).lower()
    web.get(f"/r/{reference}?token={token}")
    page = web.get(f"/r/{reference}").text
    assert title_of(page) == "Your request"
    assert "asylum" not in title_of(web.get(f"/r/{reference}?lang=ru").text).lower()
    open_ref, open_token, _open_html = _submitted(web)
    web.get(f"/r/{open_ref}?token={open_token}")
    assert "asylum" in title_of(web.get(f"/r/{open_ref}").text).lower()
    assert "убежищ" in title_of(web.get(f"/r/{open_ref}?lang=ru").text)


# The organisation's own "Apply Now" button and the form's size ------------------------------


def test_the_organisations_site_may_post_to_the_api_when_its_origin_is_listed(
    db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.main import create_app
    from tests.factories import form

    monkeypatch.setattr(settings, "cors_origins", ["https://www.example.org"])
    with TestClient(create_app(), base_url="https://testserver") as c:
        preflight = c.options(
            "/api/v1/requests",
            headers={
                "Origin": "https://www.example.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,idempotency-key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://www.example.org"
        posted = c.post(
            "/api/v1/requests", json=form(), headers={"Origin": "https://www.example.org"}
        )
        assert posted.status_code == 201
        assert "retry-after" in posted.headers["access-control-expose-headers"].lower()
        stranger = c.options(
            "/api/v1/requests",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in stranger.headers


def test_an_over_large_form_is_refused_before_it_is_read(web: TestClient, db: Session) -> None:
    hidden = open_form(web)
    limit = get_settings().max_request_body_bytes
    big = "x" * (limit + 10)
    resp = web.post("/apply", data={**hidden, **page_answers(case_summary=big)})
    assert resp.status_code == 413
    # The requester's page forms too, with or without a declared length.
    declared = web.post("/r/ABCD1234/open", data={"token": big})
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 4096 + 2):
            yield b"token=" + b"x" * 4096

    streamed = web.post(
        "/r/ABCD1234/withdraw",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
    small = web.post("/r/ABCD1234/open", data={"token": "rl_x"})
    assert small.status_code == 403  # read and judged: no CSRF token


def test_every_public_page_has_the_quick_exit_link(
    web: TestClient, db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "quick_exit_url", "https://weather.example/today")
    exit_link = 'id="quick-exit" class="quick-exit" href="https://weather.example/today"'
    reference, token, confirmation = _submitted(web)
    pages = {
        "confirmation": confirmation,
        "apply": web.get("/apply?lang=ar").text,
        "privacy": web.get("/privacy").text,
        "open": web.get(f"/r/{reference}").text,
        "not found": web.get("/r/0000000").text,
        "continue": web.get(f"/r/{reference}?token={token}").text,
        "request": web.get(f"/r/{reference}").text,
    }
    assert 'id="book-link"' in pages["request"]  # booking: tests/web/test_web_booking.py
    for name, html in pages.items():
        assert exit_link in html, name
        assert '<script src="/static/public.js" defer></script>' in html, name


def test_anonymous_visitors_get_only_the_strictly_necessary_cookie(web: TestClient) -> None:
    web.cookies.clear()
    names: set[str] = set()
    for path in ("/apply", "/apply?lang=ar", "/privacy", "/r/ABCD1234", "/static/public.css"):
        names |= set(_set_cookies(web.get(path)))
    assert names == {"csrf"}
