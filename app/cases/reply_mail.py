# ruff: noqa: RUF001 - greetings are written in their own scripts on purpose
"""The e-mail a reply from the case becomes, built once for the preview and for the sending.

``compose_reply`` renders the reply's subject and text (and HTML) exactly as the outbox handler
sends it (``app/cases/handlers.py::send_reply`` calls it): the requester's language, the
template's greeting with their name, the body as written, the writer's signature, the reference
and the private link. ``preview_reply`` is the same call for a reply not yet written to the
database, with the private link masked (the link carries the requester's token: staff see where
it goes, never the token). ``preview_digest`` names one previewed e-mail: the page sends only
the e-mail whose digest it showed, so what is sent is what was seen.

``leading_greeting``: the template greets already ("Hello <name>,"), so a body that opens with
a greeting of its own would greet the requester twice; the page refuses to send it.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.cases.replies import checked_reply, reply_address
from app.core.settings import get_settings
from app.intake import records as intake
from app.intake.handlers import template_language
from app.models import ExpertProfile, IntakeRequest, User
from app.notifications.render import render_pair

LANGUAGES = ("en", "ru", "es", "ar")

#: (discreet) -> the reply's default subject; discreet ones say nothing of asylum or reports.
REPLY_SUBJECTS: dict[str, dict[bool, str]] = {
    "en": {
        False: "Your asylum expert report request [{ref}]",
        True: "Your message to us [{ref}]",
    },
    "ru": {
        False: "Ваш запрос об экспертном заключении по делу об убежище [{ref}]",
        True: "Ваше сообщение [{ref}]",
    },
    "es": {
        False: "Su solicitud de informe pericial de asilo [{ref}]",
        True: "Su mensaje [{ref}]",
    },
    "ar": {
        False: "طلبكم لتقرير خبير بشأن اللجوء [{ref}]",
        True: "رسالتكم [{ref}]",
    },
}

#: Stands for the requester's token in a preview (the e-mail sent carries the real one).
MASKED_TOKEN = "••••••••"

#: Openings that greet, in the languages of the e-mails (lower case). A body whose first line
#: starts with one of them, as a whole word, greets twice.
GREETINGS: tuple[str, ...] = (
    # en
    "hello",
    "hi",
    "hey",
    "dear",
    "good morning",
    "good afternoon",
    "good evening",
    "greetings",
    # ru
    "здравствуйте",
    "здравствуй",
    "привет",
    "добрый день",
    "доброе утро",
    "добрый вечер",
    "уважаемый",
    "уважаемая",
    "уважаемые",
    # es
    "hola",
    "estimado",
    "estimada",
    "estimados",
    "querido",
    "querida",
    "buenos días",
    "buenas tardes",
    "buenas noches",
    # ar
    "مرحبا",
    "مرحباً",
    "السلام عليكم",
    "عزيزي",
    "عزيزتي",
    "أهلا",
    "أهلاً",
    "اهلا",
    "تحية طيبة",
    "صباح الخير",
    "مساء الخير",
)
_OPENING = re.compile(r"^[\s\W_]*", re.UNICODE)


@dataclass(frozen=True)
class ComposedReply:
    to: str
    subject: str
    text: str
    html: str
    language: str


def reply_subject(req: IntakeRequest, given: str | None, lang: str) -> str:
    if not given:
        return REPLY_SUBJECTS[lang][req.discreet].format(ref=req.reference)
    return given if req.reference in given else f"{given} [{req.reference}]"


def author_name(session: Session, author_id: uuid.UUID | None) -> str:
    """How the writer signs: an expert's public name, a staff member's display name."""
    if author_id is None:
        return ""
    profile = session.get(ExpertProfile, author_id)
    if profile is not None:
        return profile.public_name
    user = session.get(User, author_id)
    return user.display_name if user is not None else ""


def private_link(req: IntakeRequest) -> str | None:
    """The requester's private link (with their token), or None once erased."""
    token = intake.reveal_token(req)
    if token is None:
        return None
    return f"{get_settings().public_url}/r/{req.reference}#token={token}"


def masked_link(req: IntakeRequest) -> str | None:
    """The private link as a preview shows it: the token replaced by ``MASKED_TOKEN``."""
    if intake.reveal_token(req) is None:
        return None
    return f"{get_settings().public_url}/r/{req.reference}#token={MASKED_TOKEN}"


def compose_reply(
    session: Session,
    req: IntakeRequest,
    *,
    to: str,
    name: str,
    author_id: uuid.UUID | None,
    subject: str | None,
    body: str,
    link: str | None,
) -> ComposedReply:
    """The e-mail of one reply: what the outbox handler sends and the preview shows."""
    lang = template_language(req.language, LANGUAGES)
    context = {
        "name": name,
        "body": body,
        "author": author_name(session, author_id),
        "reference": req.reference,
        "link": link,
        "discreet": req.discreet,
    }
    text, html = render_pair(f"cases/reply_{lang}", context)
    return ComposedReply(
        to=to, subject=reply_subject(req, subject, lang), text=text, html=html, language=lang
    )


def addressee(pii: dict[str, object]) -> str:
    """Whom the greeting names: the law firm's contact, else the applicant."""
    return str(pii.get("contact_name") or pii.get("full_name") or "")


def preview_reply(
    session: Session, req: IntakeRequest, user: User, body: str, subject: str | None = None
) -> ComposedReply:
    """The e-mail ``reply(session, req, user, body, subject)`` would send, private link masked.
    Refused like the reply itself (422 naming ``body``/``subject``/``email``, 409 erased)."""
    text, title = checked_reply(body, subject)
    pii = reply_address(req)
    return compose_reply(
        session,
        req,
        to=str(pii["email"]),
        name=addressee(pii),
        author_id=user.id,
        subject=title,
        body=text,
        link=masked_link(req),
    )


def preview_digest(composed: ComposedReply) -> str:
    """Names one previewed e-mail (recipient, subject and text)."""
    raw = "\x00".join((composed.to, composed.subject, composed.text))
    return hashlib.sha256(raw.encode()).hexdigest()


def leading_greeting(body: str) -> str | None:
    """The greeting the body opens with (as typed), or None. Only the first line counts, and
    only a whole word: "Hi," and "Hello Ana" greet, "History of the case" does not."""
    first = next((line for line in body.splitlines() if line.strip()), "")
    opening = _OPENING.sub("", first)
    lowered = opening.casefold()
    for greeting in GREETINGS:
        if lowered.startswith(greeting):
            rest = lowered[len(greeting) :]
            if not rest or not (rest[0].isalnum() or rest[0] == "_"):
                return opening[: len(greeting)]
    return None
