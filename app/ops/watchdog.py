"""The API's watchdog: e-mail the admins when no worker or no beat has been live for
``INTAKE_WATCHDOG_SILENT_MINUTES``, once per silence.

Why from the API and not through the outbox: the outbox is delivered by the worker, and the
worker (or beat, which wakes it) is the thing that has stopped. So the API process sends these
few e-mails itself, directly through ``app.notifications.mail`` (SMTP, or ``.eml`` files on the
embedded default), right after it has claimed the alert.

Once per silence, however many API processes watch: the claim is one conditional statement on
``watchdog_alerts`` (the newest heartbeat the alert is about). A process that comes back and
goes silent again has a newer heartbeat, so that is a new silence and a new e-mail. A claim
whose e-mail could not be sent is rolled back with it and tried at the next check.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from email.message import Message

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.database import session_scope
from app.core.settings import get_settings
from app.models import Role, User, WatchdogAlert
from app.notifications import mail
from app.ops.heartbeat import KINDS, Liveness, liveness, wall_now

log = structlog.get_logger(__name__)

WHAT_STOPS = {
    "worker": (
        "No e-mail goes out: acknowledgements, replies to requesters, offers to experts, the "
        "30- and 45-minute reminders and the escalation when the one-hour promise is breached."
    ),
    "beat": (
        "Nothing wakes the worker on schedule: the outbox is only sent when a page or the API "
        "nudges it, offers do not expire and reminders fall late."
    ),
}


@dataclass(frozen=True)
class Silence:
    kind: str
    since: dt.datetime  # the newest heartbeat, or when this watchdog started watching
    last_seen: dt.datetime | None


def silences(session: Session, *, at: dt.datetime, watching_since: dt.datetime) -> list[Silence]:
    """Kinds with no live process for at least the configured minutes."""
    limit = dt.timedelta(minutes=get_settings().watchdog_silent_minutes)
    found = []
    for kind, state in liveness(session, at=at).items():
        if state.ok:
            continue
        since = state.newest_seen_at or watching_since
        if at - since >= limit:
            found.append(Silence(kind, since, state.newest_seen_at))
    return found


def _claim(session: Session, silence: Silence, at: dt.datetime) -> bool:
    """True for the one caller that gets to e-mail about this silence."""
    last = silence.last_seen
    row = session.get(WatchdogAlert, silence.kind)
    if row is None:
        try:
            with session.begin_nested():
                session.add(WatchdogAlert(kind=silence.kind, silent_since=last, alerted_at=at))
            return True
        except IntegrityError:  # another API process claimed it at the same moment
            return False
    if last is None:
        return False  # still never seen: the alert about that went out already
    claimed = session.execute(
        update(WatchdogAlert)
        .where(
            WatchdogAlert.kind == silence.kind,
            or_(WatchdogAlert.silent_since.is_(None), WatchdogAlert.silent_since < last),
        )
        .values(silent_since=last, alerted_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def _admins(session: Session) -> list[str]:
    return list(
        session.scalars(select(User.email).where(User.role == Role.admin, User.is_active.is_(True)))
    )


def _message(silence: Silence, at: dt.datetime, to: str) -> Message:
    minutes = int((at - silence.since).total_seconds() // 60)
    seen = (
        f"Its last heartbeat was at {silence.last_seen:%Y-%m-%d %H:%M} UTC ({minutes} minutes ago)."
        if silence.last_seen
        else f"None has reported since this API process started watching {minutes} minutes ago."
    )
    settings = get_settings()
    text = (
        f"No {silence.kind} of asylum-intake is running.\n\n{seen}\n\n"
        f"{WHAT_STOPS[silence.kind]} The one-hour promise to requesters is at risk.\n\n"
        "What to do: start it again (`asylum-intake {kind}`, or your process manager / "
        "container), then check `asylum-intake check` and {url}/readyz. You get this e-mail "
        "once for this silence; it ends when the {kind} reports again.\n"
    ).format(kind=silence.kind, url=settings.public_url)
    return mail.build_message(
        to=to,
        subject=f"asylum-intake: no {silence.kind} running for {minutes} minutes",
        text=text,
        settings=settings,
    )


def check(
    session: Session, *, at: dt.datetime | None = None, watching_since: dt.datetime
) -> list[str]:
    """One look; e-mails (directly) about each new silence. Returns the kinds e-mailed about."""
    at = at or wall_now()
    sent = []
    for silence in silences(session, at=at, watching_since=watching_since):
        if not _claim(session, silence, at):
            continue
        admins = _admins(session)
        for address in admins:
            mail.send(_message(silence, at, address))
        log.warning("watchdog_alert", kind=silence.kind, admins=len(admins))
        sent.append(silence.kind)
    session.flush()
    return sent


def describe(states: dict[str, Liveness]) -> dict[str, object]:
    return {k: {"live": v.live, "last_seen_age_seconds": v.age_seconds} for k, v in states.items()}


class Watchdog(threading.Thread):
    """Runs ``check`` every ``INTAKE_WATCHDOG_CHECK_SECONDS`` in the API's process."""

    def __init__(self) -> None:
        super().__init__(name="watchdog", daemon=True)
        self.watching_since = wall_now()
        self._stopping = threading.Event()

    def run(self) -> None:
        interval = get_settings().watchdog_check_seconds
        while not self._stopping.wait(interval):
            try:
                with session_scope() as session:
                    check(session, watching_since=self.watching_since)
            except Exception:  # SMTP or the database down: the claim rolled back, try again
                log.warning("watchdog_check_failed", exc_info=True)

    def stop(self) -> None:
        self._stopping.set()


def start() -> Watchdog | None:
    """Start watching, unless ``INTAKE_WATCHDOG_SILENT_MINUTES`` is 0."""
    if get_settings().watchdog_silent_minutes <= 0:
        return None
    dog = Watchdog()
    dog.start()
    return dog


__all__ = ["KINDS", "Silence", "Watchdog", "check", "silences", "start"]
