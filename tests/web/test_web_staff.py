"""Staff pages: sign-in (with and without the second factor), throttling, CSRF, the queue and the
case page with its actions. In-process (TestClient over https, so the Secure cookies travel)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.core.settings import get_settings
from app.core.time import now
from app.main import create_app
from app.models import IntakeRequest, RequestContact, RequestHistory, Role
from app.web import staff as staff_pages
from tests.conftest import Clock
from tests.factories import (
    DEFAULT_PASSWORD,
    MARKER,
    create_expert,
    create_user,
    csrf,
    field_error,
    form_values,
    hidden_fields,
    make_request,
    sign_in,
    signed_in,
    submit,
    title_of,
)

# Sign-in -------------------------------------------------------------------------------------


def test_staff_signs_in_with_a_password_and_lands_on_the_queue(
    web: TestClient, db: Session
) -> None:
    staff = create_user(db, role=Role.staff, display_name="Nadia Staff")
    resp = sign_in(web, staff)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/staff/queue"
    cookie = resp.headers["set-cookie"].lower()
    assert "intake_session=ut_" in cookie
    assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie
    page = web.get("/staff/queue")
    assert page.status_code == 200
    assert "Nadia Staff" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert 'href="/staff/reports"' in page.text  # the reports page is one click away


def test_the_page_session_is_an_account_session_and_sign_out_revokes_it(
    web: TestClient, db: Session
) -> None:
    staff = create_user(db, role=Role.staff)
    resp = sign_in(web, staff)
    token = web.cookies.get("intake_session")
    assert token is not None
    user, _ = accounts.authenticate(db, token)
    assert user.id == staff.id
    out = web.post("/staff/sign-out", data=csrf(web, "/staff/queue"), follow_redirects=False)
    assert out.status_code == 303 and resp.status_code == 303
    assert out.headers["location"].startswith("/staff/sign-in")
    web.cookies.set("intake_session", token, domain="testserver.local")
    again = web.get("/staff/queue", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/staff/sign-in")


def test_second_factor_is_asked_after_the_password_then_signs_in(
    web: TestClient, db: Session, clock: Clock
) -> None:
    staff = create_user(db, role=Role.staff)
    secret, _ = accounts.totp_setup(db, staff)
    totp = pyotp.TOTP(secret)
    accounts.totp_confirm(db, staff, totp.at(now()))
    clock.advance(seconds=31)  # the confirming code is used; the next step's code is fresh

    first = sign_in(web, staff)
    assert first.status_code == 200
    assert 'name="totp_code"' in first.text
    assert DEFAULT_PASSWORD not in first.text  # the password waits sealed, not in clear
    assert web.cookies.get("intake_session") is None
    hidden = hidden_fields(first.text)
    assert hidden["pending"]

    wrong = web.post(
        "/staff/sign-in", data={**hidden, "totp_code": "000000"}, follow_redirects=False
    )
    assert wrong.status_code == 401
    assert "incorrect" in field_error(wrong.text, "totp_code")

    code = totp.at(now())
    ok = web.post("/staff/sign-in", data={**hidden, "totp_code": code}, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    assert ok.headers["location"] == "/staff/queue"
    assert web.get("/staff/queue").status_code == 200


def test_a_sealed_password_from_another_browser_is_refused(web: TestClient, db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    secret, _ = accounts.totp_setup(db, staff)
    staff.totp_enabled = True
    db.flush()
    hidden = hidden_fields(sign_in(web, staff).text)
    web.cookies.clear()
    other = hidden_fields(web.get("/staff/sign-in").text)
    resp = web.post(
        "/staff/sign-in",
        data={**other, "pending": hidden["pending"], "totp_code": pyotp.TOTP(secret).at(now())},
    )
    assert resp.status_code == 400
    assert "start again" in field_error(resp.text, "email")


def test_wrong_password_shows_the_error_next_to_the_password(web: TestClient, db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    resp = sign_in(web, staff, password="not the password at all")
    assert resp.status_code == 401
    assert "incorrect" in field_error(resp.text, "password")
    assert f'value="{staff.email}"' in resp.text  # what was typed stays
    assert 'aria-describedby="password-error"' in resp.text
    empty = sign_in(web, staff, password="")
    assert empty.status_code == 422
    assert field_error(empty.text, "password") == "Enter your password."


def test_repeated_failures_lock_the_sign_in_with_429_and_retry_after(
    web: TestClient, db: Session, clock: Clock
) -> None:
    staff = create_user(db, role=Role.staff)
    settings = get_settings()
    statuses = [sign_in(web, staff, password=f"wrong password {i}").status_code for i in range(3)]
    assert statuses == [401, 401, 401]
    # The next try within the slowdown: refused with the wait, like the API.
    slowed = sign_in(web, staff, password="wrong again")
    assert slowed.status_code == 429
    assert int(slowed.headers["retry-after"]) >= 1
    assert "Try again in" in slowed.text
    # Waiting out each slowdown, the failures go on to the lock (the refused try counted too).
    for i in range(4, settings.login_lock_after_failures):
        clock.advance(seconds=61)
        assert sign_in(web, staff, password=f"wrong password {i}").status_code == 401
    clock.advance(seconds=61)
    locked = sign_in(web, staff)  # even the right password, until the lock ends
    assert locked.status_code == 429
    retry = int(locked.headers["retry-after"])
    assert 60 < retry <= settings.login_lock_minutes * 60
    assert "locked" in locked.text
    assert web.cookies.get("intake_session") is None
    clock.advance(seconds=retry + 1)
    assert sign_in(web, staff).status_code == 303


def test_a_form_without_the_csrf_token_is_refused(web: TestClient, db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    web.get("/staff/sign-in")
    resp = web.post(
        "/staff/sign-in",
        data={"email": staff.email, "password": DEFAULT_PASSWORD},
        follow_redirects=False,
    )
    assert resp.status_code == 403
    assert "Please try again" in resp.text
    assert web.cookies.get("intake_session") is None
    req = make_request(db)
    signed_in(web, staff)
    action = web.post(
        f"/staff/cases/{req.reference}/contact",
        data={"channel": "phone", "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert action.status_code == 403
    assert db.scalar(select(RequestContact).where(RequestContact.request_id == req.id)) is None


def test_a_staff_page_without_a_session_redirects_to_sign_in_and_back(
    web: TestClient, db: Session
) -> None:
    req = make_request(db)
    resp = web.get(f"/staff/cases/{req.reference}", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/staff/sign-in?next=/staff/cases/{req.reference}"
    staff = create_user(db, role=Role.staff)
    hidden = hidden_fields(web.get(resp.headers["location"]).text)
    assert hidden["next"] == f"/staff/cases/{req.reference}"
    back = web.post(
        "/staff/sign-in",
        data={**hidden, "email": staff.email, "password": DEFAULT_PASSWORD},
        follow_redirects=False,
    )
    assert back.headers["location"] == f"/staff/cases/{req.reference}"


def test_next_never_leads_off_the_site(web: TestClient, db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    for bad in ("https://evil.example/", "//evil.example/staff/", "/staff/..//evil"):
        hidden = hidden_fields(web.get("/staff/sign-in", params={"next": bad}).text)
        assert hidden["next"] == ""
        resp = web.post(
            "/staff/sign-in",
            data={**hidden, "email": staff.email, "password": DEFAULT_PASSWORD, "next": bad},
            follow_redirects=False,
        )
        assert resp.headers["location"] == "/staff/queue"
        web.cookies.clear()


def test_an_expert_cannot_open_staff_pages(web: TestClient, db: Session) -> None:
    expert = create_expert(db, countries=["KG"])
    req = make_request(db)
    resp = sign_in(web, expert)
    assert resp.headers["location"] == "/expert/assignments"
    assert web.get("/staff/queue").status_code == 403
    case = web.get(f"/staff/cases/{req.reference}")
    assert case.status_code == 403
    assert req.reference not in case.text


# The queue -----------------------------------------------------------------------------------


def test_queue_shows_due_soon_and_breached_in_words_and_the_minutes_left(
    web: TestClient, db: Session
) -> None:
    current = now()
    on_track = make_request(db)
    soon = make_request(db)
    soon.first_response_due_at = current + dt.timedelta(minutes=7, seconds=30)
    late = make_request(db)
    late.first_response_due_at = current - dt.timedelta(minutes=12, seconds=30)
    db.flush()
    signed_in(web, create_user(db, role=Role.staff))
    html = web.get("/staff/queue").text

    def row(ref: str) -> str:
        found = re.search(
            rf'<tr class="row-\w+">\s*<th scope="row"><a href="/staff/cases/{ref}">.*?</tr>',
            html,
            re.S,
        )
        assert found is not None, ref
        return found.group(0)

    assert "Due soon" in row(soon.reference) and "7 min left" in row(soon.reference)
    assert 'class="sla sla-due_soon"' in row(soon.reference)
    assert "Breached" in row(late.reference) and "13 min overdue" in row(late.reference)
    assert 'class="sla sla-breached"' in row(late.reference)
    assert "On track" in row(on_track.reference)
    assert f'data-due="{soon.first_response_due_at.isoformat()}"' in row(soon.reference)
    # The built-in view narrows to the breached ones.
    breached = web.get("/staff/queue", params={"view": "breached"}).text
    assert late.reference in breached and soon.reference not in breached
    # The background refresh answers the same rows as a fragment.
    live = web.get("/staff/queue/live", params={"view": "due_soon"})
    assert live.status_code == 200
    assert soon.reference in live.text and late.reference not in live.text
    assert "<html" not in live.text


def test_queue_filters_and_a_bad_search_shows_the_error_next_to_it(
    web: TestClient, db: Session
) -> None:
    kg = make_request(db, country="KG")
    sy = make_request(db, country="SY", region="middle_east")
    signed_in(web, create_user(db, role=Role.staff))
    by_country = web.get("/staff/queue", params={"country": "sy"}).text
    assert sy.reference in by_country and kg.reference not in by_country
    by_region = web.get("/staff/queue", params={"region": "eastern_europe_post_soviet"}).text
    assert kg.reference in by_region and sy.reference not in by_region
    by_ref = web.get("/staff/queue", params={"q": kg.reference}).text
    assert kg.reference in by_ref and sy.reference not in by_ref
    unassigned = web.get("/staff/queue", params={"assigned": "no"}).text
    assert kg.reference in unassigned
    bad = web.get("/staff/queue", params={"q": "???"})
    assert bad.status_code == 422
    assert "reference" in field_error(bad.text, "q")
    bad_country = web.get("/staff/queue", params={"country": "Kyrgyzstan"})
    assert "two-letter" in field_error(bad_country.text, "country")


def test_assigned_filters_in_the_query_so_the_first_page_holds_the_assigned_ones(
    web: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "Assigned" filter is part of the queue's query, not applied to a fetched page:
    with the two earliest deadlines unassigned, the first page still lists the assigned one."""
    monkeypatch.setattr(staff_pages, "PAGE_SIZE", 2)
    current = now()
    expert = create_expert(db, countries=["KG"], name="Dr Assigned Expert")
    unassigned = [make_request(db) for _ in range(3)]
    for minutes, req in enumerate(unassigned, start=1):
        req.first_response_due_at = current + dt.timedelta(minutes=minutes)
    assigned = make_request(db)
    assigned.first_response_due_at = current + dt.timedelta(minutes=30)
    assigned.assigned_expert_id = expert.id
    db.flush()
    signed_in(web, create_user(db, role=Role.staff))
    html = web.get("/staff/queue", params={"assigned": "yes"}).text
    assert assigned.reference in html
    assert not any(r.reference in html for r in unassigned)
    assert "Next page" not in html  # one assigned request: one page
    others = web.get("/staff/queue", params={"assigned": "no"}).text
    assert unassigned[0].reference in others and assigned.reference not in others


