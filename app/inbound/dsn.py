"""Reading a delivery-status report (RFC 3464: ``multipart/report;
report-type=delivery-status``): the per-recipient status and the Message-ID of the message that
could not be delivered (from its ``message/rfc822`` or ``text/rfc822-headers`` part)."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser

from app.inbound.parsing import message_ids


@dataclass(frozen=True)
class Recipient:
    address: str | None  # Final-Recipient (or Original-Recipient), lower-cased
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # e.g. "5.1.1"

    @property
    def permanent(self) -> bool:
        return self.action == "failed" and self.status.startswith("5")


@dataclass(frozen=True)
class Report:
    original_message_id: str | None
    recipients: list[Recipient]

    @property
    def permanent(self) -> bool:
        return any(r.permanent for r in self.recipients)

    @property
    def status(self) -> str:
        for r in self.recipients:
            if r.permanent:
                return r.status
        return self.recipients[0].status if self.recipients else ""


def _address(value: object) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    if ";" in text:  # "rfc822; someone@example.org"
        text = text.split(";", 1)[1].strip()
    return text.strip("<>").lower() or None


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    # Some parsers leave the blocks as text: read them as header blocks.
    text = payload if isinstance(payload, str) else ""
    return [
        HeaderParser(policy=policy.default).parsestr(block.strip() + "\n")
        for block in text.split("\n\n")
        if block.strip()
    ]


def _original_id(part: Message) -> str | None:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner_msg = inner[0] if isinstance(inner, list) and inner else None
        if isinstance(inner_msg, Message):
            found = message_ids(inner_msg.get("Message-ID"))
            return found[0] if found else None
        return None
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(part.get_payload())
    headers = HeaderParser(policy=policy.default).parsestr(text)
    found = message_ids(headers.get("Message-ID"))
    return found[0] if found else None


def read(msg: EmailMessage) -> Report:
    recipients: list[Recipient] = []
    original: str | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            blocks = _status_blocks(part)
            for block in blocks[1:] if len(blocks) > 1 else blocks:  # first: per-message fields
                action = str(block.get("Action") or "").strip().lower()
                status = str(block.get("Status") or "").strip().split(" ", 1)[0]
                if not action and not status:
                    continue
                recipients.append(
                    Recipient(
                        address=_address(
                            block.get("Final-Recipient") or block.get("Original-Recipient")
                        ),
                        action=action,
                        status=status,
                    )
                )
        elif ctype in ("message/rfc822", "text/rfc822-headers") and original is None:
            original = _original_id(part)
    return Report(original_message_id=original, recipients=recipients)
