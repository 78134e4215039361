"""Which messages never open a request and never get an answer.

- auto-replies: ``Auto-Submitted`` other than ``no``, ``X-Autoreply``, ``X-Autorespond``,
  ``X-Auto-Response-Suppress``, ``Precedence: auto_reply``;
- mailing lists and bulk mail: ``List-Id``, ``Precedence: bulk|junk|list``;
- bounces: a ``mailer-daemon`` or ``postmaster`` sender, or a null return path (``<>``); a proper
  delivery-status report (``multipart/report; report-type=delivery-status``) is read by ``dsn``;
- the service's own mail coming back: sent from one of our From addresses, or carrying a
  Message-ID the service sent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr

from app.core.settings import Settings


class Verdict(enum.StrEnum):
    take = "take"
    delivery_report = "delivery_report"
    auto_reply = "auto_reply"
    mailing_list = "mailing_list"
    bounce = "bounce"
    own_mail = "own_mail"


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    reason: str

    @property
    def ignored(self) -> bool:
        return self.verdict not in (Verdict.take, Verdict.delivery_report)


BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")


def is_delivery_report(msg: EmailMessage) -> bool:
    return (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type", "")).lower() == "delivery-status"
    )


def own_addresses(settings: Settings) -> set[str]:
    return {
        parseaddr(value)[1].lower()
        for value in (settings.mail_from, settings.mail_from_discreet)
        if parseaddr(value)[1]
    }


def classify(
    msg: EmailMessage, sender: str | None, settings: Settings, *, sent_by_us: bool
) -> Classification:
    """``sent_by_us``: the message's own Message-ID is one the service sent."""
    if is_delivery_report(msg):
        return Classification(Verdict.delivery_report, "report-type=delivery-status")
    local = (sender or "").split("@", 1)[0].lower()
    if local in BOUNCE_SENDERS:
        return Classification(Verdict.bounce, f"sender {local}")
    if sent_by_us or (sender or "").lower() in own_addresses(settings):
        return Classification(Verdict.own_mail, "our own message came back")
    auto = str(msg.get("Auto-Submitted") or "").strip().lower()
    if auto and auto.split(";", 1)[0].strip() != "no":
        return Classification(Verdict.auto_reply, f"Auto-Submitted: {auto.split(';', 1)[0]}")
    for name in AUTO_HEADERS:
        if msg.get(name) is not None:
            return Classification(Verdict.auto_reply, name)
    precedence = str(msg.get("Precedence") or "").strip().lower()
    if precedence == "auto_reply":
        return Classification(Verdict.auto_reply, "Precedence: auto_reply")
    if precedence in ("bulk", "junk", "list"):
        return Classification(Verdict.mailing_list, f"Precedence: {precedence}")
    if msg.get("List-Id") is not None:
        return Classification(Verdict.mailing_list, "List-Id")
    if str(msg.get("Return-Path") or "").strip() == "<>":
        return Classification(Verdict.bounce, "null return path")
    return Classification(Verdict.take, "")