def test_queue_live_without_a_session_answers_401_to_the_script(web: TestClient) -> None:
    resp = web.get(
        "/staff/queue/live", headers={"X-Requested-With": "fetch"}, follow_redirects=False
    )
    assert resp.status_code == 401


# The case page -------------------------------------------------------------------------------


def test_case_page_shows_the_decrypted_request_and_its_history(
    web: TestClient, db: Session
) -> None:
    create_expert(db, countries=["KG"], name="Dr Kyrgyz Expert")
    req = submit(db)
    signed_in(web, create_user(db, role=Role.staff))
    resp = web.get(f"/staff/cases/{req.reference}")
    assert resp.status_code == 200
    assert f"Aigul {MARKER} Applicant" in resp.text
    assert f"Summary with {MARKER} inside it." in resp.text
    assert "Dr Kyrgyz Expert" in resp.text  # routing offered it
    assert "submitted" in resp.text or "received" in resp.text
    assert title_of(resp.text).startswith(f"Case {req.reference}")
    missing = web.get("/staff/cases/NOPE-NOPE")
    assert missing.status_code == 404 and "Not found" in missing.text
    token = csrf(web, f"/staff/cases/{req.reference}")
    for action in ("contact", "assign", "reply", "notes", "status"):
        assert web.post(f"/staff/cases/NOPENOPE/{action}", data=token).status_code == 404


