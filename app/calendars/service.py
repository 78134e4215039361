"""An expert's calendars: connect, list, remove. Knows nothing of HTTP; flushes, never commits.

The address and the password are secrets (anyone holding a private ICS address reads the
calendar): both are stored encrypted with the master key, bound to the connection's id, and
never shown again; people see ``address_hint``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calendars import fetch
from app.calendars.errors import CalendarInvalid, CalendarNotFound
from app.calendars.schemas import CalendarIn
from app.core.crypto import decrypt_with_master, encrypt_with_master
from app.core.errors import FieldProblem
from app.core.time import now
from app.models import CalendarConnection, CalendarKind, ExpertProfile


@dataclass(frozen=True)
class Secret:
    address: str
    password: str | None


def _aad(connection_id: uuid.UUID) -> bytes:
    return f"calendar:{connection_id}".encode()


def reveal(connection: CalendarConnection) -> Secret:
    raw = decrypt_with_master(connection.secret_key_id, connection.secret_enc, _aad(connection.id))
    value = json.loads(raw)
    return Secret(address=str(value["address"]), password=value.get("password"))


def list_calendars(session: Session, expert_id: uuid.UUID) -> list[CalendarConnection]:
    return list(
        session.scalars(
            select(CalendarConnection)
            .where(CalendarConnection.expert_id == expert_id)
            .order_by(CalendarConnection.created_at, CalendarConnection.id)
        )
    )


def connect(session: Session, expert_id: uuid.UUID, body: CalendarIn) -> CalendarConnection:
    """A new calendar of the expert, due to be read at once by the worker."""
    if session.get(ExpertProfile, expert_id) is None:
        raise CalendarNotFound("No expert with this id.")
    problems: list[FieldProblem] = []
    address = ""
    try:
        address = fetch.normalise_address(body.address.get_secret_value())
    except ValueError:
        problems.append(
            FieldProblem(field="address", message="not an https:// or webcal:// address")
        )
    if len(body.address.get_secret_value()) > 2000:
        problems.append(FieldProblem(field="address", message="at most 2000 characters"))
    username = (body.username or "").strip() or None
    password = body.password.get_secret_value() if body.password else None
    if body.kind == "caldav":
        if username is None:
            problems.append(FieldProblem(field="username", message="required for CalDAV"))
        if not password:
            problems.append(FieldProblem(field="password", message="required for CalDAV"))
    if problems:
        raise CalendarInvalid(problems)
    connection_id = uuid.uuid4()
    key_id, blob = encrypt_with_master(
        json.dumps({"address": address, "password": password}).encode(), _aad(connection_id)
    )
    hint = fetch.address_hint(address)
    connection = CalendarConnection(
        id=connection_id,
        expert_id=expert_id,
        kind=CalendarKind(body.kind),
        label=(body.label or "").strip()[:100] or hint.split(" ")[0][:100],
        address_hint=hint,
        username=username if body.kind == "caldav" else None,
        secret_enc=blob,
        secret_key_id=key_id,
        next_refresh_at=now(),
        failures=0,
        busy_count=0,
    )
    session.add(connection)
    session.flush()
    return connection


def get_calendar(
    session: Session, expert_id: uuid.UUID, connection_id: uuid.UUID
) -> CalendarConnection:
    connection = session.get(CalendarConnection, connection_id)
    if connection is None or connection.expert_id != expert_id:
        raise CalendarNotFound("No such calendar of this expert.")
    return connection


def remove(session: Session, expert_id: uuid.UUID, connection_id: uuid.UUID) -> None:
    """Forget the calendar and its busy times (slots open up at once)."""
    connection = get_calendar(session, expert_id, connection_id)
    session.delete(connection)
    session.flush()


def refresh_now(session: Session, expert_id: uuid.UUID, connection_id: uuid.UUID) -> None:
    """Make the calendar due now (the worker reads it within a minute)."""
    connection = get_calendar(session, expert_id, connection_id)
    connection.next_refresh_at = now()
    session.flush()
