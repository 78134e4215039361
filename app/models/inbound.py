"""Inbound e-mail (issue 9): addresses flagged after a permanent bounce, and the daily count of
acknowledgements per sender.

Both are keyed by the keyed e-mail hash (the same as ``requests.email_lookup``), never by the
address itself.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class FlaggedAddress(Base):
    """An address a delivery-status report said is permanently undeliverable (5.x.x)."""

    __tablename__ = "inbound_flagged_addresses"

    email_lookup: Mapped[str] = mapped_column(String(64), primary_key=True)
    flagged_at: Mapped[dt.datetime]
    # The DSN's status code, e.g. "5.1.1", and how many permanent failures were reported.
    status: Mapped[str] = mapped_column(String(16))
    failures: Mapped[int] = mapped_column(default=1)


class InboundAckCount(Base):
    """How many acknowledgements went to one sender on one (UTC) day."""

    __tablename__ = "inbound_ack_counts"

    sender_lookup: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
