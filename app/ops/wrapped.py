"""Every value the service keeps wrapped by the master key, in one list.

Each entry names the table, its primary key, the column holding the master key's id and the
column holding the wrapped bytes, and the associated data the wrapping was made with (it must
match the code that wraps them: ``app/intake/keys.py``, ``app/inbound/set_aside.py``,
``app/accounts/service.py``, ``app/scheduling/service/meetings.py``). Rotation re-wraps what is
listed here; a backup records which key ids these columns use, so a restore can say which master
key it needs before it touches anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, select

from app.models import Base


@dataclass(frozen=True)
class Wrapped:
    table: str
    pk: str
    key_id: str
    blob: str
    aad: Callable[[Any], bytes]
    what: str

    @property
    def t(self) -> Table:
        return Base.metadata.tables[self.table]

    @property
    def label(self) -> str:
        return f"{self.table}.{self.blob}"


WRAPPED: tuple[Wrapped, ...] = (
    Wrapped(
        "requests",
        "id",
        "data_key_id",
        "data_key_enc",
        lambda pk: f"dk:{pk}".encode(),
        "request data keys",
    ),
    Wrapped(
        "secret_keys",
        "name",
        "key_id",
        "key_enc",
        lambda pk: str(pk).encode(),
        "service keys (e-mail look-up)",
    ),
    Wrapped(
        "users",
        "id",
        "totp_key_id",
        "totp_secret_enc",
        lambda _pk: b"totp",
        "second-factor secrets",
    ),
    Wrapped(
        "account_tokens",
        "id",
        "token_key_id",
        "token_enc",
        lambda _pk: b"account_token",
        "account link tokens",
    ),
    Wrapped(
        "inbound_set_aside",
        "id",
        "data_key_id",
        "data_key_enc",
        lambda pk: f"set_aside_dk:{pk}".encode(),
        "keys of mail set aside",
    ),
    Wrapped(
        "consultations",
        "id",
        "meeting_password_key_id",
        "meeting_password_enc",
        lambda pk: str(pk).encode(),
        "meeting passwords",
    ),
)


def key_ids_in_use(conn: Connection) -> dict[str, dict[str, int]]:
    """For each wrapped column, how many rows each master key id wraps."""
    used: dict[str, dict[str, int]] = {}
    for w in WRAPPED:
        kid = w.t.c[w.key_id]
        rows = conn.execute(
            select(kid, func.count()).where(kid.is_not(None)).group_by(kid).order_by(kid)
        ).all()
        used[w.label] = {str(k): int(n) for k, n in rows}
    return used


def all_key_ids(used: dict[str, dict[str, int]]) -> set[str]:
    return {kid for per_column in used.values() for kid in per_column}
