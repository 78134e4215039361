"""Sign-in throttle: attempts are counted before anything is checked, and an anonymous
attacker gets no way to lock the duty staff out.

Counters (rows of ``login_throttles``, each under a keyed hash, HMAC with a key derived from the
master key: no e-mail or address in clear, none recoverable by hashing candidates):

- ``pair:`` one address trying one account: it slows and locks that address for that account,
  and nothing lifts it but time;
- ``ip:`` one address trying any account (one password tried on many accounts): it counts the
  address's failed checks, and slows and locks the address;
- ``account:`` the account, from anywhere: it stops password-only checks (so guessing the
  password from many addresses is as slow as from one), but an attempt that carries a second
  factor is still checked, on both factors at once, and a password-reset link clears it;
- ``totp:`` codes given with the right password, from anywhere: it stops code checks, so the
  six digits are not guessed from many addresses either.

Each counter: after ``login_slow_after_failures`` counted attempts each further one must wait
2^(n-k) seconds (at most a minute) after the previous one; the count that reaches
``login_lock_after_failures`` locks the key for ``login_lock_minutes``. Refused attempts count
too (``ip:`` counts failed checks only). Counts older than the failure window are forgotten.

Counting is atomic. ``pair:``, ``account:`` and ``totp:`` count an attempt *before* it is
checked: one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` counts it and decides, from the
row as it was, whether it may be checked (the decision is stored in ``last_allowed`` so
RETURNING can read it), in its own short transaction (argon2 runs after, with no row locked).
A burst for one account therefore counts every attempt and checks only as many as the policy
allows. A sign-in clears them; a right password waiting for its code takes its count back.
``ip:`` is read before the check and counted after a failed one, with the same upsert: the
sign-ins of many people behind one address (an office) may run at once, and only failures
slow them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    literal,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.core import crypto, database
from app.core.errors import TooManyRequests
from app.core.settings import get_settings
from app.core.time import now
from app.models import LoginThrottle
from app.models.base import UTCDateTime

MAX_SLOWDOWN_SECONDS = 60
HASH_PURPOSE = "sign-in throttle"
PREFIXES = ("account:", "ip:", "pair:", "totp:")


@dataclass(frozen=True)
class Keys:
    """The counters of one sign-in attempt (``ip`` and ``pair`` None without an address)."""

    account: str
    totp: str
    ip: str | None
    pair: str | None

    @property
    def counted(self) -> list[str]:
        """Counted before every check, in one fixed order (rows are always locked in it, so
        two transactions never wait for each other in a circle)."""
        return sorted(k for k in (self.account, self.pair) if k)

    @property
    def per_address(self) -> list[str]:
        return [k for k in (self.ip, self.pair) if k]


def keys_for(email: str, ip: str | None) -> Keys:
    email = email.lower()
    return Keys(
        account="account:" + crypto.keyed_hash(HASH_PURPOSE, email),
        totp="totp:" + crypto.keyed_hash(HASH_PURPOSE, email),
        ip="ip:" + crypto.keyed_hash(HASH_PURPOSE, ip) if ip else None,
        # The separator cannot occur in an e-mail address, so no two pairs share a key.
        pair="pair:" + crypto.keyed_hash(HASH_PURPOSE, f"{email}\n{ip}") if ip else None,
    )


@dataclass(frozen=True)
class Refusal:
    """A key that refused the attempt: seconds until the next one may be checked."""

    key: str
    wait: float
    locked: bool


@dataclass
class Verdict:
    refusals: dict[str, Refusal] = field(default_factory=dict)

    def refused(self, keys: list[str]) -> Refusal | None:
        """The longest refusal among ``keys``, or None if they all let the attempt through."""
        found = [self.refusals[k] for k in keys if k in self.refusals]
        return max(found, key=lambda r: r.wait) if found else None


def delay_seconds(failures: int) -> float:
    """How long after the previous counted attempt the next one may be checked."""
    slow_after = get_settings().login_slow_after_failures
    if failures < slow_after:
        return 0.0
    return float(min(2 ** (failures - slow_after), MAX_SLOWDOWN_SECONDS))


def _delay_steps() -> list[float]:
    """Delays for ``slow_after``, ``slow_after + 1``, ... counts, up to the first capped one."""
    steps: list[float] = []
    while not steps or steps[-1] < MAX_SLOWDOWN_SECONDS:
        steps.append(float(min(2 ** len(steps), MAX_SLOWDOWN_SECONDS)))
    return steps


def _at(value: dt.datetime) -> Any:
    return literal(value, UTCDateTime())


@dataclass(frozen=True)
class _Rules:
    """The policy over a row as it is, as SQL: one definition for counting and for reading."""

    stale: ColumnElement[bool]  # its count is forgotten: window over, or lock ended
    allowed: ColumnElement[bool]  # an attempt now may be checked


def _rules(current: dt.datetime) -> _Rules:
    s = get_settings()
    c = LoginThrottle.__table__.c
    window_start = current - dt.timedelta(minutes=s.login_failure_window_minutes)
    stale = or_(
        c.last_failure_at < _at(window_start),
        and_(c.locked_until.is_not(None), c.locked_until <= _at(current)),
    )
    steps = _delay_steps()
    waited: ColumnElement[bool] = case(
        (c.failures < s.login_slow_after_failures, true()),
        *(
            (
                c.failures == s.login_slow_after_failures + i,
                c.last_failure_at <= _at(current - dt.timedelta(seconds=delay)),
            )
            for i, delay in enumerate(steps[:-1])
        ),
        else_=c.last_failure_at <= _at(current - dt.timedelta(seconds=steps[-1])),
    )
    # Not stale means no lock, or one still in force.
    return _Rules(stale=stale, allowed=or_(stale, and_(c.locked_until.is_(None), waited)))


def _count_statement(session: Session, keys: list[str], current: dt.datetime) -> Any:
    s = get_settings()
    c = LoginThrottle.__table__.c
    rules = _rules(current)
    lock_until = _at(current + dt.timedelta(minutes=s.login_lock_minutes))
    insert_fn = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert_fn(LoginThrottle).values(
        [
            {
                "key": key,
                "failures": 1,
                "window_started_at": current,
                "last_failure_at": current,
                "locked_until": None,
                "last_allowed": True,
            }
            for key in keys
        ]
    )
    # SET expressions read the row as it was (on both databases): that row decides.
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginThrottle.key],
        set_={
            "failures": case((rules.stale, 1), else_=c.failures + 1),
            "window_started_at": case((rules.stale, _at(current)), else_=c.window_started_at),
            "last_failure_at": _at(current),
            # A lock in force is kept, not lengthened; the count that reaches the limit locks.
            "locked_until": case(
                (rules.stale, null()),
                (c.locked_until.is_not(None), c.locked_until),
                (c.failures + 1 >= s.login_lock_after_failures, lock_until),
                else_=null(),
            ),
            "last_allowed": rules.allowed,
        },
    )
    return stmt.returning(
        LoginThrottle.key,
        LoginThrottle.failures,
        LoginThrottle.last_failure_at,
        LoginThrottle.locked_until,
        LoginThrottle.last_allowed,
    )


def _peek_statement(keys: list[str], current: dt.datetime) -> Any:
    c = LoginThrottle.__table__.c
    return select(
        c.key, c.failures, c.last_failure_at, c.locked_until, _rules(current).allowed
    ).where(c.key.in_(keys))


def _in_own_transaction(session: Session, statements: list[Any]) -> list[Any]:
    """Run and commit at once in a transaction of its own (a count stays whatever the request
    does, and no row stays locked while a password is hashed); on SQLite, in ``session`` when
    it is already writing: the database is locked for it anyway, and a second transaction
    would wait for it."""
    if session.get_bind().dialect.name == "sqlite" and session.in_transaction():
        return [row for stmt in statements for row in session.execute(stmt).all()]
    with database.session_scope() as own:
        return [row for stmt in statements for row in own.execute(stmt).all()]


def _refusal(
    key: str,
    failures: int,
    last: dt.datetime,
    locked_until: dt.datetime | None,
    current: dt.datetime,
) -> Refusal:
    locked = locked_until is not None and locked_until > current
    if locked and locked_until is not None:
        wait = (locked_until - current).total_seconds()
    else:
        wait = (last + dt.timedelta(seconds=delay_seconds(failures)) - current).total_seconds()
    return Refusal(key=key, wait=max(wait, 1.0), locked=locked)


def _verdict(rows: list[Any], current: dt.datetime) -> Verdict:
    verdict = Verdict()
    for key, failures, last, locked_until, allowed in rows:
        if not allowed:
            verdict.refusals[key] = _refusal(key, failures, last, locked_until, current)
    return verdict


def count_attempt(session: Session, keys: Keys) -> Verdict:
    """Count one sign-in attempt under its account and address+account keys, read the
    address's own count, and say which of them refuse the attempt."""
    current = now()
    statements = [_count_statement(session, keys.counted, current)]
    if keys.ip:
        statements.append(_peek_statement([keys.ip], current))
    return _verdict(_in_own_transaction(session, statements), current)


