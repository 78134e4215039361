"""Signed one-click links in offer e-mails (``app/core/signed_links.py``), carrying the
assignment id. The link only opens a page; the expert acts with one POST from it, because mail
scanners follow links.
"""

from __future__ import annotations

import datetime as dt

from app.core import signed_links
from app.core.settings import get_settings
from app.routing.errors import InvalidOfferLink

PURPOSE = b"asylum-intake/expert-offer-link/v1"


def sign(assignment_id: int, expires_at: dt.datetime) -> str:
    return signed_links.sign(PURPOSE, [str(assignment_id)], expires_at)


def verify(token: str) -> int:
    """The assignment id of a valid, unexpired link; ``InvalidOfferLink`` otherwise."""
    try:
        (assignment,) = signed_links.verify(PURPOSE, token, 1)
        return int(assignment)
    except signed_links.BadLink as exc:
        if exc.expired:
            raise InvalidOfferLink("This link has expired: the offer was passed on.") from None
        raise InvalidOfferLink("This link is not valid.") from None
    except ValueError:
        raise InvalidOfferLink("This link is not valid.") from None


def offer_url(token: str) -> str:
    return f"{get_settings().public_url}/experts/offers/{token}"
