"""Media that arrives by WhatsApp (documents, images, voice notes): which types are kept, checked
by their first bytes as well as by what WhatsApp says they are.

Kept: PDF, JPEG, PNG, WebP, Ogg (voice notes), MP3, AMR, MP4/3GPP (audio and video). Anything
else (archives, office files, executables) is left out of the case with a reason, as e-mail
attachments are.
"""

from __future__ import annotations

from collections.abc import Callable


def _ftyp(data: bytes) -> bool:
    return data[4:8] == b"ftyp"


def _mp3(data: bytes) -> bool:
    return data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


SIGNATURES: dict[str, Callable[[bytes], bool]] = {
    "application/pdf": lambda d: d.startswith(b"%PDF-"),
    "image/jpeg": lambda d: d.startswith(b"\xff\xd8\xff"),
    "image/png": lambda d: d.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/webp": lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP",
    "audio/ogg": lambda d: d.startswith(b"OggS"),
    "audio/opus": lambda d: d.startswith(b"OggS"),
    "audio/mpeg": _mp3,
    "audio/amr": lambda d: d.startswith(b"#!AMR"),
    "audio/mp4": _ftyp,
    "audio/aac": lambda d: _ftyp(d) or (len(d) > 1 and d[0] == 0xFF and d[1] & 0xF0 == 0xF0),
    "video/mp4": _ftyp,
    "video/3gpp": _ftyp,
}


def base_type(mime_type: str) -> str:
    """``audio/ogg; codecs=opus`` -> ``audio/ogg``."""
    return mime_type.split(";", 1)[0].strip().lower()


def allowed(mime_type: str) -> bool:
    return base_type(mime_type) in SIGNATURES


def content_matches(mime_type: str, data: bytes) -> bool:
    check = SIGNATURES.get(base_type(mime_type))
    return check is not None and check(data)
