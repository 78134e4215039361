"""Per-request data keys and the e-mail look-up key (master-key rotation: app/ops/rotation.py).

- Each request gets 32 random bytes (its data key), wrapped with the master key (AES-GCM, the
  master key's id stored beside it). Personal fields are encrypted with the data key; erasing a
  request later means destroying its wrapped data key.
- E-mail look-ups (linking, recovery, the acknowledgement cap) use HMAC-SHA256 under a
  *look-up key*: 32 random bytes created once and stored wrapped in ``secret_keys``. It is not
  derived from the master key, so rotating the master key re-wraps it and every stored hash
  stays valid.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core import crypto
from app.core.database import after_commit
from app.core.time import now
from app.models import IntakeRequest, SecretKey

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