def test_logging_a_contact_stops_the_clock_and_shows_in_the_history(
    web: TestClient, db: Session
) -> None:
    req = submit(db)
    staff = create_user(db, role=Role.staff, display_name="Nadia Staff")
    signed_in(web, staff)
    url = f"/staff/cases/{req.reference}"
    resp = web.post(
        f"{url}/contact",
        data={**csrf(web, url), "channel": "phone", "contacted_at": "", "note": "Called back"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{url}?done=contact#contacts"
    page = web.get(resp.headers["location"]).text
    assert "The contact is recorded." in page
    assert "Called back" in page
    assert "Answered in time" in page
    db.refresh(req)
    assert req.first_responded_at is not None
    history = db.scalars(select(RequestHistory).where(RequestHistory.request_id == req.id)).all()
    assert any(h.actor == f"user:{staff.id}" for h in history)


def test_a_bad_contact_time_comes_back_next_to_the_field(web: TestClient, db: Session) -> None:
    req = make_request(db)
    signed_in(web, create_user(db, role=Role.staff))
    url = f"/staff/cases/{req.reference}"
    future = (now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    resp = web.post(
        f"{url}/contact", data={**csrf(web, url), "channel": "phone", "contacted_at": future}
    )
    assert resp.status_code == 422
    assert field_error(resp.text, "contact_at")
    assert f'value="{future}"' in resp.text
    bad_channel = web.post(f"{url}/contact", data={**csrf(web, url), "channel": "pigeon"})
    assert bad_channel.status_code == 422
    assert field_error(bad_channel.text, "contact_channel")
    db.expire_all()
    assert db.get(IntakeRequest, req.id).first_responded_at is None  # type: ignore[union-attr]


def test_assigning_an_expert_from_the_case_page(web: TestClient, db: Session) -> None:
    expert = create_expert(db, countries=["KG"], name="Dr Chosen")
    req = make_request(db)
    signed_in(web, create_user(db, role=Role.staff))
    url = f"/staff/cases/{req.reference}"
    resp = web.post(
        f"{url}/assign",
        data={**csrf(web, url), "expert_id": str(expert.id), "reason": "knows the region"},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    page = web.get(resp.headers["location"]).text
    assert "The request is offered to the expert." in page
    assert "Dr Chosen" in page
    bad = web.post(f"{url}/assign", data={**csrf(web, url), "expert_id": "not-a-uuid"})
    assert bad.status_code == 422
    assert field_error(bad.text, "expert_id")


def test_reply_note_and_status_from_the_case_page_show_in_messages_notes_and_history(
    web: TestClient, db: Session
) -> None:
    req = submit(db)
    staff = create_user(db, role=Role.staff, display_name="Nadia Staff")
    signed_in(web, staff)
    url = f"/staff/cases/{req.reference}"

    empty = web.post(f"{url}/reply", data={**csrf(web, url), "body": "  "})
    assert empty.status_code == 422
    assert "empty" in field_error(empty.text, "reply_body")
    # Never sent unseen: without the preview's digest the page shows the preview.
    unseen = web.post(
        f"{url}/reply",
        data={**csrf(web, url), "subject": "About your request", "body": "We can help you."},
        follow_redirects=False,
    )
    assert unseen.status_code == 200 and 'id="send-form"' in unseen.text
    reply = web.post(
        f"{url}/reply", data=form_values(unseen.text, "send-form"), follow_redirects=False
    )
    assert reply.status_code == 303, reply.text
    page = web.get(reply.headers["location"]).text
    assert "The reply is queued" in page
    assert "We can help you." in page and "Reply sent from the case" in page
    assert "Answered in time" in page  # the reply is the first response

    note = web.post(
        f"{url}/notes",
        data={**csrf(web, url), "body": "Prefers afternoon calls."},
        follow_redirects=False,
    )
    assert note.status_code == 303
    page = web.get(note.headers["location"]).text
    assert "Prefers afternoon calls." in page and "Nadia Staff" in page

    status_select = re.search(r'<select id="new_status" name="status".*?</select>', page, re.S)
    assert status_select is not None
    offered = re.findall(r'<option value="(\w+)">', status_select.group(0))
    assert "in_progress" in offered and "closed" not in offered and "withdrawn" not in offered
    illegal = web.post(f"{url}/status", data={**csrf(web, url), "status": "closed"})
    assert illegal.status_code == 409
    assert "Allowed from here" in field_error(illegal.text, "new_status")
    moved = web.post(
        f"{url}/status", data={**csrf(web, url), "status": "in_progress"}, follow_redirects=False
    )
    assert moved.status_code == 303
    db.refresh(req)
    assert req.status.value == "in_progress"
    history = web.get(f"{url}#history").text
    section = history[history.index('id="h-history"') :]
    for words in ("Reply queued", "Internal note added", "Status changed"):
        assert words in section, words
    assert "Nadia Staff" in section


def test_an_oversized_sign_in_body_is_refused_before_it_is_read(web: TestClient) -> None:
    hidden = hidden_fields(web.get("/staff/sign-in").text)
    big = "x" * (get_settings().max_request_body_bytes + 10)
    resp = web.post("/staff/sign-in", data={**hidden, "email": "a@example.org", "password": big})
    assert resp.status_code == 413


def test_the_case_page_shows_who_else_has_it_open_and_who_is_replying(
    web: TestClient, db: Session
) -> None:
    req = make_request(db)
    url = f"/staff/cases/{req.reference}"
    signed_in(web, create_user(db, role=Role.staff, display_name="Nadia Staff"))
    assert "Also on this case" not in web.get(url).text
    with TestClient(
        create_app(), base_url="https://testserver", raise_server_exceptions=False
    ) as other:
        signed_in(other, create_user(db, role=Role.staff, display_name="Omar Staff"))
        page = other.get(url).text
        assert "Also on this case now" in page and "<bdi>Nadia Staff</bdi> (staff, viewing)" in page
        beat = other.post(
            f"{url}/presence",
            data={**csrf(other, url), "activity": "replying"},
            headers={"X-Requested-With": "fetch"},
        )
        assert beat.status_code == 200 and "<html" not in beat.text
        forged = other.post(f"{url}/presence", data={"csrf_token": "x", "activity": "replying"})
        assert forged.status_code == 403
    mine = web.post(f"{url}/presence", data={**csrf(web, url), "activity": "viewing"})
    assert "Omar Staff" in mine.text and "writing a reply" in mine.text


@pytest.mark.sqlite
def test_sign_in_queue_and_a_logged_contact_on_the_embedded_database(
    web: TestClient, db: Session
) -> None:
    late = make_request(db)
    late.first_response_due_at = now() - dt.timedelta(minutes=5, seconds=30)
    db.flush()
    signed_in(web, create_user(db, role=Role.staff))
    queue = web.get("/staff/queue", params={"view": "breached"}).text
    assert late.reference in queue and "6 min overdue" in queue
    url = f"/staff/cases/{late.reference}"
    resp = web.post(
        f"{url}/contact", data={**csrf(web, url), "channel": "phone"}, follow_redirects=False
    )
    assert resp.status_code == 303
    page = web.get(resp.headers["location"]).text
    assert "Breached" in page and "Contact recorded" in page


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_assign_form_says_it_sends_an_offer_with_the_real_minutes_to_answer(
    web: TestClient, db: Session, settings_env: pytest.MonkeyPatch
) -> None:
    settings_env.setenv("INTAKE_OFFER_RESPONSE_MINUTES", "7")
    get_settings.cache_clear()
    req = make_request(db)
    signed_in(web, create_user(db, role=Role.staff))
    page = web.get(f"/staff/cases/{req.reference}").text
    form = page[page.index('id="assign-form"') :]
    form = form[: form.index("</form>")]
    assert "Offer to an expert" in form
    assert (
        "Offer to this expert: they get an e-mail and have 7 minutes to accept; if they decline"
        " or do not answer in time, the next expert is offered."
    ) in form
    assert ">Send the offer</button>" in form
    assert ">Assign</button>" not in form


def test_refusals_of_a_reply_and_a_note_read_as_full_sentences(
    web: TestClient, db: Session
) -> None:
    req = submit(db)
    signed_in(web, create_user(db, role=Role.staff))
    url = f"/staff/cases/{req.reference}"
    empty = web.post(f"{url}/reply", data={**csrf(web, url), "body": " "})
    assert field_error(empty.text, "reply_body") == "The reply is empty. Write the message to send."
    long = web.post(f"{url}/reply", data={**csrf(web, url), "body": "x" * 20_001})
    assert long.status_code == 422
    assert field_error(long.text, "reply_body") == (
        "The text is longer than 20000 characters. Shorten it."
    )
    note = web.post(f"{url}/notes", data={**csrf(web, url), "body": " "})
    assert field_error(note.text, "note_body") == "The note is empty. Write the note to add."


def test_a_retry_after_refusal_counts_its_seconds_in_a_sentence() -> None:
    from starlette.requests import Request as StarletteRequest

    from app.core.errors import TooManyRequests

    request = StarletteRequest({"type": "http", "headers": [], "query_string": b""})
    one = staff_pages.case_error_text(request, None, TooManyRequests("x", retry_after_seconds=1))
    assert one == "Too many attempts. Try again in 1 second."
    many = staff_pages.case_error_text(request, None, TooManyRequests("x", retry_after_seconds=5))
    assert many == "Too many attempts. Try again in 5 seconds."
