"""The application form in steps, in-process: each step's checks, answers kept on back and
forward, the law firm's step only for law firms, the same protection as the one-page form
(CSRF, honeypot, fill time, the submission limit, the body limit), the draft in the browser
(encrypted, bound to the browser session, expiring; a changed or expired one refused), and a
full application through the steps storing exactly what the one-page form stores."""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from app.core.settings import Settings, get_settings
from app.intake import records
from app.intake.schemas import SubmitIn
from app.models import IntakeRequest
from app.web import apply_draft
from app.web.security import csrf_token
from tests.conftest import Clock
from tests.factories import open_form, title_of

MAX_BODY = 2048


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    s = get_settings()
    monkeypatch.setattr(s, "form_min_fill_seconds", 0.0)
    monkeypatch.setattr(s, "max_request_body_bytes", 65536)
    yield s


@pytest.fixture
def web(db: Session, settings: Settings) -> Iterator[TestClient]:
    """Over https: the draft's and the CSRF cookies are Secure."""
    from app.main import create_app

    with TestClient(
        create_app(), base_url="https://testserver", raise_server_exceptions=False
    ) as c:
        yield c


WHO = {"requester_type": "applicant", "full_name": "Aigerim Stepwise"}
FIRM = {"law_firm_name": "Smith & Partners", "contact_name": "Jo Smith"}
CONTACT = {
    "country_of_residence": "GB",
    "email": "steps@example.org",
    "preferred_channel": "email",
    "language": "ru",
    "timezone": "Europe/London",
}
CASE = {"country_of_origin": "KG", "case_stage": "filed_pending"}
NEEDS = {"wants": ["consultation"]}
SEND = {"consent_data_processing": "on"}


def _count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(IntakeRequest)) or 0)


def _token(web: TestClient) -> dict[str, str]:
    """The form's CSRF token of this browser (its ``csrf`` cookie set by a page first)."""
    value = next((c.value for c in web.cookies.jar if c.name == "csrf"), None)
    if value is None:
        assert web.get("/apply/all").status_code == 200
        value = next(c.value for c in web.cookies.jar if c.name == "csrf")
    return {"csrf_token": csrf_token(str(value))}


def post(web: TestClient, step: str, answers: dict[str, Any], lang: str = "en", **kw: Any) -> Any:
    query = f"?lang={lang}" + ("&change=1" if kw.pop("change", False) else "")
    data = {**_token(web), **answers}
    return web.post(f"/apply/{step}{query}", data=data, follow_redirects=False, **kw)


def go(web: TestClient, *steps: tuple[str, dict[str, Any]], lang: str = "en") -> Any:
    """Answer ``steps`` in order, each must lead on (303); the last answer."""
    resp = None
    for step, answers in steps:
        resp = post(web, step, answers, lang)
        assert resp.status_code == 303, (step, resp.status_code, _errors(resp.text))
    return resp


def applicant(web: TestClient, lang: str = "en") -> None:
    go(web, ("who", WHO), ("contact", CONTACT), ("case", CASE), ("needs", NEEDS), lang=lang)


def _errors(html: str) -> dict[str, str]:
    """Field id -> message of the errors next to the fields."""
    found = re.findall(r'<p class="field-error" id="f-([a-z_]+)-error">(.*?)</p>', html, re.S)
    return {
        name: unescape(re.sub(r'<span class="visually-hidden">.*?</span>', "", text)).strip()
        for name, text in found
    }


def _summary(html: str) -> list[str]:
    """The error summary's links (#field)."""
    box = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert box is not None, html
    assert "autofocus" in box.group(0) and 'tabindex="-1"' in box.group(0)
    return re.findall(r'<a href="#f-([a-z_]+)"', box.group(0))


