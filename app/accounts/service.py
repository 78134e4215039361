"""Accounts and sign-in: users, sessions, invites, password resets, second factor."""

from __future__ import annotations

import datetime as dt
import math
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.accounts import throttle
from app.accounts.errors import (
    AccountThrottled,
    EmailTaken,
    InvalidCredentials,
    InvalidLink,
    SecondFactorRequired,
    SessionNotFound,
    SessionRevoked,
    TokenExpired,
    UserNotFound,
)
from app.accounts.schemas import LANGUAGE_PROBLEM, ZONE_PROBLEM, known_zones
from app.audit import service as audit
from app.core import crypto
from app.core.errors import BadRequest, FieldProblem, NotAuthenticated, Unprocessable
from app.core.security import (
    ONE_TIME_TOKEN_PREFIX,
    REQUESTER_TOKEN_PREFIX,
    USER_TOKEN_PREFIX,
    hash_password,
    hash_token,
    new_token,
    password_needs_rehash,
    verify_password,
)
from app.core.settings import get_settings
from app.core.time import now
from app.models import (
    AccountToken,
    AccountTokenPurpose,
    ExpertProfile,
    RecoveryCode,
    Role,
    User,
    UserLanguage,
    UserSession,
)
from app.outbox import service as outbox

TOTP_ISSUER = "Asylum Intake"
# Sessions are touched at most this often, so reads do not each cost a write.
LAST_SEEN_RESOLUTION = dt.timedelta(minutes=1)


@dataclass
class LoginResult:
    token: str
    session: UserSession
    user: User


# Users --------------------------------------------------------------------------------------


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound("No user with this id.")
    return user


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.lower()))


def list_users(session: Session, *, role: Role | None = None) -> Sequence[User]:
    stmt = select(User).order_by(User.created_at)
    if role is not None:
        stmt = stmt.where(User.role == role)
    return session.scalars(stmt).all()


def create_user(
    session: Session,
    *,
    email: str,
    display_name: str,
    role: Role,
    password: str | None = None,
) -> User:
    email = email.lower()
    if get_user_by_email(session, email) is not None:
        raise EmailTaken("A user with this e-mail address exists already.")
    user = User(
        email=email,
        display_name=display_name,
        role=role,
        password_hash=hash_password(password) if password else None,
        password_changed_at=now() if password else None,
        is_active=True,
    )
    session.add(user)
    session.flush()
    return user


def invite_user(
    session: Session, *, email: str, display_name: str, role: Role, by: User | None = None
) -> User:
    user = create_user(session, email=email, display_name=display_name, role=role)
    _issue_account_token(session, user, AccountTokenPurpose.invite)
    audit.record(
        session, action="users.invited", actor=_actor(by), actor_role=_role(by), target=str(user.id)
    )
    return user


def _actor(by: User | None) -> str:
    """The audit row's actor: the admin who acted (the API and the pages pass them)."""
    return "admin" if by is None else str(by.id)


def _role(by: User | None) -> str | None:
    return None if by is None else by.role.value


def _refuse_losing_last_admin(session: Session, user: User) -> None:
    """The organisation keeps at least one active admin: nobody else could undo the change.
    The active admins' rows are locked, so two admins deactivating each other at once cannot
    both pass (the second re-reads after the first commits)."""
    if user.role != Role.admin or not user.is_active:
        return
    admins = session.scalars(
        select(User.id).where(User.role == Role.admin, User.is_active.is_(True)).with_for_update()
    ).all()
    if len(admins) <= 1:
        raise BadRequest(
            "This is the last active admin: make someone else an admin first, "
            "so that the organisation keeps one."
        )


def update_user(
    session: Session,
    user_id: uuid.UUID,
    *,
    display_name: str | None,
    role: Role | None,
    by: User | None = None,
) -> User:
    user = get_user(session, user_id)
    if display_name is not None:
        user.display_name = display_name
    if role is not None and role != user.role:
        if role != Role.admin:
            _refuse_losing_last_admin(session, user)
        audit.record(
            session,
            action="users.role_changed",
            actor=_actor(by),
            actor_role=_role(by),
            target=str(user.id),
            details={"from": user.role.value, "to": role.value},
        )
        user.role = role
        # A changed role must not keep privileges granted to live sessions.
        revoke_all_sessions(session, user.id)
    session.flush()
    return user


