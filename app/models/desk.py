"""The staff desk's own tables: saved replies, and who took a request ("Take it").

- ``saved_replies``: texts staff insert into a reply and adapt. Written by admins, read by
  staff; a saved reply holds no personal data (it is a text for anyone), so it is in clear.
  ``language`` is a language of the requester's e-mails (en, ru, es, ar); the case page offers
  the requester's language first.
- ``request_owners``: the staff member who took a request and answers the requester: at most
  one per request. Distinct from the expert it is offered to (``requests.assigned_expert_id``).
  A table of its own rather than a column of ``requests``: adding a foreign-key column to
  ``requests`` on SQLite needs the table copied and dropped, which with foreign keys on deletes
  or refuses every row that refers to a request.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId, Timestamps


class SavedReply(Timestamps, Base):
    __tablename__ = "saved_replies"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )

    __table_args__ = (Index("ix_saved_replies_language", "language"),)


class RequestOwner(Base):
    __tablename__ = "request_owners"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    taken_at: Mapped[dt.datetime]

    __table_args__ = (Index("ix_request_owners_user_id", "user_id"),)
