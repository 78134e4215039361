"""Sign-in: every failure named by the foundation issue has its status and message."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.accounts import throttle as sign_in
from app.core import database
from app.core.settings import get_settings
from app.core.time import now
from app.main import create_app
from app.models import LoginThrottle, Role, User, UserSession
from app.privacy.service import run_retention
from tests.conftest import Clock
from tests.factories import DEFAULT_PASSWORD, RealDb, create_user, drain, login, real_database
from tests.mail_reader import messages, text_of


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
    client: TestClient, db: Session, clock: Clock
) -> None:
    """From one address: three failures are checked, then each try waits 2^(n-3) seconds
    after the previous one (a refused try counts too), and the tenth count locks."""
    settings = get_settings()
    user = create_user(db)
    for _ in range(settings.login_slow_after_failures):
        assert _login(client, user.email, "wrong password here").status_code == 401
    slowed = _login(client, user.email, "wrong password here")
    assert slowed.status_code == 429
    assert slowed.json()["error"]["code"] == "too_many_requests"
    assert "from this address" in slowed.json()["error"]["message"]
    # Counted: the fourth count asks for 2 seconds; waiting them, the fifth try is checked.
    assert int(slowed.headers["Retry-After"]) == 2
    clock.advance(seconds=2)
    assert _login(client, user.email, "wrong password here").status_code == 401
    impatient = _login(client, user.email, "wrong password here")  # count 6: 8 seconds
    assert impatient.status_code == 429 and int(impatient.headers["Retry-After"]) == 8
    clock.advance(seconds=4)
    halfway = _login(client, user.email, "wrong password here")  # too early: count 7
    assert halfway.status_code == 429 and int(halfway.headers["Retry-After"]) == 16
    failures = 7
    while failures < settings.login_lock_after_failures:
        clock.advance(seconds=61)
        resp = _login(client, user.email, "wrong password here")
        assert resp.status_code == 401, (failures, resp.text)
        failures += 1
    clock.advance(seconds=61)
    locked = _login(client, user.email, DEFAULT_PASSWORD)  # even the right password
    assert locked.status_code == 429
    retry = int(locked.headers["Retry-After"])
    assert settings.login_lock_minutes * 60 - 120 <= retry <= settings.login_lock_minutes * 60
    assert "locked" in locked.json()["error"]["message"]
    clock.advance(minutes=settings.login_lock_minutes + 1)
    assert _login(client, user.email, DEFAULT_PASSWORD).status_code == 200
    # Success clears the account's counters (the address keeps its failures).
    left = db.scalars(select(LoginThrottle.key)).all()
    assert left == [sign_in.keys_for(user.email, "testclient").ip]


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
    for msg in messages(mail_dir, to=to):
        body = text_of(msg)
        found = re.search(r"token=(ot_[A-Za-z0-9_-]+)", body)
        assert found, body
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
    assert bad.status_code == 400 or totp.at(now()) == "000000"
    ok = client.post("/api/v1/auth/totp/confirm", json={"code": totp.at(now())}, headers=headers)
    assert ok.status_code == 200 and ok.json()["totp_enabled"] is True

    missing = _login(client, user.email, DEFAULT_PASSWORD)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "second_factor_required"
    clock.advance(seconds=30)  # type: ignore[attr-defined]
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
    stored = [old.account, old.pair, old.ip, old.totp]
    assert not any("gone@example.org" in k or "198.51.100.30" in k for k in stored)
    sign_in.count_attempt(db, old)
    sign_in.address_failed(db, old)
    sign_in.count_code(db, old)
    clock.advance(seconds=(get_settings().login_failure_window_minutes + 1) * 60)
    recent = sign_in.keys_for("here@example.org", None)
    sign_in.count_attempt(db, recent)
    run_retention(db, now())
    assert db.scalars(select(LoginThrottle.key)).all() == [recent.account]


# Locking people out: addresses slow themselves, the account-wide lock yields to a second factor


ATTACKER, USER_DESK, ELSEWHERE = "198.51.100.66", "203.0.113.10", "192.0.2.77"


def _second_factor(db: Session, user: User) -> pyotp.TOTP:
    secret, _ = accounts.totp_setup(db, user)
    user.totp_enabled = True
    db.flush()
    return pyotp.TOTP(secret)


@contextmanager
def _clients(*addresses: str) -> Iterator[list[TestClient]]:
    """One app, one client per source address (the throttle keys by the peer address)."""
    app = create_app()
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                TestClient(app, client=(address, 50000), raise_server_exceptions=False)
            )
            for address in addresses
        ]


def _code(resp: Any) -> str:
    return str(resp.json()["error"]["code"])


def _lock_account(attacker: TestClient, email: str) -> list[int]:
    """As many wrong passwords as the lock needs, at once, from one address."""
    statuses = [
        _login(attacker, email, f"guess number {i}").status_code
        for i in range(get_settings().login_lock_after_failures)
    ]
    return statuses


def _counter(db: Session, key: str | None) -> LoginThrottle | None:
    db.expire_all()
    return db.get(LoginThrottle, key) if key else None


def test_an_attacker_elsewhere_cannot_lock_out_a_user_who_has_the_second_factor(
    db: Session, clock: Clock
) -> None:
    settings = get_settings()
    user = create_user(db, role=Role.staff)
    totp = _second_factor(db, user)
    with _clients(ATTACKER, USER_DESK) as (attacker, desk):
        statuses = _lock_account(attacker, user.email)
        slow = settings.login_slow_after_failures
        assert statuses == [401] * slow + [429] * (len(statuses) - slow)
        account = _counter(db, sign_in.keys_for(user.email, None).account)
        assert account is not None and account.locked_until is not None

        # The password alone is not even checked now: the user is asked for both factors.
        alone = _login(desk, user.email, DEFAULT_PASSWORD)
        assert alone.status_code == 429 and _code(alone) == "account_throttled"
        assert "6-digit code" in alone.json()["error"]["message"]
        both = _login(desk, user.email, DEFAULT_PASSWORD, totp_code=totp.at(now()))
        assert both.status_code == 200, both.text
        # The valid second factor lifted the account-wide lock...
        assert _counter(db, sign_in.keys_for(user.email, None).account) is None
        # ...but not the attacker's own: that address stays locked, whatever it sends.
        clock.advance(seconds=30)
        own = _login(attacker, user.email, DEFAULT_PASSWORD, totp_code=totp.at(now()))
        assert own.status_code == 429 and _code(own) == "too_many_requests"
        assert "locked" in own.json()["error"]["message"]
        # And the attacker can lock the account again: the user still signs in.
        clock.advance(seconds=30)
        with _clients("198.51.100.67") as (second_attacker,):
            _lock_account(second_attacker, user.email)
        again = _login(desk, user.email, DEFAULT_PASSWORD, totp_code=totp.at(now()))
        assert again.status_code == 200, again.text


def test_under_the_account_lock_the_answer_tells_nothing_about_the_password(
    db: Session, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = create_user(db, role=Role.staff)
    totp = _second_factor(db, user)
    checked = _count_password_checks(monkeypatch)
    wrong_code = "000000" if totp.at(now()) != "000000" else "111111"
    probes = [
        (DEFAULT_PASSWORD, None),
        ("another guess", None),
        (DEFAULT_PASSWORD, wrong_code),
        ("another guess", wrong_code),
    ]
    # Each probe from its own address, so no address's own limit answers instead.
    with _clients(ATTACKER, *[f"192.0.2.{i}" for i in range(1, 6)]) as (attacker, *others):
        _lock_account(attacker, user.email)
        before = len(checked)
        alone = [_login(c, user.email, pw) for c, (pw, _) in zip(others, probes[:2], strict=False)]
        assert len(checked) == before  # without a code, no password is checked at all
        with_code = [
            _login(c, user.email, pw, totp_code=code)
            for c, (pw, code) in zip(others[2:], probes[2:], strict=False)
        ]
        answers = alone + with_code
        assert {a.status_code for a in answers} == {429}
        assert {_code(a) for a in answers} == {"account_throttled"}
        texts = {re.sub(r"\d+", "N", a.json()["error"]["message"]) for a in answers}
        assert len(texts) == 1, texts
        # A right code with a wrong password does not sign in either.
        clock.advance(seconds=30)
        wrong_right = _login(others[4], user.email, "another guess", totp_code=totp.at(now()))
        assert wrong_right.status_code == 429 and _code(wrong_right) == "account_throttled"


def _count_password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every password check the sign-in makes, recorded (thread-safe: list.append)."""
    checked: list[str | None] = []
    real = accounts.verify_password

    def counting(hashed: str | None, password: str) -> bool:
        checked.append(hashed)
        return real(hashed, password)

    monkeypatch.setattr(accounts, "verify_password", counting)
    return checked