def deactivate_user(session: Session, user_id: uuid.UUID, *, by: User) -> User:
    user = get_user(session, user_id)
    if user.id == by.id:
        raise BadRequest("You cannot deactivate your own account.")
    _refuse_losing_last_admin(session, user)
    user.is_active = False
    revoke_all_sessions(session, user.id)
    audit.record(
        session,
        action="users.deactivated",
        actor=str(by.id),
        actor_role=by.role.value,
        target=str(user.id),
    )
    session.flush()
    return user


def reactivate_user(session: Session, user_id: uuid.UUID, *, by: User | None = None) -> User:
    user = get_user(session, user_id)
    user.is_active = True
    audit.record(
        session,
        action="users.reactivated",
        actor=_actor(by),
        actor_role=_role(by),
        target=str(user.id),
    )
    session.flush()
    return user


def reset_second_factor(session: Session, user_id: uuid.UUID, *, by: User | None = None) -> User:
    user = get_user(session, user_id)
    user.totp_enabled = False
    user.totp_secret_enc = None
    user.totp_key_id = None
    user.totp_last_step = None
    _drop_recovery_codes(session, user)
    revoke_all_sessions(session, user.id)
    audit.record(
        session,
        action="users.second_factor_reset",
        actor=_actor(by),
        actor_role=_role(by),
        target=str(user.id),
    )
    session.flush()
    return user


# Sign-in ------------------------------------------------------------------------------------


def login(
    session: Session,
    *,
    email: str,
    password: str,
    totp_code: str | None,
    ip: str | None,
    user_agent: str | None,
) -> LoginResult:
    """Sign in with the password (and the second factor when it is on). Throttling (see
    ``throttle``): the attempt is counted first; an address over its limits gets ``429`` with
    nothing checked; an account over its limit from everywhere is still signed in with the
    password and a valid code together (``AccountThrottled`` otherwise)."""
    keys = throttle.keys_for(email, ip)
    verdict = throttle.count_attempt(session, keys)
    by_address = verdict.refused(keys.per_address)
    if by_address is not None:
        raise throttle.too_many(by_address, "from this address")
    user = get_user_by_email(session, email)
    by_account = verdict.refused([keys.account])
    if by_account is not None:
        return _login_with_both_factors(
            session, keys, by_account, user, password, totp_code, ip, user_agent
        )
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        # Committed with the failure count (InvalidCredentials persists its changes).
        _failed(session, keys, user, "password_or_account", ip, user_agent)
        raise InvalidCredentials("E-mail or password is incorrect.")
    if user.totp_enabled:
        if not totp_code:
            # Not a failure: the client asks for the code and sends both again.
            throttle.refund(session, keys)
            raise SecondFactorRequired(
                "Enter the 6-digit code from your authenticator app (field totp_code)."
            )
        code_refused = _count_code(session, keys)
        if code_refused is not None:
            raise throttle.too_many(code_refused, "with a wrong code for this account")
        if not _use_second_factor(session, user, totp_code):
            _failed(session, keys, user, "second_factor", ip, user_agent)
            raise InvalidCredentials("The code is incorrect or was used already.")
    return _signed_in(session, keys, user, password, ip, user_agent)


def _login_with_both_factors(
    session: Session,
    keys: throttle.Keys,
    refusal: throttle.Refusal,
    user: User | None,
    password: str,
    totp_code: str | None,
    ip: str | None,
    user_agent: str | None,
) -> LoginResult:
    """The account is over its limit: a valid second factor lifts it, the password alone is
    never checked (guessing it from many addresses stays as slow as from one). Whatever was
    wrong, the answer is the same, so it tells nothing about the password."""
    wait = math.ceil(refusal.wait)
    problem = AccountThrottled(
        "Too many failed sign-in attempts for this account. Sign in with your password and the "
        "6-digit code from your authenticator app, or reset your password by e-mail; "
        f"otherwise try again in {wait} seconds.",
        retry_after_seconds=wait,
    )
    if not totp_code:
        raise problem
    password_ok = verify_password(user.password_hash if user else None, password)
    if (
        not password_ok
        or user is None
        or not user.is_active
        or not user.totp_enabled
        or _count_code(session, keys) is not None
        or not _use_second_factor(session, user, totp_code)
    ):
        _failed(session, keys, user, "account_throttled", ip, user_agent, status_code=429)
        raise problem
    return _signed_in(session, keys, user, password, ip, user_agent)


