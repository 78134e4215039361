"""The set-password page that invite and reset e-mails link to."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts import service
from app.models import AccountToken, Role
from tests.factories import create_user


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
