"""Master-key rotation: re-wrap every wrapped key under the current master key, in batches.

How it runs without downtime: every process is first restarted with the new key as
``INTAKE_MASTER_KEY`` and the old one in ``INTAKE_OLD_MASTER_KEYS`` (they unwrap with either and
wrap new values with the new one); then ``asylum-intake rotate-key`` walks each wrapped column
(``app/ops/wrapped.py``) in primary-key order, a batch per transaction, so no row or table is
locked for longer than one batch. Each row is updated only if it is still under the key it was
read with: an erasure (which destroys the data key) or another rotation between the read and
the write is never undone.

Progress lives in the rows themselves: a row under the current key is done. An interrupted
rotation (Ctrl-C, a crash, a lost connection) keeps every committed batch and the next run
carries on with the rest. Before the first batch every old key id in use is checked: present
in ``INTAKE_OLD_MASTER_KEYS`` and able to unwrap a row, or nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from sqlalchemy import ColumnElement, Connection, Engine, and_, bindparam, func, select, update

from app.core import crypto
from app.ops.wrapped import WRAPPED, Wrapped

DEFAULT_BATCH = 1000


class RotationError(Exception):
    """Rotation cannot start (a missing or wrong old key) or a row cannot be unwrapped."""


@dataclass(frozen=True)
class Progress:
    what: str
    done: int
    total: int


@dataclass
class RotationReport:
    key_id: str
    rewrapped: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    @property
    def total(self) -> int:
        return sum(self.rewrapped.values())


def _pending(w: Wrapped, current: str) -> ColumnElement[bool]:
    kid = w.t.c[w.key_id]
    return and_(kid.is_not(None), kid != current)


def plan(conn: Connection, current: str) -> dict[str, int]:
    """How many rows of each wrapped column are not under ``current`` yet."""
    counts: dict[str, int] = {}
    for w in WRAPPED:
        query = select(func.count()).select_from(w.t).where(_pending(w, current))
        counts[w.label] = int(conn.execute(query).scalar_one())
    return counts


def _keys() -> tuple[crypto.MasterKey, dict[str, bytes]]:
    current = crypto.master_key()
    return current, {**crypto.old_master_keys(), current.key_id: current.key}


def check_keys(conn: Connection) -> None:
    """Every old key id in use is configured and opens a row it wraps; else RotationError."""
    current, keys = _keys()
    for w in WRAPPED:
        t = w.t
        kid_col, pk_col, blob_col = t.c[w.key_id], t.c[w.pk], t.c[w.blob]
        old_ids = conn.scalars(
            select(kid_col).where(_pending(w, current.key_id)).group_by(kid_col)
        ).all()
        for kid in old_ids:
            if kid not in keys:
                raise RotationError(
                    f"{w.what} ({w.table}) are wrapped by master key '{kid}', which is not "
                    "configured: add it to INTAKE_OLD_MASTER_KEYS. Nothing was changed."
                )
            pk, blob = conn.execute(select(pk_col, blob_col).where(kid_col == kid).limit(1)).one()
            try:
                crypto.decrypt(keys[kid], blob, w.aad(pk))
            except InvalidTag:
                raise RotationError(
                    f"INTAKE_OLD_MASTER_KEYS has key id '{kid}' but not its value: it does not "
                    f"open {w.what} ({w.table} {pk}). Nothing was changed."
                ) from None


def rotate(
    engine: Engine,
    *,
    batch: int = DEFAULT_BATCH,
    on_batch: Callable[[Progress], None] | None = None,
) -> RotationReport:
    current, keys = _keys()
    with engine.connect() as conn:
        check_keys(conn)
        todo = plan(conn, current.key_id)
        conn.rollback()
    report = RotationReport(key_id=current.key_id)
    for w in WRAPPED:
        report.rewrapped[w.label] = 0
        if todo[w.label]:
            _rotate_column(engine, w, current, keys, batch, todo[w.label], report, on_batch)
    return report


def _rotate_column(
    engine: Engine,
    w: Wrapped,
    current: crypto.MasterKey,
    keys: dict[str, bytes],
    batch: int,
    total: int,
    report: RotationReport,
    on_batch: Callable[[Progress], None] | None,
) -> None:
    t = w.t
    pk_col, kid_col, blob_col = t.c[w.pk], t.c[w.key_id], t.c[w.blob]
    # Only if still under the key it was read with (an erasure in between wins).
    write = (
        update(t)
        .where(pk_col == bindparam("b_pk"), kid_col == bindparam("b_old"))
        .values({w.key_id: bindparam("b_kid"), w.blob: bindparam("b_blob")})
    )
    last: object = None
    done = 0
    while True:
        query = select(pk_col, kid_col, blob_col).where(_pending(w, current.key_id))
        if last is not None:
            query = query.where(pk_col > last)
        with engine.begin() as conn:
            rows = conn.execute(query.order_by(pk_col).limit(batch)).all()
            if not rows:
                break
            params = []
            for pk, kid, blob in rows:
                if kid not in keys:
                    raise RotationError(f"{w.table} {pk}: master key '{kid}' is not configured")
                aad = w.aad(pk)
                try:
                    plain = crypto.decrypt(keys[kid], blob, aad)
                except InvalidTag:
                    raise RotationError(
                        f"{w.table} {pk}: its key does not open with master key '{kid}'"
                    ) from None
                params.append(
                    {
                        "b_pk": pk,
                        "b_old": kid,
                        "b_kid": current.key_id,
                        "b_blob": crypto.encrypt(current.key, plain, aad),
                    }
                )
            conn.execute(write, params)
        last = rows[-1][0]
        done += len(rows)
        report.rewrapped[w.label] += len(rows)
        report.batches += 1
        if on_batch is not None:
            on_batch(Progress(w.what, done, max(total, done)))