def _count_code(session: Session, keys: throttle.Keys) -> throttle.Refusal | None:
    """Count a code given with the right password, before it is checked (account-wide, so
    the six digits are not guessed from many addresses either); a refusal over the limit. Only
    the right password counts here, so nobody without it can block the code."""
    return throttle.count_code(session, keys)


def _failed(
    session: Session,
    keys: throttle.Keys,
    user: User | None,
    reason: str,
    ip: str | None,
    user_agent: str | None,
    *,
    status_code: int = 401,
) -> None:
    """A checked attempt failed: counted for the address, recorded as denied."""
    throttle.address_failed(session, keys)
    audit.record(
        session,
        action="auth.login",
        actor=str(user.id) if user is not None else "anonymous",
        actor_role=user.role.value if user is not None else None,
        outcome="denied",
        status_code=status_code,
        details={"reason": reason},
        address=ip,
        user_agent=user_agent,
    )


def _signed_in(
    session: Session,
    keys: throttle.Keys,
    user: User,
    password: str,
    ip: str | None,
    user_agent: str | None,
) -> LoginResult:
    throttle.signed_in(session, keys)
    if user.password_hash and password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    current = now()
    user.last_login_at = current
    token = new_token(USER_TOKEN_PREFIX)
    user_session = UserSession(
        user_id=user.id,
        token_hash=hash_token(token),
        created_at=current,
        expires_at=current + dt.timedelta(minutes=get_settings().user_token_ttl_minutes),
        last_seen_at=current,
        ip_address=(ip or "")[:64] or None,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(user_session)
    session.flush()
    audit.record(
        session,
        action="auth.login",
        actor=str(user.id),
        actor_role=user.role.value,
        details={"second_factor": user.totp_enabled},
        address=ip,
        user_agent=user_agent,
    )
    return LoginResult(token=token, session=user_session, user=user)


def authenticate(session: Session, token: str) -> tuple[User, UserSession]:
    if token.startswith(REQUESTER_TOKEN_PREFIX):
        raise NotAuthenticated(
            "This is a requester's link token; staff, experts and admins sign in instead."
        )
    if not token.startswith(USER_TOKEN_PREFIX):
        raise NotAuthenticated("Sign in first: the token is not a user token.")
    row = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == hash_token(token))
    ).first()
    if row is None:
        raise NotAuthenticated("Sign in first: the token is not valid.")
    user_session, user = row
    current = now()
    if user_session.revoked_at is not None:
        raise SessionRevoked("This session was signed out. Sign in again.")
    if user_session.expires_at <= current:
        raise TokenExpired("Your session has expired. Sign in again.")
    if not user.is_active:
        raise SessionRevoked("This account is deactivated.")
    if user_session.last_seen_at is None or current - user_session.last_seen_at > (
        LAST_SEEN_RESOLUTION
    ):
        user_session.last_seen_at = current
    audit.note_actor(str(user.id), user.role.value)
    return user, user_session


def logout(session: Session, user_session: UserSession) -> None:
    if user_session.revoked_at is None:
        user_session.revoked_at = now()
    session.flush()