def count_code(session: Session, keys: Keys) -> Refusal | None:
    """Count a second-factor code before it is checked; a refusal when codes are over the
    limit."""
    current = now()
    rows = _in_own_transaction(session, [_count_statement(session, [keys.totp], current)])
    return _verdict(rows, current).refused([keys.totp])


def address_failed(session: Session, keys: Keys) -> None:
    """A failed check from this address, counted under its own key."""
    if keys.ip:
        _in_own_transaction(session, [_count_statement(session, [keys.ip], now())])


class SignInRefused(TooManyRequests):
    # Counts and audit rows written before the refusal stay.
    persist_changes = True


def too_many(refusal: Refusal, what: str) -> TooManyRequests:
    seconds = math.ceil(refusal.wait)
    return SignInRefused(
        f"Too many failed sign-in attempts {what}. "
        + ("They are locked for a while." if refusal.locked else "Slow down.")
        + f" Try again in {seconds} seconds.",
        retry_after_seconds=seconds,
    )


def _ordered_writes(session: Session, keys: list[str], statement: Any) -> None:
    # One statement per key, in the counting order: no circular wait with a counting upsert.
    for key in sorted(keys):
        session.execute(statement(key))
    session.flush()


def refund(session: Session, keys: Keys) -> None:
    """Take back this attempt's count (a right password waiting for its second factor), in the
    caller's transaction."""
    lock_after = get_settings().login_lock_after_failures
    c = LoginThrottle.__table__.c

    def statement(key: str) -> Any:
        return (
            update(LoginThrottle)
            .where(LoginThrottle.key == key, LoginThrottle.failures > 0)
            .values(
                failures=c.failures - 1,
                locked_until=case((c.failures - 1 < lock_after, null()), else_=c.locked_until),
            )
            .execution_options(synchronize_session=False)
        )

    _ordered_writes(session, keys.counted, statement)


def forget(session: Session, keys: list[str]) -> None:
    """Delete counters (a sign-in, a password set from a link), in the caller's transaction."""
    _ordered_writes(
        session,
        keys,
        lambda key: (
            delete(LoginThrottle)
            .where(LoginThrottle.key == key)
            .execution_options(synchronize_session=False)
        ),
    )


def signed_in(session: Session, keys: Keys) -> None:
    """After a sign-in: the account's counters and this address's count for it are cleared
    (the address's overall count holds failures only, and keeps them: another account's
    failures from the same address still count)."""
    forget(session, [k for k in (keys.account, keys.totp, keys.pair) if k])


def purge_forgotten(session: Session, current: dt.datetime) -> int:
    """Delete sign-in counts that no longer slow or lock anyone (the daily retention run calls
    this): no lock in force and no attempt within the window. Returns how many."""
    window_start = current - dt.timedelta(minutes=get_settings().login_failure_window_minutes)
    result = session.execute(
        delete(LoginThrottle).where(
            or_(*(LoginThrottle.key.startswith(p) for p in PREFIXES)),
            LoginThrottle.last_failure_at < window_start,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until <= current),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