def _value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" type="[a-z]+" value="([^"]*)"', html)
    assert found is not None, name
    return found.group(1)


def _reference(html: str) -> str:
    found = re.search(r'id="reference" dir="ltr">([0-9A-Z]{8})<', html)
    assert found is not None, html[:3000]
    return found.group(1)


# Each step's checks ------------------------------------------------------------------------


def test_apply_starts_with_who_you_are_and_needs_no_answers_before(web: TestClient) -> None:
    first = web.get("/apply?lang=en")
    assert first.status_code == 200
    assert title_of(first.text) == "Who you are"
    assert 'action="/apply/who?lang=en"' in first.text  # POST /apply stays the one-page form's
    assert "Step 1 of 6" in first.text and 'id="back-link"' not in first.text
    # No later step before the first is answered.
    for step in ("contact", "case", "needs", "check", "send"):
        resp = web.get(f"/apply/{step}?lang=en", follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == "/apply?lang=en", step


def test_the_steps_together_ask_every_field_the_api_takes_each_once(web: TestClient) -> None:
    post(web, "who", {**WHO, "requester_type": "law_firm"})
    go(web, ("firm", FIRM), ("contact", CONTACT), ("case", CASE), ("needs", NEEDS))
    asked: list[str] = []
    for step in ("who", "firm", "contact", "case", "needs", "send"):
        page = web.get("/apply?lang=en" if step == "who" else f"/apply/{step}?lang=en").text
        form = page[page.index('id="apply-step"') :]
        asked += sorted(set(re.findall(r'name="([a-z_]+)"', form)) - {"csrf_token", "website"})
    assert sorted(asked) == sorted(SubmitIn.model_fields), asked


@pytest.mark.parametrize(
    ("step", "before", "answers", "expected"),
    [
        ("who", [], {"requester_type": "applicant"}, {"full_name": "This field is required."}),
        (
            "who",
            [],
            {"full_name": "X", "requester_type": "robot"},
            {"requester_type": "Choose from the options."},
        ),
        (
            "contact",
            [("who", WHO)],
            {**CONTACT, "email": "nope", "preferred_channel": "phone"},
            {
                "email": "Write a valid e-mail address, like name@example.org.",
                "phone": "Required, because it is your preferred way to be contacted.",
            },
        ),
        (
            "contact",
            [("who", WHO)],
            {**CONTACT, "timezone": "", "country_of_residence": "QQ"},
            {
                "timezone": "Choose one of the options.",
                "country_of_residence": "Choose a country from the list.",
            },
        ),
        (
            "case",
            [("who", WHO), ("contact", CONTACT)],
            {**CASE, "deadline": "2001-01-01", "case_stage": ""},
            {
                "case_stage": "Choose one of the options.",
                "deadline": "The date is in the past. Give today's date or a later one.",
            },
        ),
        (
            "needs",
            [("who", WHO), ("contact", CONTACT), ("case", CASE)],
            {},
            {"wants": "Choose at least one."},
        ),
    ],
)
def test_each_step_checks_its_own_answers_and_names_each_field(
    web: TestClient,
    step: str,
    before: list[tuple[str, dict[str, Any]]],
    answers: dict[str, Any],
    expected: dict[str, str],
) -> None:
    go(web, *before)
    resp = post(web, step, answers)
    assert resp.status_code == 422
    assert _errors(resp.text) == expected
    assert set(_summary(resp.text)) == set(expected)  # on top, focused, each naming its field
    assert title_of(resp.text).startswith("Error: ")
    assert resp.text.index('id="error-summary"') < resp.text.index('id="apply-step"')
    # Nothing of the refused step was kept: its page shows it is still to answer.
    nxt = web.get(f"/apply/{step}?lang=en", follow_redirects=False)
    assert nxt.status_code == 200 and 'id="error-summary"' not in nxt.text


def test_replies_are_in_the_page_language_unless_the_person_chooses(web: TestClient) -> None:
    go(web, ("who", WHO), lang="es")
    assert '<option value="es" selected>' in web.get("/apply/contact?lang=es").text


def test_a_national_phone_number_is_read_for_the_country_of_residence(web: TestClient) -> None:
    go(web, ("who", WHO))
    answers = {**CONTACT, "preferred_channel": "phone", "phone": "020 7946 0958"}
    assert post(web, "contact", answers).headers["location"] == "/apply/case?lang=en"


def test_consent_is_asked_last_and_nothing_is_stored_without_it(
    web: TestClient, db: Session
) -> None:
    applicant(web)
    before = _count(db)
    resp = post(web, "send", {})
    assert resp.status_code == 422
    assert _errors(resp.text) == {
        "consent_data_processing": (
            "We can only handle your request with your consent. Tick the box to agree."
        )
    }
    assert _summary(resp.text) == ["consent_data_processing"]
    assert _count(db) == before


# Back and forward --------------------------------------------------------------------------


def test_back_and_forward_keep_every_answer(web: TestClient) -> None:
    go(web, ("who", WHO), ("contact", {**CONTACT, "phone": "+44 20 7946 0958", "discreet": "on"}))
    case = {**CASE, "topics": ["corruption", "war_crimes"], "case_summary": "Posts & <b>"}
    go(web, ("case", case))
    who = web.get("/apply?lang=en").text  # back to the start
    assert _value(who, "full_name") == "Aigerim Stepwise"
    assert 'value="applicant" checked' in who
    contact = web.get("/apply/contact?lang=en").text
    assert _value(contact, "email") == "steps@example.org"
    assert _value(contact, "phone") == "+44 20 7946 0958"
    assert 'name="discreet" value="on" checked' in contact
    assert '<option value="Europe/London" selected>' in contact
    assert '<a class="back-link" id="back-link" href="/apply?lang=en">' in contact
    case_page = web.get("/apply/case?lang=en").text
    assert 'value="corruption" checked' in case_page and 'value="war_crimes" checked' in case_page
    assert "Posts &amp; &lt;b&gt;</textarea>" in case_page
    assert 'href="/apply/contact?lang=en">' in case_page  # its back link
    # Forward again: the next unanswered step is still there to answer, later ones wait.
    assert web.get("/apply/needs?lang=en").status_code == 200
    later = web.get("/apply/check?lang=en", follow_redirects=False)
    assert later.status_code == 303 and later.headers["location"] == "/apply/needs?lang=en"
    # Answering a step again replaces its answers and leads on.
    again = post(web, "who", {**WHO, "full_name": "Aigerim Renamed"})
    assert again.headers["location"] == "/apply/contact?lang=en"
    assert _value(web.get("/apply?lang=en").text, "full_name") == "Aigerim Renamed"


def test_check_your_answers_lists_each_answer_with_a_change_link_back_to_its_step(
    web: TestClient,
) -> None:
    applicant(web)
    page = web.get("/apply/check?lang=en")
    assert page.status_code == 200 and title_of(page.text) == "Check your answers"
    rows = dict(re.findall(r"<dt>(.*?)</dt>\s*<dd[^>]*>(.*?)</dd>", page.text, re.S))
    assert rows["Full name of the applicant"] == "Aigerim Stepwise"
    assert rows["Country the person fears returning to"] == "Kyrgyzstan"
    assert rows["Language for our replies"] == "Russian"
    assert rows["What you would like"].startswith("A free consultation")
    assert rows["Phone number"] == "Not given"
    assert "Name of the law firm" not in rows
    assert 'href="/apply/contact?lang=en&amp;change=1#f-email" id="change-email"' in page.text
    assert 'href="/apply?lang=en&amp;change=1#f-full_name"' in page.text
    assert 'id="continue" href="/apply/send?lang=en"' in page.text
    # A change goes back to the check page; its back link too.
    change = web.get("/apply/contact?lang=en&change=1").text
    assert 'id="back-link" href="/apply/check?lang=en"' in change
    assert 'action="/apply/contact?lang=en&amp;change=1"' in change
    moved = post(web, "contact", {**CONTACT, "email": "changed@example.org"}, change=True)
    assert moved.headers["location"] == "/apply/check?lang=en"
    assert "changed@example.org" in web.get("/apply/check?lang=en").text


# The law firm's questions ------------------------------------------------------------------


def test_law_firm_questions_are_asked_only_of_law_firms(web: TestClient) -> None:
    # An applicant never sees them: no step, no field, no row.
    first = post(web, "who", WHO)
    assert first.headers["location"] == "/apply/contact?lang=en"
    for page in ("/apply?lang=en", "/apply/contact?lang=en"):
        assert 'name="law_firm_name"' not in web.get(page).text
    skipped = web.get("/apply/firm?lang=en", follow_redirects=False)
    assert skipped.status_code == 303 and skipped.headers["location"] == "/apply/contact?lang=en"
    assert "Step 2 of 6" in web.get("/apply/contact?lang=en").text
    # A law firm: the firm's step follows, its name is required there.
    law = post(web, "who", {**WHO, "requester_type": "law_firm"})
    assert law.headers["location"] == "/apply/firm?lang=en"
    assert "Step 2 of 7" in web.get("/apply/firm?lang=en").text
    missing = post(web, "firm", {"contact_name": "Jo"})
    assert _errors(missing.text) == {"law_firm_name": "Write the name of the law firm."}
    go(web, ("firm", FIRM), ("contact", CONTACT), ("case", CASE), ("needs", NEEDS))
    check = web.get("/apply/check?lang=en").text
    assert "Smith &amp; Partners" in check and 'href="/apply/firm?lang=en&amp;change=1' in check
    # Back to "I am asking for myself": the firm's answers are dropped, not sent.
    back = post(web, "who", WHO, change=True)
    assert back.headers["location"] == "/apply/check?lang=en"
    assert "Smith" not in web.get("/apply/check?lang=en").text
    # ...and a law firm again must name the firm again.
    again = post(web, "who", {**WHO, "requester_type": "law_firm"}, change=True)
    assert again.headers["location"] == "/apply/firm?lang=en"
    blocked = web.get("/apply/send?lang=en", follow_redirects=False)
    assert blocked.headers["location"] == "/apply/firm?lang=en"


def test_a_law_firm_that_turns_out_to_be_the_applicant_sends_no_firm(
    web: TestClient, db: Session
) -> None:
    post(web, "who", {**WHO, "requester_type": "law_firm"})
    go(web, ("firm", FIRM), ("contact", CONTACT), ("case", CASE), ("needs", NEEDS))
    post(web, "who", WHO, change=True)
    resp = post(web, "send", SEND)
    assert resp.status_code == 200, _errors(resp.text)
    req = records.get_by_reference(db, _reference(resp.text))
    assert req is not None and req.requester_type.value == "applicant"
    pii = records.reveal_pii(req)
    assert pii is not None and pii["law_firm_name"] is None and pii["contact_name"] is None


# Protection --------------------------------------------------------------------------------


def test_every_step_refuses_a_post_without_the_csrf_token(web: TestClient, db: Session) -> None:
    applicant(web)
    before = _count(db)
    for step, answers in (("who", WHO), ("contact", CONTACT), ("send", SEND)):
        forged = web.post(f"/apply/{step}?lang=en", data={**answers, "csrf_token": "forged"})
        assert forged.status_code == 403, step
        assert "Please try again" in forged.text
    assert _count(db) == before
    assert post(web, "send", SEND).status_code == 200  # with the token it goes through


def test_the_honeypot_on_a_step_keeps_nothing_and_at_sending_stores_nothing(
    web: TestClient, db: Session
) -> None:
    bot = post(web, "who", {**WHO, "website": "http://spam.example"})
    assert bot.status_code == 422 and 'id="form-notice"' in bot.text
    assert apply_draft.COOKIE not in bot.headers.get("set-cookie", "")
    applicant(web)
    before = _count(db)
    caught = post(web, "send", {**SEND, "website": "http://spam.example"})
    assert caught.status_code == 422 and 'id="form-notice"' in caught.text
    assert _count(db) == before


def test_sending_sooner_than_the_fill_time_stores_nothing_then_works(
    web: TestClient, db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    applicant(web)
    before = _count(db)
    monkeypatch.setattr(settings, "form_min_fill_seconds", 600.0)
    fast = post(web, "send", SEND)
    assert fast.status_code == 422
    assert "Please take a moment to check your answers" in fast.text
    assert _count(db) == before
    monkeypatch.setattr(settings, "form_min_fill_seconds", 0.0)
    assert post(web, "send", SEND).status_code == 200
    assert _count(db) == before + 1


def test_sending_counts_towards_the_submission_limit(
    web: TestClient, db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.factories import form

    monkeypatch.setattr(settings, "submit_rate_limit", 1)
    assert web.post("/api/v1/requests", json=form()).status_code == 201
    applicant(web)  # the steps themselves are not submissions
    before = _count(db)
    page = post(web, "send", SEND)
    assert page.status_code == 429 and int(page.headers["retry-after"]) >= 1
    assert "Please wait" in page.text
    assert _count(db) == before


def test_every_step_refuses_a_body_over_the_limit(
    web: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_request_body_bytes", MAX_BODY)
    go(web, ("who", WHO))
    for step in ("who", "firm", "contact", "case", "needs", "send"):
        big = post(web, step, {"case_summary": "x" * (MAX_BODY + 1)})
        assert big.status_code == 413, step


# The draft ---------------------------------------------------------------------------------


def _draft_cookie(web: TestClient) -> str:
    for cookie in web.cookies.jar:
        if cookie.name == apply_draft.COOKIE:
            return str(cookie.value)
    raise AssertionError("no draft cookie")


def _replace_draft(web: TestClient, value: str) -> None:
    with contextlib.suppress(KeyError):  # the refusal deleted it already
        web.cookies.delete(apply_draft.COOKIE, domain="testserver.local", path="/apply")
    web.cookies.set(apply_draft.COOKIE, value, domain="testserver.local", path="/apply")


def test_the_draft_is_an_encrypted_session_cookie_only_for_the_form(web: TestClient) -> None:
    resp = post(web, "who", WHO)
    header = next(
        h for h in resp.headers.get_list("set-cookie") if h.startswith(apply_draft.COOKIE + "=")
    ).lower()
    for flag in ("httponly", "secure", "samesite=strict", "path=/apply"):
        assert flag in header, (flag, header)
    assert re.findall(r"max-age=(\d+)", header) == [str(apply_draft.DRAFT_MINUTES * 60)]
    value = _draft_cookie(web)
    raw = base64.urlsafe_b64decode(value.split(".")[-1] + "==")
    # Nothing readable: not the name, not in base64, and what is there does not decompress.
    assert b"Aigerim" not in raw and "Aigerim" not in value
    assert "QWlnZXJpb" not in value  # base64 of "Aigerim"
    import zlib

    with pytest.raises(zlib.error):
        zlib.decompress(raw)


def test_the_privacy_notice_lists_the_draft_cookie_and_its_lifetime(web: TestClient) -> None:
    html = web.get("/privacy?lang=en").text
    row = re.search(r'<tr><td dir="ltr">apply_draft</td>.*?</tr>', html)
    assert row is not None and f"{apply_draft.DRAFT_MINUTES} minutes" in row.group(0)


def test_a_changed_draft_is_refused_with_a_clear_message_and_deleted(web: TestClient) -> None:
    go(web, ("who", WHO), ("contact", CONTACT))
    value = _draft_cookie(web)
    at = len(value) // 2
    tampered = value[:at] + ("A" if value[at] != "A" else "B") + value[at + 1 :]
    for how in ("get", "post"):
        _replace_draft(web, tampered)
        resp = web.get("/apply/case?lang=en") if how == "get" else post(web, "case", CASE)
        assert resp.status_code == 400, how
        assert "We could not read the answers kept in this browser" in resp.text
        assert 'href="/apply?lang=en"' in resp.text  # start again
        assert "Aigerim" not in resp.text
    cleared = web.get("/apply/contact?lang=en", follow_redirects=False)
    assert cleared.status_code == 303  # deleted: a fresh start


def test_a_draft_from_another_browser_session_is_refused(web: TestClient, db: Session) -> None:
    go(web, ("who", WHO))
    value = _draft_cookie(web)
    from app.main import create_app

    with TestClient(create_app(), base_url="https://testserver") as other:
        other.get("/apply?lang=en")  # its own csrf cookie
        other.cookies.set(apply_draft.COOKIE, value, domain="testserver.local", path="/apply")
        resp = other.get("/apply/contact?lang=en")
        assert resp.status_code == 400 and "Aigerim" not in resp.text


def test_an_expired_draft_is_refused_with_a_clear_message(web: TestClient, clock: Clock) -> None:
    go(web, ("who", WHO), ("contact", CONTACT))
    clock.advance(minutes=apply_draft.DRAFT_MINUTES - 1)
    assert web.get("/apply/case?lang=en").status_code == 200
    go(web, ("case", CASE))  # each answer saved gives it the full time again
    clock.advance(minutes=apply_draft.DRAFT_MINUTES + 1)
    resp = web.get("/apply/needs?lang=ru")
    assert resp.status_code == 410
    assert "60" in resp.text and "Aigerim" not in resp.text
    assert 'href="/apply?lang=ru"' in resp.text
    english = post(web, "needs", NEEDS)
    assert english.status_code in (410, 303)


def test_sending_deletes_the_draft_and_a_second_send_says_so(web: TestClient, db: Session) -> None:
    applicant(web)
    resp = post(web, "send", SEND)
    assert resp.status_code == 200
    assert "shown only once" in resp.text  # the confirmation, as the one-page form's
    deleted = [
        h for h in resp.headers.get_list("set-cookie") if h.startswith(apply_draft.COOKIE + "=")
    ]
    assert deleted and all("max-age=0" in h.lower() for h in deleted)
    again = post(web, "send", SEND)
    assert again.status_code == 410 and "No answers are kept in this browser" in again.text
    assert web.get("/apply?lang=en").text.count('value="Aigerim Stepwise"') == 0


def test_a_double_click_on_send_stores_one_request(web: TestClient, db: Session) -> None:
    applicant(web)
    before = _count(db)
    cookies = {c.name: c.value for c in web.cookies.jar}
    token = _token(web)
    first = web.post("/apply/send?lang=en", data={**token, **SEND})
    for name, value in cookies.items():  # the second click carries the same draft
        path = "/apply" if name.startswith(apply_draft.COOKIE) else "/"
        web.cookies.set(name, str(value), domain="testserver.local", path=path)
    second = web.post("/apply/send?lang=en", data={**token, **SEND})
    assert first.status_code == second.status_code == 200
    assert _reference(first.text) == _reference(second.text)
    assert _count(db) == before + 1


def test_a_long_summary_in_cyrillic_is_kept_between_the_steps(web: TestClient) -> None:
    go(web, ("who", WHO), ("contact", CONTACT))
    words = "Преследование за публикации в социальных сетях, обыск в редакции, угрозы семье. "
    summary = (words * 80)[:5000]
    go(web, ("case", {**CASE, "case_summary": summary}))
    assert summary in web.get("/apply/case?lang=en").text
    assert len(_draft_cookie(web)) <= apply_draft.PART_CHARS + 2


# Languages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ru", "es", "ar"])
def test_every_step_is_in_the_page_language(web: TestClient, lang: str) -> None:
    english = {
        "who": "Who you are",
        "contact": "How to reach you",
        "case": "Your case",
        "needs": "What you need",
        "check": "Check your answers",
        "send": "Consent and send",
    }
    applicant(web, lang=lang)
    for step, title in english.items():
        url = "/apply" if step == "who" else f"/apply/{step}"
        html = web.get(f"{url}?lang={lang}").text
        assert f'lang="{lang}"' in html
        assert title_of(html) != title, (lang, step)
        assert "Continue" not in html and "Step " not in html, (lang, step)
        if lang == "ar":
            assert 'dir="rtl"' in html


# The same request as the one-page form -----------------------------------------------------

ANSWERS: dict[str, dict[str, Any]] = {
    "who": {"requester_type": "law_firm", "full_name": "Aigul Same Applicant"},
    "firm": FIRM,
    "contact": {
        "country_of_residence": "DE",
        "email": "Same.Answers@Example.org",
        "preferred_channel": "whatsapp",
        "phone": "030 901820",
        "whatsapp": "+996 555 123 456",
        "language": "ru",
        "timezone": "Asia/Bishkek",
        "discreet": "on",
    },
    "case": {
        "country_of_origin": "KG",
        "case_stage": "refused_appeal",
        "deadline": "2099-01-31",
        "topics": ["political_repression", "freedom_of_speech"],
        "case_summary": "  Posts on social media; a raid on the office.  ",
    },
    "needs": {"wants": ["consultation", "expert_cv", "sample_report"]},
    "send": {"consent_data_processing": "on", "consent_updates": ["organisation_news"]},
}
#: What differs between any two requests: identity, times, keys and the link.
PER_REQUEST = {
    "id",
    "reference",
    "received_at",
    "consent_given_at",
    "first_response_due_at",
    "data_key_enc",
    "pii_enc",
    "token_hash",
    "token_enc",
    "created_at",
    "updated_at",
}


def _stored(db: Session, reference: str) -> dict[str, Any]:
    req = records.get_by_reference(db, reference)
    assert req is not None
    db.refresh(req)
    row = {a.key: getattr(req, a.key) for a in inspect(IntakeRequest).mapper.column_attrs}
    return {
        "row": {k: v for k, v in row.items() if k not in PER_REQUEST},
        "pii": records.reveal_pii(req),
        "history": sorted(h.action for h in _history(db, req)),
    }


def _history(db: Session, req: IntakeRequest) -> list[Any]:
    from app.models import RequestHistory

    return list(db.scalars(select(RequestHistory).where(RequestHistory.request_id == req.id)))


def savepoint(db: Session, statement: str) -> None:
    """A savepoint of the test's own on the shared connection (the pages' sessions make and
    release theirs inside it)."""
    db.connection().exec_driver_sql(statement)
    db.expunge_all()


def test_a_request_through_the_steps_stores_exactly_what_the_one_page_form_stores(
    web: TestClient, db: Session
) -> None:
    # The first rolled back after reading: the second does not see it (the same e-mail address
    # would otherwise link the second to the first).
    savepoint(db, "SAVEPOINT apply_compare")
    hidden = open_form(web, "/apply/all?lang=ru")
    one_page = {k: v for answers in ANSWERS.values() for k, v in answers.items()}
    resp = web.post("/apply?lang=ru", data={**hidden, **one_page})
    assert resp.status_code == 200, _errors(resp.text)
    by_one_page = _stored(db, _reference(resp.text))
    savepoint(db, "ROLLBACK TO SAVEPOINT apply_compare")
    assert _count(db) == 0
    go(web, *[(step, answers) for step, answers in ANSWERS.items() if step != "send"], lang="ru")
    resp = post(web, "send", ANSWERS["send"], lang="ru")
    assert resp.status_code == 200, _errors(resp.text)
    by_steps = _stored(db, _reference(resp.text))

    assert by_one_page["pii"] is not None and by_one_page["pii"]["law_firm_name"]
    for part in ("row", "pii", "history"):
        left, right = by_one_page[part], by_steps[part]
        assert left.keys() == right.keys() if isinstance(left, dict) else True
        if isinstance(left, dict):
            for name in left:
                assert left[name] == right[name], (part, name, left[name], right[name])
        else:
            assert left == right, part
