"""The backup archive's encrypted container: a plain header, then authenticated chunks.

Layout::

    MAGIC | 4-byte header length | header (JSON) | chunk* ...

Each chunk is ``4-byte length | 12-byte nonce | AES-256-GCM ciphertext and tag``; its associated
data is the SHA-256 of magic and header, the chunk's index and a flag that is 1 on the last chunk
only. So a changed header, a changed, dropped, reordered or repeated chunk, and a cut-off tail
are all refused; nothing of the content is readable without the key.

The key is derived with HKDF from the master key named in the header (its id only, never the
key) and a random salt of this archive: the archive opens with the same master key, nothing
else, and the master key itself must be kept apart from the backups.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"ASYLUM-INTAKE-BACKUP\n"
FORMAT = 1
CHUNK = 1024 * 1024
_INFO = b"asylum-intake backup archive v1"
_MAX_HEADER = 64 * 1024


class ArchiveError(Exception):
    """The file is not a backup, or it was changed or cut short."""


class ArchiveKeyError(ArchiveError):
    """The archive cannot be opened with the configured master keys."""


def archive_key(master: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=salt, info=_INFO).derive(master)


def _aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return header_digest + struct.pack(">QB", index, 1 if final else 0)


class EncryptingWriter:
    """A write-only file object: plaintext in, encrypted chunks out to ``out``."""

    def __init__(self, out: IO[bytes], *, key_id: str, master: bytes, created_at: str) -> None:
        salt = os.urandom(16)
        header = json.dumps(
            {
                "format": FORMAT,
                "key_id": key_id,
                "salt": base64.b64encode(salt).decode(),
                "created_at": created_at,
                "cipher": "AES-256-GCM, HKDF-SHA256 from the master key",
            },
            separators=(",", ":"),
        ).encode()
        out.write(MAGIC + struct.pack(">I", len(header)) + header)
        self._out = out
        self._aead = AESGCM(archive_key(master, salt))
        self._digest = hashlib.sha256(MAGIC + header).digest()
        self._buf = bytearray()
        self._index = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) > CHUNK:
            self._emit(bytes(self._buf[:CHUNK]), final=False)
            del self._buf[:CHUNK]
        return len(data)

    def flush(self) -> None:  # chunks go out whole; tarfile calls this
        pass

    def _emit(self, plain: bytes, *, final: bool) -> None:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plain, _aad(self._digest, self._index, final))
        self._out.write(struct.pack(">I", len(sealed)) + nonce + sealed)
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._emit(bytes(self._buf), final=True)
            self._buf.clear()
            self.closed = True


def read_header(src: IO[bytes]) -> dict[str, Any]:
    if src.read(len(MAGIC)) != MAGIC:
        raise ArchiveError("This file is not an asylum-intake backup (its first bytes differ).")
    raw_len = src.read(4)
    if len(raw_len) != 4 or struct.unpack(">I", raw_len)[0] > _MAX_HEADER:
        raise ArchiveError("The backup's header is damaged.")
    raw = src.read(struct.unpack(">I", raw_len)[0])
    try:
        header: dict[str, Any] = json.loads(raw)
    except ValueError:
        raise ArchiveError("The backup's header is damaged.") from None
    if header.get("format") != FORMAT:
        raise ArchiveError(f"Backup format {header.get('format')!r} is not known to this version.")
    header["_raw"] = raw
    return header


class DecryptingReader:
    """A read-only file object over the chunks after the header."""

    def __init__(self, src: IO[bytes], header: dict[str, Any], master: bytes) -> None:
        self._src = src
        salt = base64.b64decode(header["salt"])
        self._aead = AESGCM(archive_key(master, salt))
        self._digest = hashlib.sha256(MAGIC + header["_raw"]).digest()
        self._buf = bytearray()
        self._index = 0
        self.finished = False

    def _next_chunk(self) -> bytes:
        raw_len = self._src.read(4)
        if len(raw_len) < 4:
            raise ArchiveError("The backup is cut short: its last part is missing.")
        size = struct.unpack(">I", raw_len)[0]
        if size > CHUNK + 64:
            raise ArchiveError("The backup is damaged (a part has an impossible size).")
        body = self._src.read(12 + size)
        if len(body) < 12 + size:
            raise ArchiveError("The backup is cut short: its last part is missing.")
        for final in (False, True):
            try:
                plain = self._aead.decrypt(
                    body[:12], body[12:], _aad(self._digest, self._index, final)
                )
            except InvalidTag:
                continue
            self._index += 1
            if final:
                self.finished = True
                if self._src.read(1):
                    raise ArchiveError("The backup has data after its end: it was changed.")
            return plain
        if self._index == 0:
            raise ArchiveKeyError("wrong key")
        raise ArchiveError(
            f"The backup was changed or damaged (part {self._index} fails its check)."
        )

    def check_key(self) -> None:
        """Open the first chunk now: ArchiveKeyError if the key is not the archive's."""
        if self._index == 0 and not self.finished:
            self._buf += self._next_chunk()

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buf) < n) and not self.finished:
            self._buf += self._next_chunk()
        if n < 0:
            n = len(self._buf)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def drain(self) -> None:
        """Read and check everything up to the last chunk (a cut-off tail is refused)."""
        while not self.finished:
            self._next_chunk()
        self._buf.clear()
