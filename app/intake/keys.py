"""Per-request data keys, the e-mail look-up key, and master-key rotation.

- Each request gets 32 random bytes (its data key), wrapped with the master key (AES-GCM, the
  master key's id stored beside it). Personal fields are encrypted with the data key; erasing a
  request later means destroying its wrapped data key.
- E-mail look-ups (linking, recovery, the acknowledgement cap) use HMAC-SHA256 under a
  *look-up key*: 32 random bytes created once and stored wrapped in ``secret_keys``. It is not
  derived from the master key, so rotating the master key re-wraps it and every stored hash
  stays valid.
- ``rotate_master_key`` re-wraps every key wrapped by an older master key (request data keys,
  the look-up key, users' TOTP secrets, account link tokens, keys of mail set aside) under the
  current one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core import crypto
from app.core.database import after_commit
from app.core.time import now
from app.models import AccountToken, InboundSetAside, IntakeRequest, SecretKey, User

LOOKUP_KEY_NAME = "email_lookup"


def _aad(kind: str, request_id: uuid.UUID) -> bytes:
    return f"{kind}:{request_id}".encode()


# Data keys -------------------------------------------------------------------------------------


def new_data_key(request_id: uuid.UUID) -> tuple[bytes, str, bytes]:
    """(plain data key, master key id, wrapped data key)."""
    key = os.urandom(32)
    key_id, wrapped = crypto.encrypt_with_master(key, _aad("dk", request_id))
    return key, key_id, wrapped


def data_key(req: IntakeRequest) -> bytes | None:
    """The request's data key, or None once it was destroyed (erasure)."""
    if req.data_key_enc is None or req.data_key_id is None:
        return None
    return crypto.decrypt_with_master(req.data_key_id, req.data_key_enc, _aad("dk", req.id))


def seal(key: bytes, kind: str, request_id: uuid.UUID, value: bytes) -> bytes:
    return crypto.encrypt(key, value, _aad(kind, request_id))


def unseal(key: bytes, kind: str, request_id: uuid.UUID, blob: bytes) -> bytes:
    return crypto.decrypt(key, blob, _aad(kind, request_id))


def seal_json(key: bytes, kind: str, request_id: uuid.UUID, value: Any) -> bytes:
    return seal(key, kind, request_id, json.dumps(value, separators=(",", ":")).encode())


def unseal_json(key: bytes, kind: str, request_id: uuid.UUID, blob: bytes) -> Any:
    return json.loads(unseal(key, kind, request_id, blob))


# The look-up key ---------------------------------------------------------------------------


# The look-up key never changes once stored (rotation only re-wraps it), so it is kept per
# database once the transaction that read or created it has committed: a submission then saves
# a round trip and an unwrap. A rolled-back transaction caches nothing.
_lookup_key_cache: dict[str, bytes] = {}


def forget_cached_keys() -> None:
    """Tests whose transactions roll back, or that delete the key, start afresh with this."""
    _lookup_key_cache.clear()


def _lookup_key(session: Session) -> bytes:
    database = session.get_bind().engine.url.render_as_string(hide_password=True)
    cached = _lookup_key_cache.get(database)
    if cached is not None:
        return cached
    key = _read_or_create_lookup_key(session)

    def keep() -> None:
        _lookup_key_cache.setdefault(database, key)

    after_commit(session, keep)
    return key


def _read_or_create_lookup_key(session: Session) -> bytes:
    row = session.get(SecretKey, LOOKUP_KEY_NAME)
    if row is None:
        key = os.urandom(32)
        key_id, wrapped = crypto.encrypt_with_master(key, LOOKUP_KEY_NAME.encode())
        try:
            # Two processes may create it at once: the loser reads the winner's.
            with session.begin_nested():
                session.add(
                    SecretKey(
                        name=LOOKUP_KEY_NAME, key_enc=wrapped, key_id=key_id, created_at=now()
                    )
                )
            return key
        except IntegrityError:
            row = session.get(SecretKey, LOOKUP_KEY_NAME, populate_existing=True)
            if row is None:  # pragma: no cover - the winner rolled back; try once more
                return _lookup_key(session)
    return crypto.decrypt_with_master(row.key_id, row.key_enc, LOOKUP_KEY_NAME.encode())


def email_lookup(session: Session, email: str) -> str:
    """Keyed hash of a normalised e-mail address (never the address itself)."""
    return hmac.new(_lookup_key(session), email.lower().encode(), hashlib.sha256).hexdigest()


# Rotation --------------------------------------------------------------------------------------


@dataclass
class RotationReport:
    key_id: str
    request_data_keys: int = 0
    secret_keys: int = 0
    totp_secrets: int = 0
    account_tokens: int = 0
    set_aside_keys: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _rewrap(key_id: str, blob: bytes, aad: bytes) -> tuple[str, bytes]:
    return crypto.encrypt_with_master(crypto.decrypt_with_master(key_id, blob, aad), aad)


def rotate_master_key(session: Session, *, batch: int = 500) -> RotationReport:
    """Re-wrap everything wrapped by an older master key under the current one. Idempotent:
    rows already under the current key are skipped. Raises KeyError naming a missing old key."""
    current = crypto.master_key().key_id
    report = RotationReport(key_id=current)

    while True:
        reqs = session.scalars(
            select(IntakeRequest)
            .where(IntakeRequest.data_key_id.is_not(None), IntakeRequest.data_key_id != current)
            .limit(batch)
        ).all()
        if not reqs:
            break
        for req in reqs:
            assert req.data_key_id is not None and req.data_key_enc is not None
            req.data_key_id, req.data_key_enc = _rewrap(
                req.data_key_id, req.data_key_enc, _aad("dk", req.id)
            )
            report.request_data_keys += 1
        session.flush()

    for sk in session.scalars(select(SecretKey).where(SecretKey.key_id != current)).all():
        sk.key_id, sk.key_enc = _rewrap(sk.key_id, sk.key_enc, sk.name.encode())
        report.secret_keys += 1

    for user in session.scalars(
        select(User).where(User.totp_key_id.is_not(None), User.totp_key_id != current)
    ).all():
        assert user.totp_key_id is not None and user.totp_secret_enc is not None
        user.totp_key_id, user.totp_secret_enc = _rewrap(
            user.totp_key_id, user.totp_secret_enc, b"totp"
        )
        report.totp_secrets += 1

    for tok in session.scalars(
        select(AccountToken).where(AccountToken.token_key_id != current)
    ).all():
        tok.token_key_id, tok.token_enc = _rewrap(tok.token_key_id, tok.token_enc, b"account_token")
        report.account_tokens += 1

    # Mail set aside: one data key per row, the row id in the associated data (app/inbound).
    for kept in session.scalars(
        select(InboundSetAside).where(InboundSetAside.data_key_id != current)
    ).all():
        kept.data_key_id, kept.data_key_enc = _rewrap(
            kept.data_key_id, kept.data_key_enc, f"set_aside_dk:{kept.id}".encode()
        )
        report.set_aside_keys += 1
    session.flush()
    return report
