"""Which messages are not a person writing, and which a person asks us not to answer.

Set aside (never a new request, never answered; a trace for staff, see ``set_aside``):
- auto-replies: ``Auto-Submitted`` other than ``no``, ``X-Autoreply``, ``X-Autorespond``,
  ``Precedence: auto_reply``, and a subject that says it is one ("Automatic reply:", "Out of
  office:", in the languages Outlook and Exchange use); Exchange inbox rules add
  ``X-MS-Exchange-Inbox-Rules-Loop`` and often no ``Auto-Submitted``;
- mailing lists, bulk mail and newsletters: any RFC 2369/2919/8058 list header (``List-Id``,
  ``List-Unsubscribe``, ``List-Unsubscribe-Post``, ``List-Post``, ...), ``Precedence:
  bulk|junk|list``;
- read receipts: ``multipart/report; report-type=disposition-notification`` (RFC 8098);
- bounces: a ``mailer-daemon`` or ``postmaster`` sender, or a null return path (``<>``); a proper
  delivery-status report (``multipart/report; report-type=delivery-status``) is read by ``dsn``;
- the service's own mail coming back: sent from one of our From addresses;
- loops: more ``Received`` hops than a real delivery takes.

Taken, but not acknowledged (``ack_suppression``): ``X-Auto-Response-Suppress: All`` or
``AutoReply`` (Outlook and Exchange put it on a person's mail to ask that no automatic answer be
sent; it does not mark an auto-reply), and ``X-MS-Exchange-Inbox-Rules-Loop`` without the marks
of an auto-reply (mail an inbox rule forwarded or redirected: answering it could start a loop).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr

from app.core.settings import Settings


class Verdict(enum.StrEnum):
    take = "take"
    delivery_report = "delivery_report"
    # The rest are set aside; the values are those of ``app.models.SetAsideReason``.
    auto_reply = "auto_reply"
    mailing_list = "mailing_list"
    bounce = "bounce"
    read_receipt = "read_receipt"
    own_mail = "own_mail"
    loop = "loop"


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    #: Which header or rule decided (names and fixed values only, never an address).
    reason: str

    @property
    def set_aside(self) -> bool:
        return self.verdict not in (Verdict.take, Verdict.delivery_report)


BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
AUTO_HEADERS = ("X-Autoreply", "X-Autorespond")
RULES_LOOP = "X-MS-Exchange-Inbox-Rules-Loop"
SUPPRESS = "X-Auto-Response-Suppress"
#: RFC 2369, RFC 2919 and RFC 8058 headers: any of them marks list or newsletter mail.
LIST_HEADERS = (
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Post",
    "List-Subscribe",
    "List-Help",
    "List-Owner",
    "List-Archive",
)
#: Sendmail refuses mail past 25 hops; no real delivery comes near it.
MAX_HOPS = 25
#: Subjects Outlook, Exchange and common autoresponders give automatic replies.
AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto[- ]?reply|auto[- ]?response|out of office( reply)?"
    r"|automatische antwort|réponse automatique|respuesta automática|resposta automática"
    r"|risposta automatica|automatisch antwoord|автоматический ответ|رد تلقائي)\s*:",
    re.IGNORECASE,
)
#: The values ``X-Auto-Response-Suppress`` may list ([MS-OXCMAIL] 2.2.3.2.20), as spelled there.
SUPPRESS_VALUES = {
    v.lower(): v for v in ("None", "All", "DR", "NDR", "RN", "NRN", "OOF", "AutoReply")
}


def _report_type(msg: EmailMessage) -> str:
    if msg.get_content_type() != "multipart/report":
        return ""
    return str(msg.get_param("report-type", "")).lower()


def is_delivery_report(msg: EmailMessage) -> bool:
    return _report_type(msg) == "delivery-status"


def is_read_receipt(msg: EmailMessage) -> bool:
    return (
        _report_type(msg) == "disposition-notification"
        or msg.get_content_type() == "message/disposition-notification"
    )


def own_addresses(settings: Settings) -> set[str]:
    return {
        parseaddr(value)[1].lower()
        for value in (settings.mail_from, settings.mail_from_discreet)
        if parseaddr(value)[1]
    }


def auto_subject(subject: str) -> str | None:
    """The auto-reply prefix of ``subject`` (e.g. "Automatic reply:"), or None."""
    found = AUTO_SUBJECT.match(subject or "")
    return found.group(0).strip() if found else None


def classify(
    msg: EmailMessage, sender: str | None, settings: Settings, *, sent_by_us: bool
) -> Classification:
    """``sent_by_us``: the message's own Message-ID is one the service sent."""
    if is_delivery_report(msg):
        return Classification(Verdict.delivery_report, "report-type=delivery-status")
    if is_read_receipt(msg):
        return Classification(Verdict.read_receipt, "report-type=disposition-notification")
    local = (sender or "").split("@", 1)[0].lower()
    if local in BOUNCE_SENDERS:
        return Classification(Verdict.bounce, f"sender {local}")
    if sent_by_us or (sender or "").lower() in own_addresses(settings):
        return Classification(Verdict.own_mail, "our own message came back")
    hops = len(msg.get_all("Received") or [])
    if hops > MAX_HOPS:
        return Classification(Verdict.loop, f"{hops} Received headers")
    auto = str(msg.get("Auto-Submitted") or "").strip().lower()
    if auto and auto.split(";", 1)[0].strip() != "no":
        return Classification(
            Verdict.auto_reply, f"Auto-Submitted: {auto.split(';', 1)[0].strip()[:40]}"
        )
    for name in AUTO_HEADERS:
        if msg.get(name) is not None:
            return Classification(Verdict.auto_reply, name)
    precedence = str(msg.get("Precedence") or "").strip().lower()
    if precedence == "auto_reply":
        return Classification(Verdict.auto_reply, "Precedence: auto_reply")
    if precedence in ("bulk", "junk", "list"):
        return Classification(Verdict.mailing_list, f"Precedence: {precedence}")
    prefix = auto_subject(str(msg.get("Subject") or ""))
    if prefix is not None:
        rules = f"{RULES_LOOP}, " if msg.get(RULES_LOOP) is not None else ""
        return Classification(Verdict.auto_reply, f"{rules}subject {prefix!r}")
    for name in LIST_HEADERS:
        if msg.get(name) is not None:
            return Classification(Verdict.mailing_list, name)
    if str(msg.get("Return-Path") or "").strip() == "<>":
        return Classification(Verdict.bounce, "null return path")
    return Classification(Verdict.take, "")


def ack_suppression(msg: EmailMessage) -> str | None:
    """Why a person's message must get no automatic acknowledgement, or None."""
    listed = [
        SUPPRESS_VALUES[token]
        for token in (t.strip().lower() for t in str(msg.get(SUPPRESS) or "").split(","))
        if token in SUPPRESS_VALUES
    ]
    if {"All", "AutoReply"} & set(listed):
        return f"{SUPPRESS}: {', '.join(listed)}"
    if msg.get(RULES_LOOP) is not None:
        return RULES_LOOP
    return None
