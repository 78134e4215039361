"""Passwords, opaque tokens and the master key.

Tokens are random and stored only as a SHA-256 hash: a leaked database does not reveal them, and
a look-up by hash is constant work. Each kind has its own prefix so a user's sign-in token can
never be mistaken for a requester's link token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

USER_TOKEN_PREFIX = "ut_"  # staff / expert / admin sign-in
REQUESTER_TOKEN_PREFIX = "rl_"  # the requester's link
ONE_TIME_TOKEN_PREFIX = "ot_"  # invite and password-reset links


@functools.cache
def _hasher() -> PasswordHasher:
    """argon2id at the cost the settings give (strong by default; cheap only in tests)."""
    from app.core.settings import get_settings

    settings = get_settings()
    return PasswordHasher(
        time_cost=settings.password_hash_time_cost,
        memory_cost=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
    )


@functools.cache
def _hashing() -> threading.BoundedSemaphore:
    """As many hashes at once as the cores can run: argon2's lanes are threads, so a burst of
    sign-ins gains nothing from running more together and would starve every other request of
    CPU (``/healthz`` waited up to 180 ms behind 20 at once, benchmarks/pages.py)."""
    from app.core.settings import get_settings

    lanes = get_settings().password_hash_parallelism
    return threading.BoundedSemaphore(hashes_at_once(os.cpu_count() or 1, lanes))


def hashes_at_once(cores: int, lanes: int) -> int:
    return max(1, cores // lanes)


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password, verified when the account does not exist, so that timing
    does not tell which e-mail addresses have accounts."""
    return hash_password(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    with _hashing():
        return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    stored = password_hash or _dummy_hash()
    try:
        with _hashing():
            verified = _hasher().verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return verified and password_hash is not None


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    a_b = a.encode() if isinstance(a, str) else a
    b_b = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_b, b_b)
