"""Saved replies: texts staff insert into a reply to a requester and then adapt.

Admins add, edit and delete them (title, language, body); staff and admins list them. The case
page offers those in the requester's language first (``for_language``). A saved reply holds no
personal data. Titles are unique per language (a second one with the same title is refused by
field, so the list on the case page never shows two alike).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.time import now
from app.models import SavedReply, User
from app.replies.errors import InvalidSavedReply, SavedReplyNotFound

#: The languages of the e-mails to requesters (app/cases/reply_mail.py's templates).
LANGUAGES = ("en", "ru", "es", "ar")
TITLE_MAX_CHARS = 120
BODY_MAX_CHARS = 20_000


def primary_language(tag: str) -> str:
    """A request's language tag as a saved reply's language ("ru-KG" -> "ru"; others "en")."""
    primary = tag.split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else "en"


def list_saved(session: Session, language: str | None = None) -> Sequence[SavedReply]:
    stmt = select(SavedReply).order_by(SavedReply.language, SavedReply.title, SavedReply.id)
    if language is not None:
        stmt = stmt.where(SavedReply.language == language)
    return session.scalars(stmt).all()


def for_language(session: Session, tag: str) -> tuple[list[SavedReply], list[SavedReply]]:
    """(those in the requester's language, the others), each by title."""
    lang = primary_language(tag)
    rows = list_saved(session)
    return [r for r in rows if r.language == lang], [r for r in rows if r.language != lang]


def get(session: Session, saved_id: int) -> SavedReply:
    row = session.get(SavedReply, saved_id)
    if row is None:
        raise SavedReplyNotFound()
    return row


def _checked(
    session: Session, title: str, language: str, body: str, *, keep_id: int | None
) -> tuple[str, str, str]:
    name = (title or "").strip()
    text = (body or "").strip()
    if not name:
        raise InvalidSavedReply("title", "is empty; name the saved reply")
    if "\n" in name or "\r" in name:
        raise InvalidSavedReply("title", "must be one line")
    if len(name) > TITLE_MAX_CHARS:
        raise InvalidSavedReply("title", f"is longer than {TITLE_MAX_CHARS} characters")
    if language not in LANGUAGES:
        raise InvalidSavedReply("language", f"must be one of {', '.join(LANGUAGES)}")
    if not text:
        raise InvalidSavedReply("body", "is empty; write the text")
    if len(text) > BODY_MAX_CHARS:
        raise InvalidSavedReply("body", f"is longer than {BODY_MAX_CHARS} characters")
    same = select(SavedReply.id).where(
        SavedReply.language == language, func.lower(SavedReply.title) == name.lower()
    )
    if keep_id is not None:
        same = same.where(SavedReply.id != keep_id)
    if session.scalar(same.limit(1)) is not None:
        raise InvalidSavedReply("title", "is taken in this language; choose another")
    return name, language, text


def create(session: Session, user: User, *, title: str, language: str, body: str) -> SavedReply:
    name, lang, text = _checked(session, title, language, body, keep_id=None)
    row = SavedReply(title=name, language=lang, body=text, updated_by=user.id)
    session.add(row)
    session.flush()
    return row


def update(
    session: Session,
    user: User,
    saved_id: int,
    *,
    title: str | None = None,
    language: str | None = None,
    body: str | None = None,
) -> SavedReply:
    """Only the fields given change."""
    row = get(session, saved_id)
    name, lang, text = _checked(
        session,
        row.title if title is None else title,
        row.language if language is None else language,
        row.body if body is None else body,
        keep_id=row.id,
    )
    row.title, row.language, row.body = name, lang, text
    row.updated_by = user.id
    row.updated_at = now()
    session.flush()
    return row


def delete(session: Session, saved_id: int) -> None:
    session.delete(get(session, saved_id))
    session.flush()