def revoke_all_sessions(
    session: Session, user_id: uuid.UUID, *, keep: uuid.UUID | None = None
) -> int:
    """End the user's live sessions (all but ``keep``); how many were ended."""
    stmt = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
    )
    if keep is not None:
        stmt = stmt.where(UserSession.id != keep)
    result = session.execute(
        stmt.values(revoked_at=now()).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def change_password(
    session: Session, user: User, *, current: str, new: str, keep: UserSession | None = None
) -> None:
    """Every session ends, but ``keep`` (the page's own: its user just proved the password)."""
    if not verify_password(user.password_hash, current):
        raise InvalidCredentials("The current password is incorrect.")
    _set_password(session, user, new, keep=keep.id if keep is not None else None)
    audit.record(
        session,
        action="auth.password_changed",
        actor=str(user.id),
        actor_role=user.role.value,
        target=str(user.id),
        details={"other_sessions_ended": True},
    )


def _set_password(
    session: Session, user: User, password: str, *, keep: uuid.UUID | None = None
) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = now()
    revoke_all_sessions(session, user.id, keep=keep)
    session.flush()


# One's own zone and language ----------------------------------------------------------------


def update_settings(
    session: Session, user: User, *, timezone: str | None = None, language: str | None = None
) -> User:
    """Set one's own time zone and language (``None``: unchanged). An unknown zone or language
    is refused naming the field. An expert's zone is their profile's zone too (one setting:
    app/experts/service.py keeps it the other way round); their weekly hours keep the zone
    they were saved in."""
    problems: list[FieldProblem] = []
    if timezone is not None and timezone not in known_zones():
        problems.append(FieldProblem(field="timezone", message=ZONE_PROBLEM))
    if language is not None and language not in set(UserLanguage):
        problems.append(FieldProblem(field="language", message=LANGUAGE_PROBLEM))
    if problems:
        raise Unprocessable("Check the time zone and language.", fields=problems)
    changes: dict[str, dict[str, str]] = {}
    if timezone is not None and timezone != user.timezone:
        changes["timezone"] = {"from": user.timezone, "to": timezone}
        user.timezone = timezone
        profile = session.get(ExpertProfile, user.id)
        if profile is not None:
            profile.timezone = timezone
    if language is not None and language != user.language:
        changes["language"] = {"from": str(user.language), "to": language}
        user.language = UserLanguage(language)
    if changes:
        audit.record(
            session,
            action="auth.settings_changed",
            actor=str(user.id),
            actor_role=user.role.value,
            target=str(user.id),
            details=changes,
        )
    session.flush()
    return user


# One's own sessions ---------------------------------------------------------------------------


def live_sessions(session: Session, user: User) -> Sequence[UserSession]:
    """The user's sessions that still sign in (not ended, not expired), newest first."""
    return session.scalars(
        select(UserSession)
        .where(
            UserSession.user_id == user.id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now(),
        )
        .order_by(UserSession.created_at.desc(), UserSession.id)
    ).all()


def end_own_session(session: Session, user: User, session_id: uuid.UUID) -> None:
    """End one of the user's own sessions; another user's or an unknown id is "not found"."""
    result = session.execute(
        update(UserSession)
        .where(
            UserSession.id == session_id,
            UserSession.user_id == user.id,
            UserSession.revoked_at.is_(None),
        )
        .values(revoked_at=now())
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise SessionNotFound("No live session of yours with this id.")
    audit.record(
        session,
        action="auth.session_ended",
        actor=str(user.id),
        actor_role=user.role.value,
        target=str(session_id),
    )


def end_other_sessions(session: Session, user: User, keep: UserSession) -> int:
    """Sign out everywhere else: every session of the user but ``keep``."""
    ended = revoke_all_sessions(session, user.id, keep=keep.id)
    audit.record(
        session,
        action="auth.other_sessions_ended",
        actor=str(user.id),
        actor_role=user.role.value,
        target=str(user.id),
        details={"ended": ended},
    )
    return ended


# One-time links (invite, password reset) -----------------------------------------------------


def _issue_account_token(session: Session, user: User, purpose: AccountTokenPurpose) -> None:
    s = get_settings()
    ttl = (
        dt.timedelta(hours=s.invite_ttl_hours)
        if purpose == AccountTokenPurpose.invite
        else dt.timedelta(minutes=s.password_reset_ttl_minutes)
    )
    current = now()
    # A new link replaces older unused ones of the same purpose.
    session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user.id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
        )
        .values(expires_at=current)
        .execution_options(synchronize_session=False)
    )
    token = new_token(ONE_TIME_TOKEN_PREFIX)
    key_id, enc = crypto.encrypt_with_master(token.encode(), aad=b"account_token")
    row = AccountToken(
        user_id=user.id,
        purpose=purpose,
        token_hash=hash_token(token),
        token_enc=enc,
        token_key_id=key_id,
        created_at=current,
        expires_at=current + ttl,
    )
    session.add(row)
    session.flush()
    outbox.enqueue(session, f"accounts.{purpose.value}", {"token_id": str(row.id)})


