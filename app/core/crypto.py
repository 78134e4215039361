"""Envelope encryption: data keys wrapped by a master key that carries a key id.

Per-request data keys arrive with "Applicant intake"; here are the master key (loaded or, on the
embedded default only, generated once into ``var/``) and AES-GCM helpers every domain uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache

import structlog
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.core.settings import Settings, get_settings, parse_master_key

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"MasterKey(key_id={self.key_id!r})"


def generate_master_key_text(key_id: str | None = None) -> str:
    kid = key_id or "k" + secrets.token_hex(4)
    return f"{kid}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"


def load_master_key(settings: Settings) -> MasterKey:
    if settings.master_key is not None:
        kid, key = parse_master_key(settings.master_key.get_secret_value())
        return MasterKey(kid, key)
    path = settings.data_dir / "master.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: API, worker and beat may start at once; only one writes the key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(generate_master_key_text() + "\n")
            log.warning(
                "master_key_generated",
                path=str(path),
                advice="production must set INTAKE_MASTER_KEY and back it up with the database",
            )
    kid, key = parse_master_key(path.read_text())
    return MasterKey(kid, key)


@lru_cache(maxsize=1)
def master_key() -> MasterKey:
    return load_master_key(get_settings())


def derived_key(purpose: str) -> bytes:
    """A 32-byte key for one purpose (e.g. keyed hashes that must not be reversible), derived
    from the current master key with HKDF: the master key itself is never used twice."""
    return _derive(master_key().key, purpose)


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` (hex) under the key derived for ``purpose``: a stable token
    for a value that must not be stored, e.g. a client address. Unlike a plain hash, it cannot
    be reversed by hashing candidates without the master key."""
    return hmac.new(derived_key(purpose), value.encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=16)
def _derive(key: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose.encode()).derive(key)


def old_master_keys(settings: Settings | None = None) -> dict[str, bytes]:
    settings = settings or get_settings()
    keys: dict[str, bytes] = {}
    if settings.old_master_keys is not None:
        for part in settings.old_master_keys.get_secret_value().split(","):
            if part.strip():
                kid, key = parse_master_key(part)
                keys[kid] = key
    return keys


def encrypt(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad or None)


def decrypt(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    return AESGCM(key).decrypt(blob[:12], blob[12:], aad or None)


def encrypt_with_master(plaintext: bytes, aad: bytes = b"") -> tuple[str, bytes]:
    mk = master_key()
    return mk.key_id, encrypt(mk.key, plaintext, aad)


def decrypt_with_master(key_id: str, blob: bytes, aad: bytes = b"") -> bytes:
    mk = master_key()
    if key_id == mk.key_id:
        return decrypt(mk.key, blob, aad)
    old = old_master_keys()
    if key_id in old:
        return decrypt(old[key_id], blob, aad)
    raise KeyError(f"master key '{key_id}' is not configured (INTAKE_OLD_MASTER_KEYS)")
