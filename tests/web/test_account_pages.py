"""The set-password page that invite and reset e-mails link to, and the sign-in page under an
account-wide lock."""

from __future__ import annotations

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts import service
from app.core.settings import get_settings
from app.core.time import now
from app.main import create_app
from app.models import AccountToken, Role
from tests.conftest import Clock
from tests.factories import DEFAULT_PASSWORD, create_user, hidden_fields


def _token(db: Session, email: str) -> str:
    user = service.invite_user(db, email=email, display_name="Ines", role=Role.staff)
    row = db.query(AccountToken).filter_by(user_id=user.id).one()
    return service.reveal_account_token(row)


def test_page_sets_the_password_without_javascript(client: TestClient, db: Session) -> None:
    token = _token(db, "ines@example.org")
    page = client.get(f"/account/set-password?token={token}")
    assert page.status_code == 200
    assert f'value="{token}"' in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    done = client.post(
        "/account/set-password",
        data={"token": token, "password": "a fine passphrase", "confirm": "a fine passphrase"},
    )
    assert done.status_code == 200 and "password is set" in done.text
    login = client.post(
        "/api/v1/auth/login", json={"email": "ines@example.org", "password": "a fine passphrase"}
    )
    assert login.status_code == 200


def test_page_explains_each_problem_next_to_the_form(client: TestClient, db: Session) -> None:
    token = _token(db, "omar@example.org")
    differ = client.post(
        "/account/set-password",
        data={"token": token, "password": "a fine passphrase", "confirm": "another"},
    )
    assert differ.status_code == 422 and "differ" in differ.text
    short = client.post(
        "/account/set-password", data={"token": token, "password": "short", "confirm": "short"}
    )
    assert short.status_code == 422 and "Password" in short.text and "12" in short.text
    bad = client.post(
        "/account/set-password",
        data={
            "token": "ot_" + "x" * 40,
            "password": "a fine passphrase",
            "confirm": "a fine passphrase",
        },
    )
    assert bad.status_code == 400 and "not valid any more" in bad.text
    # The escaping holds for a hostile token in the query string.
    xss = client.get('/account/set-password?token="><script>alert(1)</script>')
    assert "<script>alert(1)</script>" not in xss.text
    create_user(db)  # the page never touches other accounts


def test_under_an_account_lock_the_sign_in_page_asks_for_the_code_and_signs_in_with_it(
    db: Session, clock: Clock
) -> None:
    user = create_user(db, role=Role.staff)
    secret, _ = service.totp_setup(db, user)
    user.totp_enabled = True
    db.flush()
    app = create_app()
    attacker = TestClient(app, client=("198.51.100.66", 50000), raise_server_exceptions=False)
    with attacker:
        for i in range(get_settings().login_lock_after_failures):
            attacker.post("/api/v1/auth/login", json={"email": user.email, "password": f"x{i}"})
    with TestClient(app, base_url="https://testserver", client=("203.0.113.10", 50000)) as page:
        hidden = hidden_fields(page.get("/staff/sign-in").text)
        first = page.post(
            "/staff/sign-in",
            data={**hidden, "email": user.email, "password": DEFAULT_PASSWORD},
            follow_redirects=False,
        )
        # Not the "please wait" page: the code step, with why it is asked for.
        assert first.status_code == 429
        assert 'name="totp_code"' in first.text and "6-digit code" in first.text
        step = hidden_fields(first.text)
        assert step["pending"] and DEFAULT_PASSWORD not in first.text
        code = pyotp.TOTP(secret).at(now())
        done = page.post("/staff/sign-in", data={**step, "totp_code": code}, follow_redirects=False)
        assert done.status_code == 303, done.text
        assert page.cookies.get("intake_session", "").startswith("ut_")