def test_guessing_from_many_addresses_checks_no_more_passwords_than_from_one(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = get_settings().login_slow_after_failures
    user = create_user(db, role=Role.staff)
    checked = _count_password_checks(monkeypatch)
    addresses = [f"198.51.100.{i}" for i in range(1, 13)]
    with _clients(*addresses) as clients:
        answers = [_login(c, user.email, f"guess from {i}") for i, c in enumerate(clients)]
    assert [a.status_code for a in answers] == [401] * slow + [429] * (len(addresses) - slow)
    assert {_code(a) for a in answers[slow:]} == {"account_throttled"}
    assert len(checked) == slow
    account = _counter(db, sign_in.keys_for(user.email, None).account)
    assert account is not None and account.failures == len(addresses)


def test_codes_are_not_guessed_from_many_addresses_either(
    db: Session, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone who has the password tries codes from many addresses: the account-wide count of
    codes stops them as the password's count stops password guesses; a reset ends it."""
    slow = get_settings().login_slow_after_failures
    user = create_user(db, role=Role.staff)
    totp = _second_factor(db, user)
    tried: list[str] = []
    real = accounts._matching_step

    def counting(who: User, code: str) -> int | None:
        tried.append(code)
        return real(who, code)

    monkeypatch.setattr(accounts, "_matching_step", counting)
    wrong_code = "000000" if totp.at(now()) != "000000" else "111111"
    with _clients(*[f"198.51.100.{i}" for i in range(20, 30)]) as clients:
        answers = [_login(c, user.email, DEFAULT_PASSWORD, totp_code=wrong_code) for c in clients]
        assert [a.status_code for a in answers[:slow]] == [401] * slow
        assert {a.status_code for a in answers[slow:]} == {429}
        assert len(tried) == slow
        # The right code is refused too until the wait is over: the answer cannot differ.
        late = _login(clients[0], user.email, DEFAULT_PASSWORD, totp_code=totp.at(now()))
        assert late.status_code == 429
    codes = _counter(db, sign_in.keys_for(user.email, None).totp)
    assert codes is not None and codes.failures >= len(answers)


def test_a_password_reset_link_lifts_the_account_lock(
    db: Session, mail_dir: Path, clock: Clock
) -> None:
    user = create_user(db, role=Role.staff)  # no second factor: only the link lifts the lock
    with _clients(ATTACKER, USER_DESK) as (attacker, desk):
        _lock_account(attacker, user.email)
        refused = _login(desk, user.email, DEFAULT_PASSWORD)
        assert refused.status_code == 429 and _code(refused) == "account_throttled"
        assert "reset your password" in refused.json()["error"]["message"]
        assert desk.post("/api/v1/auth/password-reset", json={"email": user.email}).status_code
        assert drain(db) == 1
        # Asking for the link changes nothing; using it does.
        assert _login(desk, user.email, DEFAULT_PASSWORD).status_code == 429
        token = _link_token(mail_dir, user.email)
        new = "a brand new passphrase"
        done = desk.post("/api/v1/auth/set-password", json={"token": token, "password": new})
        assert done.status_code == 200, done.text
        assert _counter(db, sign_in.keys_for(user.email, None).account) is None
        assert _login(desk, user.email, new).status_code == 200
        # The attacker's address is still locked for this account.
        assert _login(attacker, user.email, new).status_code == 429


# Races: parallel requests on their own connections, committed for real (PostgreSQL)


@pytest.fixture(scope="module")
def committed_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealDb]:
    with real_database("postgresql", tmp_path_factory.mktemp("sign-in-races")) as real:
        yield real


@pytest.fixture
def racing(committed_pg: RealDb) -> Iterator[RealDb]:
    """The app on a database whose commits are real: every request its own connection."""
    database.set_engine(committed_pg.engine)
    yield committed_pg
    database.set_engine(None)


def _at_once(count: int, send: Callable[[int], Any]) -> list[Any]:
    """``send(i)`` from ``count`` threads released together by a barrier."""
    barrier = threading.Barrier(count)
    answers: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            answers[i] = send(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    return answers


def _committed_user(real: RealDb, *, second_factor: bool = False) -> tuple[str, Any, Any]:
    """(e-mail, user id, TOTP or None), committed."""
    with real.session() as s:
        user = create_user(s, role=Role.staff)
        totp = _second_factor(s, user) if second_factor else None
        s.commit()
        return user.email, user.id, totp


def test_one_code_signs_in_once_however_many_parallel_sign_ins_carry_it(racing: RealDb) -> None:
    for round_, parallel in enumerate((2, 3, 3)):
        email, user_id, totp = _committed_user(racing, second_factor=True)
        code = totp.at(now())
        with _clients(*[f"203.0.113.{51 + round_}"] * parallel) as clients:
            answers = _at_once(
                parallel,
                lambda i, c=clients, e=email, k=code: _login(
                    c[i], e, DEFAULT_PASSWORD, totp_code=k
                ),
            )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [401] * (parallel - 1), [a.text for a in answers]
        assert {_code(a) for a in answers if a.status_code == 401} == {"invalid_credentials"}
        with racing.session() as s:
            sessions = s.scalar(
                select(func.count()).select_from(UserSession).where(UserSession.user_id == user_id)
            )
        assert sessions == 1


def test_parallel_wrong_passwords_are_all_counted_and_only_the_allowed_are_checked(
    racing: RealDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    attempts, address = 30, "203.0.113.60"
    checked = _count_password_checks(monkeypatch)
    email, _, _ = _committed_user(racing)
    with _clients(*[address] * attempts) as clients:
        answers = _at_once(attempts, lambda i: _login(clients[i], email, f"parallel guess {i}"))
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {401, 429}, [a.text for a in answers if a.status_code >= 500]
    # Counted before they were checked: only the first ones of the burst were checked.
    assert 1 <= len(checked) <= settings.login_slow_after_failures
    assert statuses.count(401) == len(checked)
    keys = sign_in.keys_for(email, address)
    with racing.session() as s:
        account, pair, ip = (s.get(LoginThrottle, k) for k in (keys.account, keys.pair, keys.ip))
    assert account is not None and pair is not None and ip is not None
    assert account.failures == pair.failures == attempts  # every attempt counted
    assert ip.failures == len(checked)  # the address's failed checks
    assert account.locked_until is not None and pair.locked_until is not None


def test_two_first_failures_at_the_same_moment_are_both_counted_without_an_error(
    racing: RealDb,
) -> None:
    for round_ in range(3):
        address = f"203.0.113.{70 + round_}"
        email, _, _ = _committed_user(racing)
        with _clients(address, address) as clients:
            answers = _at_once(2, lambda i, c=clients, e=email: _login(c[i], e, "first guess"))
        assert [a.status_code for a in answers] == [401, 401], [a.text for a in answers]
        keys = sign_in.keys_for(email, address)
        with racing.session() as s:
            counts = [s.get(LoginThrottle, k) for k in (keys.account, keys.pair, keys.ip)]
        assert [c.failures if c else None for c in counts] == [2, 2, 2]


def test_sign_in_on_a_real_sqlite_file_counts_without_waiting_for_itself(tmp_path: Path) -> None:
    """The embedded default, each session on its own connection: the counts taken in their
    own transaction and those taken in the request's (after it started writing) never wait
    for each other (a wait would last the 30-second busy timeout, then fail)."""
    with real_database("sqlite", tmp_path) as real:
        plain, _, _ = _committed_user(real)
        guarded, _, totp = _committed_user(real, second_factor=True)
        with _clients("192.0.2.200") as (c,):
            assert _login(c, plain, "wrong password here").status_code == 401
            assert _login(c, plain, DEFAULT_PASSWORD).status_code == 200
            asked = _login(c, guarded, DEFAULT_PASSWORD)
            assert _code(asked) == "second_factor_required"
            ok = _login(c, guarded, DEFAULT_PASSWORD, totp_code=totp.at(now()))
            assert ok.status_code == 200, ok.text
            statuses = [_login(c, plain, f"guess {i}").status_code for i in range(3)]
            assert statuses == [401, 401, 429]  # the address has 3 failures now
        keys = sign_in.keys_for(plain, "192.0.2.200")
        with real.session() as s:
            stored = {k: s.get(LoginThrottle, k) for k in (keys.account, keys.pair, keys.ip)}
            s.commit()
        assert [row.failures if row else None for row in stored.values()] == [3, 3, 3]
