"""Inbound e-mail task: poll the IMAP mailbox (every ``INTAKE_IMAP_POLL_SECONDS`` in beat when
``INTAKE_IMAP_HOST`` is set). One transaction per message, committed before it is marked."""

from __future__ import annotations

import datetime as dt

from app.core.database import session_scope
from app.flows import request as flows
from app.inbound import imap
from app.inbound.service import Outcome
from workers.celery_app import app

POLL_TASK = "inbound.poll_imap"


def take(raw: bytes, received_at: dt.datetime | None) -> Outcome:
    with session_scope() as session:
        return flows.inbound_message(session, raw, received_at=received_at, via="imap")


@app.task(name=POLL_TASK)
def poll_imap() -> dict[str, object]:
    if not imap.configured():
        return {"skipped": "INTAKE_IMAP_HOST is not set"}
    return imap.poll(take).as_dict()
