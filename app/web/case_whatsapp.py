"""The case page's WhatsApp side: the reply box's channel choice, the 24-hour window in words,
and a WhatsApp message sent from the page by the same service as the API
(``app/whatsapp/service.py::reply``).

The window is said in the viewer's language and zone: "Free text until Sunday 6 December 2026
at 14:05 (Berlin time)" while the requester's last message is less than 24 hours old, else
"Only approved templates: ..." with why. WhatsApp is offered when it is connected and the
request has a number; the e-mail when the request has an address.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.models import IntakeRequest, User, WhatsAppMessage
from app.notifications.dates import when_in_words
from app.web.i18n import N_, translations
from app.whatsapp import service as whatsapp
from app.whatsapp import templates

CHANNELS = ("email", "whatsapp")
#: How far WhatsApp took a message, as the conversation says it.
STATUS_LABELS: dict[str, str] = {
    "queued": N_("WhatsApp: waiting to be sent"),
    "sent": N_("WhatsApp: sent"),
    "delivered": N_("WhatsApp: delivered"),
    "read": N_("WhatsApp: read"),
    "failed": N_("WhatsApp: not delivered"),
    "received": N_("WhatsApp: received"),
}
#: A WhatsApp entry's kind in the conversation.
KIND_LABELS: dict[str, str] = {
    "inbound": N_("From the requester, on WhatsApp"),
    "reply": N_("Reply sent on WhatsApp"),
    "automatic": N_("Automatic WhatsApp message"),
}
TEMPLATE_LABELS: dict[str, str] = {
    "tried_to_reach": N_("We tried to reach you: please reply"),
    "acknowledgement": N_("We received your request"),
}
REASONS: dict[str, str] = {
    "window_closed": N_(
        "Only approved templates: the requester last wrote more than 24 hours ago."
    ),
    "never_wrote": N_("Only approved templates: the requester has not written on WhatsApp yet."),
}
#: The service's refusals a page words itself (others are shown as the service wrote them).
REFUSALS: dict[str, str] = {
    "whatsapp_window_closed": N_(
        "Free text cannot be sent: the requester last wrote more than 24 hours ago. Choose an "
        "approved template."
    ),
    "no_whatsapp_number": N_("This request has no WhatsApp number."),
    "whatsapp_not_configured": N_("WhatsApp is not connected."),
    "text": N_("The message is empty. Write the message to send."),
}
SENT = N_("The WhatsApp message is queued and goes in a moment. It counts as the first response.")


def window_words(w: whatsapp.Window, zone: str, lang: str) -> str:
    """The window in words, in the viewer's language and zone."""
    gettext = translations(lang).gettext
    if w.free_text and w.until is not None:
        when = when_in_words(w.until, zone, lang)
        return gettext(N_("Free text until %(when)s.")) % {"when": when}
    return gettext(REASONS.get(w.reason_code, REASONS["never_wrote"]))


def context(
    session: Session, req: IntakeRequest, *, email_possible: bool, zone: str, lang: str, chosen: str
) -> dict[str, Any]:
    """What the reply box needs: the channels offered, the one shown, the window in words and
    the templates (their text in the requester's language)."""
    offered = ["email"] if email_possible else []
    w = None
    if whatsapp.configured() and req.data_key_enc is not None:
        w = whatsapp.window(session, req)
        if w.number is not None:
            offered.append("whatsapp")
    preferred = "whatsapp" if req.preferred_channel.value == "whatsapp" else "email"
    shown = next((c for c in (chosen, preferred, *offered) if c in offered), None)
    language = templates.language_for(req.language)
    return {
        "reply_channels": offered,
        "reply_channel": shown,
        "wa_window": window_words(w, zone, lang) if w is not None and w.number else None,
        "wa_free_text": bool(w and w.free_text),
        "wa_templates": [
            (
                key,
                TEMPLATE_LABELS[key],
                templates.render(
                    templates.choose(key, discreet=req.discreet), language, [req.reference]
                ),
            )
            for key in templates.STAFF_CHOICES
        ],
        "wa_status_labels": STATUS_LABELS,
        "wa_kind_labels": KIND_LABELS,
    }


def values(form: FormData) -> dict[str, str]:
    text = form.get("wa_text")
    template = form.get("wa_template")
    return {
        "wa_text": text.strip().replace("\r\n", "\n")[:5000] if isinstance(text, str) else "",
        "wa_template": template if isinstance(template, str) else "",
    }


def refusal(code: str, field: str | None) -> str | None:
    """The msgid for a refusal of ``send`` (the page translates it), or None."""
    return REFUSALS.get(code) or (REFUSALS["text"] if field == "text" else None)


def send(
    session: Session, req: IntakeRequest, user: User, given: dict[str, str]
) -> WhatsAppMessage:
    """The chosen template, else the free text: the API's service, with its refusals (an empty
    text, free text outside the window)."""
    if given["wa_template"]:
        return whatsapp.reply(session, req, user, template=given["wa_template"])
    return whatsapp.reply(session, req, user, text=given["wa_text"])
