"""Signed one-click acknowledgement links in escalation e-mails: ``<payload>.<signature>``.

Signed by ``app/core/signed_links.py`` (as the offer links are), carrying ``<escalation id>``
and ``<user id>``. The link names the person it was sent to,
so the acknowledgement records who. GET only shows a page (mail scanners follow links); the POST
from that page acknowledges. Anything wrong answers 404.
"""

from __future__ import annotations

import datetime as dt
import uuid

from app.core import signed_links
from app.core.settings import get_settings
from app.core.time import now
from app.roster.errors import InvalidAckLink

PURPOSE = b"asylum-intake/escalation-ack-link/v1"


def sign(escalation_id: int, user_id: uuid.UUID, expires_at: dt.datetime | None = None) -> str:
    if expires_at is None:
        expires_at = now() + dt.timedelta(hours=get_settings().escalation_link_hours)
    return signed_links.sign(PURPOSE, [str(escalation_id), user_id.hex], expires_at)


def verify(token: str) -> tuple[int, uuid.UUID]:
    """(escalation id, user id) of a valid, unexpired link; ``InvalidAckLink`` otherwise."""
    try:
        escalation, user = signed_links.verify(PURPOSE, token, 2)
        return int(escalation), uuid.UUID(hex=user)
    except signed_links.BadLink as exc:
        if exc.expired:
            raise InvalidAckLink("This link has expired.") from None
        raise InvalidAckLink("This link is not valid.") from None
    except ValueError:
        raise InvalidAckLink("This link is not valid.") from None


def ack_url(token: str) -> str:
    return f"{get_settings().public_url}/escalations/ack/{token}"