def reveal_account_token(row: AccountToken) -> str:
    return crypto.decrypt_with_master(
        row.token_key_id, row.token_enc, aad=b"account_token"
    ).decode()


def request_password_reset(session: Session, email: str) -> None:
    """Always succeeds from the caller's view; a link goes only to an active account."""
    user = get_user_by_email(session, email)
    if user is None or not user.is_active:
        return
    recent = session.scalar(
        select(func.count())
        .select_from(AccountToken)
        .where(
            AccountToken.user_id == user.id,
            AccountToken.purpose == AccountTokenPurpose.password_reset,
            AccountToken.created_at > now() - dt.timedelta(hours=1),
        )
    )
    if recent and recent >= 3:  # no inbox flooding through the reset form
        return
    _issue_account_token(session, user, AccountTokenPurpose.password_reset)


def set_password_with_token(session: Session, token: str, password: str) -> User:
    row = session.scalar(
        select(AccountToken).where(AccountToken.token_hash == hash_token(token)).with_for_update()
    )
    if row is None or row.used_at is not None or row.expires_at <= now():
        raise InvalidLink("This link is not valid any more. Ask for a new one.")
    user = get_user(session, row.user_id)
    if not user.is_active:
        raise InvalidLink("This link is not valid any more. Ask for a new one.")
    row.used_at = now()
    _set_password(session, user, password)
    # The link proves the mailbox: it lifts the account-wide lock (addresses keep their own).
    keys = throttle.keys_for(user.email, None)
    throttle.forget(session, [keys.account, keys.totp])
    return user


# Second factor (TOTP) ------------------------------------------------------------------------


def _totp_secret(user: User) -> str | None:
    if user.totp_secret_enc is None or user.totp_key_id is None:
        return None
    return crypto.decrypt_with_master(user.totp_key_id, user.totp_secret_enc, aad=b"totp").decode()


def _matching_step(user: User, code: str) -> int | None:
    """The time-step whose code this is (one step of clock drift either way), or None."""
    secret = _totp_secret(user)
    if secret is None:
        return None
    totp = pyotp.TOTP(secret)
    step_now = int(now().timestamp()) // totp.interval
    for drift in (0, -1, 1):
        step = step_now + drift
        if totp.at(step * totp.interval) == code:
            return step
    return None


def _use_code(session: Session, user: User, code: str) -> bool:
    """Check the code and use it up: one conditional UPDATE records its time-step only if no
    later-or-equal step was used, so of parallel sign-ins carrying one code exactly one wins
    (the others wait for its row lock, then find the step taken)."""
    step = _matching_step(user, code)
    if step is None:
        return False
    result = session.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        return False  # used already (a replay, or a parallel sign-in won)
    set_committed_value(user, "totp_last_step", step)
    return True


def totp_setup(session: Session, user: User) -> tuple[str, str]:
    if user.totp_enabled:
        raise BadRequest("The second factor is on already; an admin can reset it.")
    secret = pyotp.random_base32()
    user.totp_key_id, user.totp_secret_enc = crypto.encrypt_with_master(secret.encode(), b"totp")
    session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)
    return secret, uri


def totp_pending(user: User) -> tuple[str, str] | None:
    """The secret being set up (not yet confirmed) and its otpauth URI, for the QR code."""
    secret = _totp_secret(user)
    if user.totp_enabled or secret is None:
        return None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)
    return secret, uri


def totp_confirm(session: Session, user: User, code: str) -> list[str]:
    """Turn the second factor on with a first code; returns the recovery codes (shown once)."""
    if user.totp_enabled:
        raise BadRequest("The second factor is on already.")
    if not _use_code(session, user, code):
        raise BadRequest("The code is incorrect. Check the time on your device and try again.")
    user.totp_enabled = True
    audit.record(
        session,
        action="auth.second_factor_enabled",
        actor=str(user.id),
        actor_role=user.role.value,
        target=str(user.id),
    )
    session.flush()
    return new_recovery_codes(session, user, reason="enrolled")


