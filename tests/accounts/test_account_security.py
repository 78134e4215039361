"""Every signed-in user's own account (``/my-account`` pages and ``/api/v1/auth`` routes):
change the password, turn the second factor on with a QR code drawn by the service, one-time
recovery codes, turn it off, see and end one's own sessions."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
import segno
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.core import database
from app.core.settings import get_settings
from app.core.time import now
from app.main import create_app
from app.models import AuditEvent, RecoveryCode, Role, User, UserSession
from tests.conftest import Clock
from tests.factories import (
    DEFAULT_PASSWORD,
    RealDb,
    bearer,
    create_user,
    csrf,
    field_error,
    hidden_fields,
    real_database,
    sign_in,
    signed_in,
)

NEW_PASSWORD = "a brand new passphrase"


def _api_token(client: TestClient, user: User, password: str = DEFAULT_PASSWORD) -> str:
    resp = client.post("/api/v1/auth/login", json={"email": user.email, "password": password})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["user_token"])


def _actions(db: Session, user: User) -> list[str]:
    rows = db.scalars(
        select(AuditEvent.action).where(AuditEvent.actor == str(user.id)).order_by(AuditEvent.seq)
    )
    return list(rows)


def _post(web: TestClient, url: str, **data: str) -> Any:
    return web.post(url, data={**csrf(web, "/my-account"), **data}, follow_redirects=False)


def _enrol(web: TestClient, user: User, db: Session) -> tuple[pyotp.TOTP, list[str]]:
    """Turn the second factor on through the pages: (the app's TOTP, the recovery codes)."""
    start = _post(web, "/my-account/second-factor/start")
    assert start.status_code == 303 and start.headers["location"] == "/my-account/second-factor"
    shown = web.get("/my-account/second-factor")
    assert shown.status_code == 200
    key = re.search(r'<code id="manual-key" dir="ltr">([A-Z2-7 ]+)</code>', shown.text)
    assert key is not None
    totp = pyotp.TOTP(key.group(1).replace(" ", ""))
    done = web.post(
        "/my-account/second-factor/confirm",
        data={**hidden_fields(shown.text), "code": totp.at(now())},
        follow_redirects=False,
    )
    assert done.status_code == 200, done.text
    codes = re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", done.text)
    db.refresh(user)
    return totp, codes


def _modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules of segno's SVG: one path of horizontal runs (``M x y``, ``m dx dy``,
    ``h n``), y at the middle of a row."""
    path = re.search(r'class="qrline"[^>]* d="([^"]+)"', svg)
    assert path is not None
    dark: set[tuple[int, int]] = set()
    x = y = 0.0
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path.group(1)):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            dark |= {(int(x) + i, int(y)) for i in range(int(a))}
            x += float(a)
    return dark


# The page ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.staff, Role.expert, Role.admin])
def test_every_role_has_its_account_page_behind_the_sign_in(
    web: TestClient, db: Session, role: Role
) -> None:
    away = web.get("/my-account", follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/staff/sign-in?next=/my-account"
    user = create_user(db, role=role)
    landed = sign_in(web, user, next="/my-account")
    assert landed.headers["location"] == "/my-account"
    page = web.get("/my-account")
    assert page.status_code == 200
    assert '<a href="/my-account" aria-current="page">' in page.text
    for section in ('id="password"', 'id="second-factor"', 'id="session-list"'):
        assert section in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


# Password ---------------------------------------------------------------------------------------


def test_changing_the_password_keeps_this_browser_and_ends_the_other_sessions(
    web: TestClient, client: TestClient, db: Session
) -> None:
    user = create_user(db)
    signed_in(web, user)
    elsewhere = _api_token(client, user)
    done = _post(
        web,
        "/my-account/password",
        current_password=DEFAULT_PASSWORD,
        new_password=NEW_PASSWORD,
        new_password_again=NEW_PASSWORD,
    )
    assert done.status_code == 303 and done.headers["location"] == "/my-account?done=password"
    assert "other sessions are signed out" in web.get("/my-account").text
    assert client.get("/api/v1/auth/me", headers=bearer(elsewhere)).status_code == 401
    assert (
        client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD}
        ).status_code
        == 401
    )
    _api_token(client, user, NEW_PASSWORD)
    assert "auth.password_changed" in _actions(db, user)


def test_a_wrong_current_password_or_differing_new_ones_change_nothing(
    web: TestClient, client: TestClient, db: Session
) -> None:
    user = create_user(db)
    signed_in(web, user)
    wrong = _post(
        web,
        "/my-account/password",
        current_password="not my password",
        new_password=NEW_PASSWORD,
        new_password_again=NEW_PASSWORD,
    )
    assert wrong.status_code == 422
    assert "incorrect" in field_error(wrong.text, "current_password")
    differ = _post(
        web,
        "/my-account/password",
        current_password=DEFAULT_PASSWORD,
        new_password=NEW_PASSWORD,
        new_password_again=NEW_PASSWORD + "x",
    )
    assert differ.status_code == 422 and "differ" in field_error(differ.text, "new_password_again")
    short = _post(
        web,
        "/my-account/password",
        current_password=DEFAULT_PASSWORD,
        new_password="x" * 11,
        new_password_again="x" * 11,
    )
    assert short.status_code == 422 and "12 characters" in field_error(short.text, "new_password")
    _api_token(client, user)  # the old password still signs in
    assert "auth.password_changed" not in _actions(db, user)


def test_a_form_without_the_csrf_token_is_refused_and_does_nothing(
    web: TestClient, client: TestClient, db: Session
) -> None:
    user = create_user(db)
    signed_in(web, user)
    other = _api_token(client, user)
    for url, data in [
        (
            "/my-account/password",
            {
                "current_password": DEFAULT_PASSWORD,
                "new_password": NEW_PASSWORD,
                "new_password_again": NEW_PASSWORD,
            },
        ),
        ("/my-account/second-factor/start", {}),
        ("/my-account/sessions/end-others", {}),
    ]:
        refused = web.post(url, data={**data, "csrf_token": "forged"}, follow_redirects=False)
        assert refused.status_code == 403, url
    db.refresh(user)
    assert user.totp_secret_enc is None
    assert client.get("/api/v1/auth/me", headers=bearer(other)).status_code == 200
    _api_token(client, user)


# Second factor and recovery codes ---------------------------------------------------------------


def test_the_qr_code_is_drawn_here_as_inline_svg_of_the_otpauth_uri(
    web: TestClient, db: Session, clock: Clock
) -> None:
    user = create_user(db)
    signed_in(web, user)
    _post(web, "/my-account/second-factor/start")
    shown = web.get("/my-account/second-factor")
    db.refresh(user)
    pending = accounts.totp_pending(user)
    assert pending is not None
    secret, uri = pending
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    assert "issuer=Asylum%20Intake" in uri
    svg = re.search(r'<div class="qr" id="qr">(<svg .*?</svg>)</div>', shown.text, re.S)
    assert svg is not None
    # Read the drawn modules back and compare them with the URI's own QR matrix.
    qr = segno.make(uri, error="m")
    assert _modules(svg.group(1)) == {
        (x + 4, y + 4) for y, row in enumerate(qr.matrix) for x, dark in enumerate(row) if dark
    }
    assert "style=" not in svg.group(1) and "http" not in svg.group(1).replace(uri, "")
    assert "<img" not in shown.text  # nothing fetched, from here or elsewhere
    assert secret[:4] in shown.text  # the manual key, in groups of four


def test_a_wrong_first_code_leaves_the_second_factor_off(
    web: TestClient, db: Session, clock: Clock
) -> None:
    user = create_user(db)
    signed_in(web, user)
    _post(web, "/my-account/second-factor/start")
    db.refresh(user)
    secret, _ = accounts.totp_pending(user) or ("", "")
    right = pyotp.TOTP(secret).at(now())
    wrong_code = f"{(int(right) + 1) % 1_000_000:06d}"
    wrong = _post(web, "/my-account/second-factor/confirm", code=wrong_code)
    assert wrong.status_code == 422
    assert "incorrect" in field_error(wrong.text, "code")
    db.refresh(user)
    assert not user.totp_enabled
    assert db.scalar(select(func.count()).select_from(RecoveryCode)) == 0


def test_enrolment_shows_ten_recovery_codes_once_stored_only_as_hashes(
    web: TestClient, db: Session, clock: Clock
) -> None:
    user = create_user(db)
    signed_in(web, user)
    _, codes = _enrol(web, user, db)
    assert user.totp_enabled
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = db.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id))
    hashes = set(stored)
    assert len(hashes) == 10 and not any(
        c in h or c.replace("-", "") in h for c in codes for h in hashes
    )
    again = web.get("/my-account")
    assert codes[0] not in again.text and "Recovery codes left: 10." in again.text
    assert web.get("/my-account/second-factor", follow_redirects=False).status_code == 303
    actions = _actions(db, user)
    assert "auth.second_factor_enabled" in actions and "auth.recovery_codes_generated" in actions


def test_a_recovery_code_signs_in_once_in_place_of_the_code(
    web: TestClient, db: Session, clock: Clock
) -> None:
    user = create_user(db)
    signed_in(web, user)
    _, codes = _enrol(web, user, db)
    with TestClient(create_app(), base_url="https://testserver") as phone_lost:
        first = sign_in(phone_lost, user)
        assert 'name="totp_code"' in first.text and "recovery codes" in first.text
        ok = phone_lost.post(
            "/staff/sign-in",
            data={**hidden_fields(first.text), "totp_code": codes[3].upper()},
            follow_redirects=False,
        )
        assert ok.status_code == 303, ok.text
    with TestClient(create_app(), base_url="https://testserver") as again:
        first = sign_in(again, user)
        used = again.post(
            "/staff/sign-in",
            data={**hidden_fields(first.text), "totp_code": codes[3]},
            follow_redirects=False,
        )
        assert used.status_code == 401
        assert "incorrect or was used already" in field_error(used.text, "totp_code")
    assert "auth.recovery_code_used" in _actions(db, user)
    assert "Recovery codes left: 9." in web.get("/my-account").text


def test_new_recovery_codes_need_the_password_and_retire_the_old_ones(
    web: TestClient, client: TestClient, db: Session, clock: Clock
) -> None:
    user = create_user(db)
    signed_in(web, user)
    _, old = _enrol(web, user, db)
    wrong = _post(web, "/my-account/recovery-codes", password="not it")
    assert wrong.status_code == 422 and "incorrect" in field_error(wrong.text, "codes_password")
    fresh = _post(web, "/my-account/recovery-codes", password=DEFAULT_PASSWORD)
    assert fresh.status_code == 200
    new = re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", fresh.text)
    assert len(new) == 10 and not set(new) & set(old)

    def login(code: str) -> int:
        body = {"email": user.email, "password": DEFAULT_PASSWORD, "totp_code": code}
        return int(client.post("/api/v1/auth/login", json=body).status_code)

    assert login(old[0]) == 401
    assert login(new[0]) == 200


def test_turning_the_second_factor_off_needs_the_password_and_a_code(
    web: TestClient, client: TestClient, db: Session, clock: Clock
) -> None:
    user = create_user(db)
    signed_in(web, user)
    totp, codes = _enrol(web, user, db)
    clock.advance(seconds=31)
    bad_password = _post(
        web, "/my-account/second-factor/disable", password="nope", code=totp.at(now())
    )
    assert bad_password.status_code == 422
    assert "incorrect" in field_error(bad_password.text, "disable_password")
    bad_code = _post(
        web, "/my-account/second-factor/disable", password=DEFAULT_PASSWORD, code="aaaaa-aaaaa"
    )
    assert bad_code.status_code == 422
    assert "incorrect" in field_error(bad_code.text, "disable_code")
    db.refresh(user)
    assert user.totp_enabled
    off = _post(web, "/my-account/second-factor/disable", password=DEFAULT_PASSWORD, code=codes[0])
    assert off.status_code == 303
    db.refresh(user)
    assert not user.totp_enabled and user.totp_secret_enc is None
    assert db.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    _api_token(client, user)  # the password alone signs in again
    assert "auth.second_factor_disabled" in _actions(db, user)


def test_wrong_recovery_codes_are_counted_by_the_sign_in_code_throttle(
    db: Session, clock: Clock
) -> None:
    """Guessing recovery codes from many addresses is as slow as guessing 6-digit codes: the
    same account-wide count of codes, and a good recovery code is refused while it holds."""
    slow = get_settings().login_slow_after_failures
    user = create_user(db)
    accounts.totp_setup(db, user)
    user.totp_enabled = True
    codes = accounts.new_recovery_codes(db, user)
    app = create_app()
    answers = []
    for i in range(slow + 2):
        with TestClient(app, client=(f"198.51.100.{40 + i}", 50000)) as c:
            body = {"email": user.email, "password": DEFAULT_PASSWORD, "totp_code": "zzzzz-zzzzz"}
            answers.append(c.post("/api/v1/auth/login", json=body).status_code)
    assert answers == [401] * slow + [429, 429]
    with TestClient(app, client=("198.51.100.60", 50000)) as c:
        body = {"email": user.email, "password": DEFAULT_PASSWORD, "totp_code": codes[0]}
        assert c.post("/api/v1/auth/login", json=body).status_code == 429
    assert accounts.recovery_codes_left(db, user) == 10  # the refused one was not used up


def test_an_admin_reset_of_the_second_factor_retires_the_recovery_codes(
    client: TestClient, db: Session
) -> None:
    user = create_user(db)
    accounts.totp_setup(db, user)
    user.totp_enabled = True
    codes = accounts.new_recovery_codes(db, user)
    accounts.reset_second_factor(db, user.id)
    assert accounts.recovery_codes_left(db, user) == 0
    accounts.totp_setup(db, user)
    user.totp_enabled = True  # on again, with a new phone: the old paper codes stay dead
    db.flush()
    body = {"email": user.email, "password": DEFAULT_PASSWORD, "totp_code": codes[0]}
    assert client.post("/api/v1/auth/login", json=body).status_code == 401


# Sessions ---------------------------------------------------------------------------------------


def test_ending_a_session_makes_its_token_fail(
    web: TestClient, client: TestClient, db: Session
) -> None:
    user = create_user(db)
    signed_in(web, user)
    other = _api_token(client, user)
    third = _api_token(client, user)
    listed = web.get("/my-account")
    ids = re.findall(r'<li id="session-([0-9a-f-]{36})">', listed.text)
    assert len(ids) == 3 and "This browser" in listed.text
    other_row = db.scalar(
        select(UserSession).where(UserSession.id.in_(ids)).order_by(UserSession.created_at)
    )
    mine = db.scalar(
        select(UserSession.id)
        .where(UserSession.user_id == user.id)
        .order_by(UserSession.created_at)
        .limit(1)
    )
    assert other_row is not None and mine is not None
    target = next(i for i in ids if i != str(mine))
    ended = _post(web, f"/my-account/sessions/{target}/end")
    assert ended.status_code == 303
    alive = [client.get("/api/v1/auth/me", headers=bearer(t)).status_code for t in (other, third)]
    assert sorted(alive) == [200, 401]
    assert "auth.session_ended" in _actions(db, user)
    again = _post(web, f"/my-account/sessions/{target}/end")
    assert again.status_code == 404
    everywhere = _post(web, "/my-account/sessions/end-others")
    assert everywhere.status_code == 303
    assert [
        client.get("/api/v1/auth/me", headers=bearer(t)).status_code for t in (other, third)
    ] == [401, 401]
    assert web.get("/my-account").status_code == 200  # this browser stays signed in
    assert "auth.other_sessions_ended" in _actions(db, user)


def test_nobody_ends_another_users_session(
    web: TestClient, client: TestClient, db: Session
) -> None:
    user, victim = create_user(db), create_user(db)
    signed_in(web, user)
    token = _api_token(client, victim)
    theirs = db.scalar(select(UserSession.id).where(UserSession.user_id == victim.id))
    assert _post(web, f"/my-account/sessions/{theirs}/end").status_code == 404
    api = client.delete(f"/api/v1/auth/sessions/{theirs}", headers=bearer(_api_token(client, user)))
    assert api.status_code == 404 and api.json()["error"]["code"] == "session_not_found"
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200


# The API ----------------------------------------------------------------------------------------


def test_the_api_gives_recovery_codes_lists_and_ends_sessions(
    client: TestClient, db: Session, clock: Clock
) -> None:
    user = create_user(db, role=Role.expert)
    token = _api_token(client, user)
    setup = client.post("/api/v1/auth/totp/setup", headers=bearer(token)).json()
    code = pyotp.TOTP(setup["secret"]).at(now())
    confirmed = client.post("/api/v1/auth/totp/confirm", json={"code": code}, headers=bearer(token))
    assert confirmed.status_code == 200 and confirmed.json()["totp_enabled"] is True
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10
    wrong = client.post(
        "/api/v1/auth/recovery-codes", json={"password": "nope"}, headers=bearer(token)
    )
    assert wrong.status_code == 401
    fresh = client.post(
        "/api/v1/auth/recovery-codes", json={"password": DEFAULT_PASSWORD}, headers=bearer(token)
    )
    assert fresh.status_code == 200 and len(fresh.json()["recovery_codes"]) == 10
    second = client.post(
        "/api/v1/auth/login",
        json={
            "email": user.email,
            "password": DEFAULT_PASSWORD,
            "totp_code": fresh.json()["recovery_codes"][0],
        },
    ).json()["user_token"]
    listed = client.get("/api/v1/auth/sessions", headers=bearer(token)).json()
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    other = next(s["id"] for s in listed if not s["current"])
    gone = client.delete(f"/api/v1/auth/sessions/{other}", headers=bearer(token))
    assert gone.status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(second)).status_code == 401
    off = client.post(
        "/api/v1/auth/totp/disable",
        json={"password": DEFAULT_PASSWORD, "code": fresh.json()["recovery_codes"][1]},
        headers=bearer(token),
    )
    assert off.status_code == 200 and off.json()["totp_enabled"] is False
    ends = client.post("/api/v1/auth/sessions/end-others", headers=bearer(token))
    assert ends.status_code == 204


# Parallel use of one recovery code (real commits on PostgreSQL) ---------------------------------


@pytest.fixture
def racing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealDb]:
    with real_database("postgresql", tmp_path_factory.mktemp("recovery-races")) as real:
        yield real


def _at_once(count: int, send: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(count)
    answers: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        answers[i] = send(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    return answers


def test_parallel_sign_ins_with_one_recovery_code_exactly_one_wins(racing: RealDb) -> None:
    with racing.session() as s:
        user = create_user(s, role=Role.staff)
        accounts.totp_setup(s, user)
        user.totp_enabled = True
        codes = accounts.new_recovery_codes(s, user)
        s.commit()
        email = user.email
    parallel = 3
    body = {"email": email, "password": DEFAULT_PASSWORD, "totp_code": codes[0]}
    app = create_app()
    clients = [
        TestClient(app, client=(f"203.0.113.{70 + i}", 50000), raise_server_exceptions=False)
        for i in range(parallel)
    ]
    for c in clients:
        c.__enter__()
    try:
        answers = _at_once(parallel, lambda i: clients[i].post("/api/v1/auth/login", json=body))
    finally:
        for c in clients:
            c.__exit__(None, None, None)
    assert sorted(a.status_code for a in answers) == [200] + [401] * (parallel - 1)
    with racing.session() as s:
        used = s.scalar(
            select(func.count()).select_from(RecoveryCode).where(RecoveryCode.used_at.is_not(None))
        )
    assert used == 1
    assert database  # the app used the committed database for every request
