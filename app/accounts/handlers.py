"""Outbox handlers of the accounts domain: the invite and password-reset e-mails."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.accounts.service import reveal_account_token
from app.core.settings import get_settings
from app.models import AccountToken, OutboxMessage, User
from app.notifications import mail
from app.notifications.facts import recipient, when_for
from app.notifications.render import render_pair
from app.outbox.registry import PermanentFailure, handler

SERVICE_NAME = "the expert reports service"


def _send_account_link(session: Session, row: OutboxMessage, template: str, subject: str) -> None:
    token_row = session.get(AccountToken, uuid.UUID(row.params["token_id"]))
    if token_row is None:
        raise PermanentFailure("account token is gone")
    user = session.get(User, token_row.user_id)
    if user is None or not user.is_active:
        raise PermanentFailure("user is gone or deactivated")
    settings = get_settings()
    link = f"{settings.public_url}/account/set-password?token={reveal_account_token(token_row)}"
    text, html = render_pair(
        template,
        {
            "name": user.display_name,
            "role": user.role.value,
            "service": SERVICE_NAME,
            "link": link,
            # In words, in the person's own language and zone (an invited expert's zone is
            # their profile's).
            "expires": when_for(token_row.expires_at, recipient(session, user.id)),
        },
    )
    message = mail.build_message(
        to=user.email,
        subject=subject,
        text=text,
        html=html,
        message_id=mail.stable_message_id(f"outbox-{row.id}"),
    )
    mail.send(message)


@handler("accounts.invite")
def send_invite(session: Session, row: OutboxMessage) -> None:
    _send_account_link(session, row, "accounts/invite", "Your account: choose a password")


@handler("accounts.password_reset")
def send_password_reset(session: Session, row: OutboxMessage) -> None:
    _send_account_link(session, row, "accounts/password_reset", "Reset your password")