def totp_disable(session: Session, user: User, *, password: str, code: str) -> None:
    """Turn the second factor off (to reset it: turn it off, then on again) with the password
    and a current code or a recovery code; the recovery codes go with it."""
    if not user.totp_enabled:
        raise BadRequest("The second factor is off already.")
    if not verify_password(user.password_hash, password):
        raise InvalidCredentials("The current password is incorrect.")
    if _count_code(session, throttle.keys_for(user.email, None)) is not None:
        raise InvalidCredentials("Too many wrong codes; try again later.")
    if not _use_second_factor(session, user, code):
        raise InvalidCredentials("The code is incorrect or was used already.")
    user.totp_enabled = False
    user.totp_secret_enc = None
    user.totp_key_id = None
    user.totp_last_step = None
    _drop_recovery_codes(session, user)
    audit.record(
        session,
        action="auth.second_factor_disabled",
        actor=str(user.id),
        actor_role=user.role.value,
        target=str(user.id),
    )
    session.flush()


# Recovery codes -------------------------------------------------------------------------------

RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: read off paper and typed in by hand.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def normalise_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _recovery_hash(user: User, code: str) -> str:
    # Bound to the user: the same code typed for another account matches nothing.
    return hash_token(f"{user.id}:{normalise_code(code)}")


def recovery_codes_left(session: Session, user: User) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def _drop_recovery_codes(session: Session, user: User) -> None:
    session.execute(
        delete(RecoveryCode)
        .where(RecoveryCode.user_id == user.id)
        .execution_options(synchronize_session=False)
    )


def new_recovery_codes(session: Session, user: User, *, reason: str = "generated") -> list[str]:
    """Ten new one-time codes (``xxxxx-xxxxx``, 50 bits each); the old ones stop working.
    Only their hashes are stored: the caller shows them once."""
    if not user.totp_enabled:
        raise BadRequest("Turn on the second factor first; recovery codes stand in for it.")
    _drop_recovery_codes(session, user)
    codes = []
    current = now()
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        code = f"{raw[:5]}-{raw[5:]}"
        codes.append(code)
        session.add(
            RecoveryCode(user_id=user.id, code_hash=_recovery_hash(user, code), created_at=current)
        )
    audit.record(
        session,
        action="auth.recovery_codes_generated",
        actor=str(user.id),
        actor_role=user.role.value,
        target=str(user.id),
        details={"reason": reason, "count": RECOVERY_CODE_COUNT},
    )
    session.flush()
    return codes


def regenerate_recovery_codes(session: Session, user: User, *, password: str) -> list[str]:
    if not verify_password(user.password_hash, password):
        raise InvalidCredentials("The current password is incorrect.")
    return new_recovery_codes(session, user)


def _use_recovery_code(session: Session, user: User, code: str) -> bool:
    """Use the code up: one conditional UPDATE, so of parallel sign-ins with one code exactly
    one wins (the others wait for its row lock, then find it used)."""
    if not normalise_code(code):
        return False
    result = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_hash(user, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now())
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        return False
    audit.record(
        session,
        action="auth.recovery_code_used",
        actor=str(user.id),
        actor_role=user.role.value,
        target=str(user.id),
        details={"left": recovery_codes_left(session, user)},
    )
    return True


def _use_second_factor(session: Session, user: User, code: str) -> bool:
    """A 6-digit code from the app, or else one of the recovery codes."""
    plain = normalise_code(code)
    if len(plain) == 6 and plain.isdigit():
        return _use_code(session, user, plain)
    return _use_recovery_code(session, user, plain)


def resend_invite(session: Session, user_id: uuid.UUID, *, by: User | None = None) -> User:
    user = get_user(session, user_id)
    if user.password_hash is not None:
        raise BadRequest("This user has set a password already; use a password reset.")
    _issue_account_token(session, user, AccountTokenPurpose.invite)
    audit.record(
        session,
        action="users.invite_resent",
        actor=_actor(by),
        actor_role=_role(by),
        target=str(user.id),
    )
    return user
