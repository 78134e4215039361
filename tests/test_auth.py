"""Sign-in: every failure named by the foundation issue has its status and message."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import throttle as sign_in
from app.core.settings import get_settings
from app.core.time import now
from app.models import LoginThrottle, Role, UserSession
from app.privacy.service import run_retention
from tests.conftest import Clock
from tests.factories import DEFAULT_PASSWORD, create_user, login
from tests.outbox_helpers import drain


def _login(client: TestClient, email: str, password: str, **extra: str) -> object:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password, **extra})


def test_login_gives_a_user_token_that_identifies_the_user(client: TestClient, db: Session) -> None:
    user = create_user(db, role=Role.staff)
    resp = _login(client, user.email, DEFAULT_PASSWORD)
    assert resp.status_code == 200
    body = resp.json()
    assert body["user_token"].startswith("ut_")
    assert body["user"]["role"] == "staff"
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['user_token']}"})
    assert me.status_code == 200 and me.json()["email"] == user.email
    # Stored hashed only.
    stored = db.scalars(select(UserSession.token_hash)).all()
    assert body["user_token"] not in stored and len(stored) == 1


def test_wrong_password_and_unknown_email_get_the_same_401(client: TestClient, db: Session) -> None:
    user = create_user(db)
    wrong = _login(client, user.email, "not the password at all")
    unknown = _login(client, "nobody@example.org", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    assert wrong.json()["error"]["code"] == "invalid_credentials"


def test_repeated_failures_are_slowed_then_locked_with_retry_after(
    client: TestClient, db: Session, clock: object
) -> None:
    settings = get_settings()
    user = create_user(db)
    for _ in range(settings.login_slow_after_failures):
        assert _login(client, user.email, "wrong password here").status_code == 401
    slowed = _login(client, user.email, "wrong password here")
    assert slowed.status_code == 429
    assert int(slowed.headers["Retry-After"]) >= 1
    # Keep failing, waiting out each slowdown, until the lock.
    failures = settings.login_slow_after_failures
    while failures < settings.login_lock_after_failures:
        clock.advance(seconds=61)  # type: ignore[attr-defined]
        resp = _login(client, user.email, "wrong password here")
        assert resp.status_code == 401
        failures += 1
    clock.advance(seconds=61)  # type: ignore[attr-defined]
    locked = _login(client, user.email, DEFAULT_PASSWORD)  # even the right password
    assert locked.status_code == 429
    retry = int(locked.headers["Retry-After"])
    assert settings.login_lock_minutes * 60 - 120 <= retry <= settings.login_lock_minutes * 60
    assert "locked" in locked.json()["error"]["message"]
    clock.advance(minutes=settings.login_lock_minutes + 1)  # type: ignore[attr-defined]
    assert _login(client, user.email, DEFAULT_PASSWORD).status_code == 200
    # Success clears the account's counter.
    assert db.scalars(select(LoginThrottle).where(LoginThrottle.key.like("account:%"))).all() == []


def test_failures_from_one_address_lock_other_accounts_too(client: TestClient, db: Session) -> None:
    settings = get_settings()
    victims = [create_user(db) for _ in range(settings.login_slow_after_failures + 1)]
    # One failure each on different accounts, all from the test client's address.
    codes = [_login(client, v.email, "wrong password here").status_code for v in victims]
    assert codes[-1] == 429, codes


def test_expired_token_is_refused(client: TestClient, db: Session, clock: object) -> None:
    headers = login(client, create_user(db))
    clock.advance(minutes=get_settings().user_token_ttl_minutes + 1)  # type: ignore[attr-defined]
    resp = client.get("/api/v1/auth/me", headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "token_expired"


def test_revoked_session_is_refused_after_logout(client: TestClient, db: Session) -> None:
    headers = login(client, create_user(db))
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    resp = client.get("/api/v1/auth/me", headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "session_revoked"


def test_missing_role_is_403(client: TestClient, db: Session) -> None:
    for role in (Role.staff, Role.expert):
        headers = login(client, create_user(db, role=role))
        resp = client.get("/api/v1/admin/users", headers=headers)
        assert resp.status_code == 403, role
        assert resp.json()["error"]["code"] == "forbidden"
    admin = login(client, create_user(db, role=Role.admin))
    assert client.get("/api/v1/admin/users", headers=admin).status_code == 200


def test_no_token_and_a_requester_link_token_are_401(client: TestClient) -> None:
    assert client.get("/api/v1/auth/me").status_code == 401
    resp = client.get("/api/v1/auth/me", headers={"Authorization": "Bearer rl_abcdefghijkl"})
    assert resp.status_code == 401
    assert "requester" in resp.json()["error"]["message"]


def test_deactivated_user_loses_sessions_and_cannot_sign_in(
    client: TestClient, db: Session
) -> None:
    admin = login(client, create_user(db, role=Role.admin))
    staff = create_user(db)
    staff_headers = login(client, staff)
    resp = client.post(f"/api/v1/admin/users/{staff.id}/deactivate", headers=admin)
    assert resp.status_code == 200 and resp.json()["is_active"] is False
    assert client.get("/api/v1/auth/me", headers=staff_headers).status_code == 401
    assert _login(client, staff.email, DEFAULT_PASSWORD).status_code == 401


def test_role_change_signs_the_user_out(client: TestClient, db: Session) -> None:
    admin = login(client, create_user(db, role=Role.admin))
    staff = create_user(db)
    staff_headers = login(client, staff)
    resp = client.patch(f"/api/v1/admin/users/{staff.id}", json={"role": "expert"}, headers=admin)
    assert resp.status_code == 200 and resp.json()["role"] == "expert"
    assert client.get("/api/v1/auth/me", headers=staff_headers).status_code == 401


def _link_token(mail_dir: Path, to: str) -> str:
    for path in sorted(mail_dir.glob("*.eml")):
        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if msg["To"] == to:
            body = msg.get_body(preferencelist=("plain",))
            assert body is not None
            found = re.search(r"token=(ot_[A-Za-z0-9_-]+)", body.get_content())
            assert found, body.get_content()
            return found.group(1)
    raise AssertionError(f"no mail to {to}")


def test_invite_email_sets_a_password_once(client: TestClient, db: Session, mail_dir: Path) -> None:
    admin = login(client, create_user(db, role=Role.admin))
    resp = client.post(
        "/api/v1/admin/users",
        json={"email": "New.Expert@Example.org", "display_name": "Nadia", "role": "expert"},
        headers=admin,
    )
    assert resp.status_code == 201
    assert resp.json()["email"] == "new.expert@example.org"
    assert resp.json()["has_password"] is False
    assert drain(db) == 1
    token = _link_token(mail_dir, "new.expert@example.org")
    new_password = "a long new passphrase"
    ok = client.post("/api/v1/auth/set-password", json={"token": token, "password": new_password})
    assert ok.status_code == 200 and ok.json()["has_password"] is True
    assert _login(client, "new.expert@example.org", new_password).status_code == 200
    again = client.post(
        "/api/v1/auth/set-password", json={"token": token, "password": new_password}
    )
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_link"


def test_invite_to_an_existing_email_is_409(client: TestClient, db: Session) -> None:
    admin = login(client, create_user(db, role=Role.admin))
    existing = create_user(db)
    resp = client.post(
        "/api/v1/admin/users",
        json={"email": existing.email, "display_name": "Again", "role": "staff"},
        headers=admin,
    )
    assert resp.status_code == 409


def test_password_reset_answers_the_same_and_mails_only_real_accounts(
    client: TestClient, db: Session, mail_dir: Path, clock: object
) -> None:
    user = create_user(db)
    old_session = login(client, user)
    known = client.post("/api/v1/auth/password-reset", json={"email": user.email})
    unknown = client.post("/api/v1/auth/password-reset", json={"email": "ghost@example.org"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert drain(db) == 1
    token = _link_token(mail_dir, user.email)
    ok = client.post(
        "/api/v1/auth/set-password", json={"token": token, "password": "brand new passphrase"}
    )
    assert ok.status_code == 200
    # Old sessions end with the password change; the old password no longer works.
    assert client.get("/api/v1/auth/me", headers=old_session).status_code == 401
    assert _login(client, user.email, DEFAULT_PASSWORD).status_code == 401
    assert _login(client, user.email, "brand new passphrase").status_code == 200


def test_password_reset_link_expires(
    client: TestClient, db: Session, mail_dir: Path, clock: object
) -> None:
    user = create_user(db)
    client.post("/api/v1/auth/password-reset", json={"email": user.email})
    drain(db)
    token = _link_token(mail_dir, user.email)
    clock.advance(minutes=get_settings().password_reset_ttl_minutes + 1)  # type: ignore[attr-defined]
    resp = client.post(
        "/api/v1/auth/set-password", json={"token": token, "password": "brand new passphrase"}
    )
    assert resp.status_code == 400


def test_second_factor_flow_replay_and_admin_reset(
    client: TestClient, db: Session, clock: object
) -> None:
    user = create_user(db, role=Role.staff)
    headers = login(client, user)
    setup = client.post("/api/v1/auth/totp/setup", headers=headers)
    assert setup.status_code == 200
    totp = pyotp.TOTP(setup.json()["secret"])
    bad = client.post("/api/v1/auth/totp/confirm", json={"code": "000000"}, headers=headers)
    assert bad.status_code == 400 or totp.now() == "000000"
    ok = client.post("/api/v1/auth/totp/confirm", json={"code": totp.now()}, headers=headers)
    assert ok.status_code == 200 and ok.json()["totp_enabled"] is True

    missing = _login(client, user.email, DEFAULT_PASSWORD)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "second_factor_required"
    clock.advance(seconds=30)  # type: ignore[attr-defined]
    from app.core.time import now

    code = totp.at(now())
    assert _login(client, user.email, DEFAULT_PASSWORD, totp_code=code).status_code == 200
    replay = _login(client, user.email, DEFAULT_PASSWORD, totp_code=code)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "invalid_credentials"

    admin = login(client, create_user(db, role=Role.admin))
    reset = client.post(f"/api/v1/admin/users/{user.id}/reset-second-factor", headers=admin)
    assert reset.status_code == 200 and reset.json()["totp_enabled"] is False
    assert _login(client, user.email, DEFAULT_PASSWORD).status_code == 200


@pytest.mark.sqlite
def test_sign_in_works_on_the_embedded_sqlite_default(client: TestClient, db: Session) -> None:
    user = create_user(db, role=Role.admin)
    headers = login(client, user)
    assert client.get("/api/v1/admin/users", headers=headers).status_code == 200
    assert _login(client, user.email, "wrong password here").status_code == 401


def test_the_retention_run_forgets_sign_in_counts_that_no_longer_slow_anyone(
    db: Session, clock: Clock
) -> None:
    old = sign_in.keys_for("gone@example.org", "198.51.100.30")
    assert not any("gone@example.org" in k or "198.51.100.30" in k for k in old)
    sign_in.record_failure(db, old)
    clock.advance(seconds=(get_settings().login_failure_window_minutes + 1) * 60)
    recent = sign_in.keys_for("here@example.org", None)
    sign_in.record_failure(db, recent)
    run_retention(db, now())
    assert db.scalars(select(LoginThrottle.key)).all() == recent
