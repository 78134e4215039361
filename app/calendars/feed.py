"""An expert's private calendar feed of their consultations (ICS), made afresh from the
database on every read, so it follows every booking, move and cancellation.

The address carries a random token (``cf_`` + 32 random bytes). It is stored as a SHA-256 hash
for look-up and as a copy encrypted with the master key, so the expert can see the address
again; rotating makes a new token (the old address answers 404 at once), revoking removes it.

Each consultation is one event with its stable UID and SEQUENCE (the invite's), the reference
and the join link; the requester's name only once the expert has accepted the case. Cancelled
consultations of the last 30 days stay in the feed as ``STATUS:CANCELLED`` so calendar clients
drop them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

import icalendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.crypto import decrypt_with_master, encrypt_with_master
from app.core.settings import get_settings
from app.core.time import now
from app.intake.records import reveal_pii
from app.models import (
    Assignment,
    AssignmentStatus,
    Consultation,
    ConsultationFeed,
    ConsultationStatus,
    ExpertProfile,
    IntakeRequest,
)
from app.scheduling.ics import PRODID

TOKEN_PREFIX = "cf_"
PATH = "/calendar-feeds"
_PAST = dt.timedelta(days=30)
# Reads are recorded at most this often (calendar clients poll every few minutes).
_READ_EVERY = dt.timedelta(hours=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aad(expert_id: uuid.UUID) -> bytes:
    return f"feed:{expert_id}".encode()


def feed_url(token: str) -> str:
    return f"{get_settings().public_url.rstrip('/')}{PATH}/{token}.ics"


def get_feed(session: Session, expert_id: uuid.UUID) -> ConsultationFeed | None:
    return session.get(ConsultationFeed, expert_id)


def show(session: Session, expert_id: uuid.UUID) -> str | None:
    """The feed's address, or None when the expert has none."""
    row = get_feed(session, expert_id)
    if row is None:
        return None
    token = decrypt_with_master(row.token_key_id, row.token_enc, _aad(expert_id)).decode()
    return feed_url(token)


def rotate(session: Session, expert_id: uuid.UUID) -> str:
    """A new address (made if there was none); the old one stops working. Returns it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key_id, blob = encrypt_with_master(token.encode(), _aad(expert_id))
    row = get_feed(session, expert_id)
    if row is None:
        row = ConsultationFeed(expert_id=expert_id)
        session.add(row)
    row.token_hash = _hash(token)
    row.token_enc = blob
    row.token_key_id = key_id
    row.created_at = now()
    row.last_read_at = None
    session.flush()
    return feed_url(token)


def revoke(session: Session, expert_id: uuid.UUID) -> bool:
    """No feed any more; True when there was one."""
    row = get_feed(session, expert_id)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def expert_of(session: Session, token: str) -> uuid.UUID | None:
    """Whose feed this token opens (None: none, revoked, rotated)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = session.scalar(
        select(ConsultationFeed).where(ConsultationFeed.token_hash == _hash(token))
    )
    if row is None:
        return None
    current = now()
    if row.last_read_at is None or current - row.last_read_at >= _READ_EVERY:
        row.last_read_at = current
        session.flush()
    return row.expert_id


@dataclass(frozen=True)
class Feed:
    body: bytes
    etag: str


def build(session: Session, expert_id: uuid.UUID) -> Feed:
    """The expert's consultations as one iCalendar file, and its ETag."""
    current = now()
    profile = session.get(ExpertProfile, expert_id)
    rows = session.execute(
        select(Consultation, IntakeRequest)
        .join(IntakeRequest, IntakeRequest.id == Consultation.request_id)
        .where(
            Consultation.expert_id == expert_id,
            Consultation.end_at > current - _PAST,
            Consultation.status.in_(
                [
                    ConsultationStatus.booked,
                    ConsultationStatus.held,
                    ConsultationStatus.no_show,
                    ConsultationStatus.cancelled,
                ]
            ),
        )
        .order_by(Consultation.start_at, Consultation.id)
    ).all()
    accepted = set(
        session.scalars(
            select(Assignment.request_id).where(
                Assignment.expert_id == expert_id,
                Assignment.status == AssignmentStatus.accepted,
                Assignment.request_id.in_([r.id for _, r in rows]),
            )
        )
    )
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "Consultations" + (f" ({profile.public_name})" if profile else ""))
    cal.add("refresh-interval", dt.timedelta(minutes=15), parameters={"VALUE": "DURATION"})
    base = get_settings().public_url.rstrip("/")
    for c, req in rows:
        cal.add_component(_event(c, req, req.id in accepted, base))
    body = cal.to_ical()
    return Feed(body=body, etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _event(c: Consultation, req: IntakeRequest, accepted: bool, base: str) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", c.ical_uid)
    event.add("sequence", c.ical_sequence)
    event.add("dtstamp", c.updated_at.astimezone(dt.UTC))
    event.add("dtstart", c.start_at.astimezone(dt.UTC))
    event.add("dtend", c.end_at.astimezone(dt.UTC))
    name = None
    if accepted:
        pii = reveal_pii(req)
        name = str(pii.get("full_name") or "") if pii else None
    summary = f"Consultation {req.reference}" + (f" with {name}" if name else "")
    event.add("summary", summary)
    lines = [f"Reference: {req.reference}", f"Case: {base}/expert/cases/{req.reference}"]
    if c.meeting_join_url:
        lines.insert(1, f"Join: {c.meeting_join_url}")
        event.add("location", c.meeting_join_url)
        event.add("url", c.meeting_join_url)
    event.add("description", "\n".join(lines))
    cancelled = c.status == ConsultationStatus.cancelled
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
    return event
