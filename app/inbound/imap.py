"""The IMAP poller (stdlib ``imaplib``): read the folder, hand each message to the one service,
and mark it only after the transaction that took it committed.

Marking: moved to ``INTAKE_IMAP_PROCESSED_FOLDER`` when set (``UID MOVE``, or COPY + delete on a
server without MOVE), else flagged ``\\Seen`` and ``$IntakeTaken`` in place (the next poll asks
only for messages without that keyword). A crash between the commit and the mark means the
message is read again next time; its Message-ID is stored already, so taking it again changes
nothing (``take_message`` answers ``duplicate``) and it is marked then. Nothing is taken twice.

The caller (``workers/inbound.py``) owns the transactions: ``take`` commits one message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from app.core.settings import Settings, get_settings
from app.inbound.errors import InvalidMessage
from app.inbound.service import Outcome

log = structlog.get_logger(__name__)

TAKEN_KEYWORD = "$IntakeTaken"
Take = Callable[[bytes, dt.datetime | None], Outcome]
_UIDS = re.compile(rb"\d+")


class ImapError(Exception):
    """The mailbox could not be read (connection, login, folder)."""


@dataclass
class PollReport:
    seen: int = 0
    taken: dict[str, int] = field(default_factory=dict)
    invalid: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "seen": self.seen,
            "taken": dict(self.taken),
            "invalid": self.invalid,
            "failed": self.failed,
        }


def configured(settings: Settings | None = None) -> bool:
    return bool((settings or get_settings()).imap_host)


def connect(settings: Settings) -> imaplib.IMAP4:
    timeout = settings.imap_timeout_seconds
    try:
        client: imaplib.IMAP4
        if settings.imap_tls == "ssl":
            client = imaplib.IMAP4_SSL(
                settings.imap_host,
                settings.imap_port,
                ssl_context=ssl.create_default_context(),
                timeout=timeout,
            )
        else:
            client = imaplib.IMAP4(settings.imap_host, settings.imap_port, timeout=timeout)
            if settings.imap_tls == "starttls":
                client.starttls(ssl.create_default_context())
        password = settings.imap_password.get_secret_value() if settings.imap_password else ""
        client.login(settings.imap_user, password)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise ImapError(f"{type(exc).__name__}: {exc}") from exc
    return client


def _check(result: tuple[str, Any], what: str) -> list[Any]:
    typ, data = result
    if typ != "OK":
        raise ImapError(f"{what} failed: {data!r}")
    return list(data)


def _internal_date(meta: bytes) -> dt.datetime | None:
    parsed = imaplib.Internaldate2tuple(meta)
    if parsed is None:
        return None
    return dt.datetime.fromtimestamp(time.mktime(parsed), tz=dt.UTC)


def _fetch(client: imaplib.IMAP4, uid: str) -> tuple[bytes, dt.datetime | None] | None:
    data = _check(client.uid("FETCH", uid, "(INTERNALDATE BODY.PEEK[])"), "FETCH")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            meta = item[0] if isinstance(item[0], bytes) else b""
            return item[1], _internal_date(meta)
    return None


def _mark(client: imaplib.IMAP4, uid: str, settings: Settings, can_move: bool) -> None:
    folder = settings.imap_processed_folder
    if folder:
        if can_move:
            _check(client.uid("MOVE", uid, _quote(folder)), "MOVE")
            return
        _check(client.uid("COPY", uid, _quote(folder)), "COPY")
        _check(client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
        client.expunge()
        return
    _check(
        client.uid("STORE", uid, "+FLAGS.SILENT", f"(\\Seen {TAKEN_KEYWORD})"),
        "STORE",
    )


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def poll(take: Take, *, settings: Settings | None = None, limit: int = 200) -> PollReport:
    """Read up to ``limit`` messages not yet taken and hand each to ``take`` (which commits).
    A message that ``take`` refuses as not an e-mail is marked too (it would never become one);
    any other failure leaves it unmarked for the next poll."""
    settings = settings or get_settings()
    report = PollReport()
    client = connect(settings)
    try:
        _check(client.select(_quote(settings.imap_folder)), "SELECT")
        if settings.imap_processed_folder:
            client.create(_quote(settings.imap_processed_folder))  # NO if it exists: fine
            criteria = ["UNDELETED"]
        else:
            criteria = ["UNDELETED", "UNKEYWORD", TAKEN_KEYWORD]
        found = _check(client.uid("SEARCH", *criteria), "SEARCH")
        raw_uids = found[0] if found and isinstance(found[0], bytes) else b""
        uids = [u.decode() for u in _UIDS.findall(raw_uids)]
        capabilities = {str(c).upper() for c in client.capabilities}
        can_move = "MOVE" in capabilities
        for uid in uids[:limit]:
            report.seen += 1
            fetched = _fetch(client, uid)
            if fetched is None:
                continue  # expunged meanwhile
            raw, internal_date = fetched
            try:
                outcome = take(raw, internal_date)
            except InvalidMessage:
                report.invalid += 1
                log.warning("inbound_imap_invalid", uid=int(uid))
            except Exception as exc:
                report.failed += 1
                log.error("inbound_imap_take_failed", uid=int(uid), error=type(exc).__name__)
                continue
            else:
                report.taken[outcome.action] = report.taken.get(outcome.action, 0) + 1
            _mark(client, uid, settings, can_move)  # only after the take committed
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()
    log.info("inbound_imap_polled", **report.as_dict())
    return report
