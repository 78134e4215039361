"""Master-key rotation on 10,000 requests: batches of its own transaction each, requests open
during it (old and new keys side by side), an interruption keeps what was done and the next run
finishes; then everything opens with the new key alone. A missing or wrong old key changes
nothing."""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app.core import crypto
from app.core.settings import get_settings
from app.core.time import now
from app.intake import keys
from app.models import Consultation, IntakeRequest, SecretKey, User
from app.ops import rotation
from tests.factories import (
    booked_consultation,
    create_expert,
    create_user,
    make_request,
    real_database,
)
from tests.processes import run_cli

COUNT = 10_000


def _key(key_id: str) -> str:
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"


class Keys:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def use(self, master: str, old: str | None = None) -> None:
        self.monkeypatch.setenv("INTAKE_MASTER_KEY", master)
        if old is None:
            self.monkeypatch.delenv("INTAKE_OLD_MASTER_KEYS", raising=False)
        else:
            self.monkeypatch.setenv("INTAKE_OLD_MASTER_KEYS", old)
        get_settings.cache_clear()
        crypto.master_key.cache_clear()
        keys.forget_cached_keys()


@pytest.fixture
def master_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[Keys]:
    yield Keys(monkeypatch)
    monkeypatch.undo()
    get_settings.cache_clear()
    crypto.master_key.cache_clear()
    keys.forget_cached_keys()


def _insert_requests(session: Session, count: int) -> None:
    """``count`` requests with personal data sealed under their own data keys (one statement)."""
    template = make_request(session, flush=False)
    session.expunge(template)
    columns = {
        c.name: getattr(template, c.key)
        for c in IntakeRequest.__table__.columns
        if getattr(template, c.key, None) is not None
    }
    rows: list[dict[str, Any]] = []
    current = now()
    for i in range(count):
        rid = uuid.uuid4()
        dk, kid, wrapped = keys.new_data_key(rid)
        rows.append(
            {
                **columns,
                "id": rid,
                "reference": f"R{i:07d}",
                "created_at": current,
                "updated_at": current,
                "data_key_id": kid,
                "data_key_enc": wrapped,
                "pii_enc": keys.seal_json(dk, "pii", rid, {"full_name": f"Person {i}"}),
            }
        )
    session.execute(insert(IntakeRequest), rows)


def _opens(session: Session, req: IntakeRequest) -> bool:
    dk = keys.data_key(req)
    return dk is not None and keys.unseal_json(dk, "pii", req.id, req.pii_enc or b"")["full_name"]


def _under(session: Session, key_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(IntakeRequest)
            .where(IntakeRequest.data_key_id == key_id)
        )
        or 0
    )


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_rotation_of_10000_requests_is_batched_readable_throughout_and_resumable(
    tmp_path: Path, master_keys: Keys
) -> None:
    old, new = _key("kold"), _key("knew")
    master_keys.use(old)
    with real_database("postgresql", tmp_path) as db:
        session = db.session()
        _insert_requests(session, COUNT)
        keys.email_lookup(session, "someone@example.org")  # the look-up key, wrapped
        admin = create_user(session)
        admin.totp_key_id, admin.totp_secret_enc = crypto.encrypt_with_master(b"JBSWY3DP", b"totp")
        expert = create_expert(session, countries=["KG"])
        meeting = booked_consultation(session, make_request(session), expert)
        meeting.meeting_password_key_id, meeting.meeting_password_enc = crypto.encrypt_with_master(
            b"123456", str(meeting.id).encode()
        )
        session.commit()
        assert _under(session, "kold") == COUNT
        session.close()

        master_keys.use(new, old=old)
        seen: list[rotation.Progress] = []

        def interrupt_after_three(progress: rotation.Progress) -> None:
            seen.append(progress)
            # Served meanwhile: a request already re-wrapped and one not yet both open.
            with db.session() as reading:
                done = reading.scalars(
                    select(IntakeRequest).where(IntakeRequest.data_key_id == "knew").limit(1)
                ).one()
                waiting = reading.scalars(
                    select(IntakeRequest).where(IntakeRequest.data_key_id == "kold").limit(1)
                ).one()
                assert _opens(reading, done) and _opens(reading, waiting)
            if len(seen) == 3:
                raise Interrupted

        with pytest.raises(Interrupted):
            rotation.rotate(db.engine, batch=1000, on_batch=interrupt_after_three)
        with db.session() as reading:
            assert _under(reading, "knew") == 3000, "three committed batches are kept"
            assert _under(reading, "kold") == COUNT - 3000
        assert [(p.done, p.total) for p in seen] == [
            (1000, COUNT),
            (2000, COUNT),
            (3000, COUNT),
        ]

        started = time.monotonic()
        report = rotation.rotate(db.engine, batch=1000)
        seconds = time.monotonic() - started
        assert report.rewrapped["requests.data_key_enc"] == COUNT - 3000
        assert report.rewrapped["secret_keys.key_enc"] == 1
        assert report.rewrapped["users.totp_secret_enc"] == 1
        assert report.rewrapped["consultations.meeting_password_enc"] == 1
        print(f"rotation: {COUNT - 3000} request keys re-wrapped in {seconds:.1f} s")
        assert rotation.rotate(db.engine).total == 0, "a finished rotation has nothing left"

        master_keys.use(new)  # the old key is gone: everything opens with the new one alone
        with db.session() as reading:
            requests = reading.scalars(
                select(IntakeRequest).where(IntakeRequest.pii_enc.is_not(None))
            ).all()
            assert len(requests) == COUNT
            assert all(_opens(reading, r) for r in requests)
            assert {r.data_key_id for r in requests} == {"knew"}
            lookup = reading.get(SecretKey, keys.LOOKUP_KEY_NAME)
            assert lookup is not None and lookup.key_id == "knew"
            keys.email_lookup(reading, "someone@example.org")
            user = reading.get(User, admin.id)
            assert user is not None and user.totp_key_id is not None
            assert (
                crypto.decrypt_with_master(user.totp_key_id, user.totp_secret_enc or b"", b"totp")
                == b"JBSWY3DP"
            )
            c = reading.get(Consultation, meeting.id)
            assert c is not None and c.meeting_password_key_id == "knew"
            assert (
                crypto.decrypt_with_master(
                    "knew", c.meeting_password_enc or b"", str(c.id).encode()
                )
                == b"123456"
            )


@pytest.mark.sqlite
def test_a_missing_or_wrong_old_key_changes_nothing(tmp_path: Path, master_keys: Keys) -> None:
    old = _key("kold")
    master_keys.use(old)
    with real_database("sqlite", tmp_path) as db:
        session = db.session()
        _insert_requests(session, 5)
        session.commit()
        session.close()
        master_keys.use(_key("knew"))
        with pytest.raises(rotation.RotationError, match="'kold', which is not configured"):
            rotation.rotate(db.engine)
        master_keys.use(_key("knew"), old=_key("kold"))
        with pytest.raises(rotation.RotationError, match="has key id 'kold' but not its value"):
            rotation.rotate(db.engine)
        with db.session() as reading:
            assert _under(reading, "kold") == 5

        # The same from the command line: it stops naming the setting it needs, then with the
        # old key configured re-wraps all five, and a second run has nothing left to do.
        new = _key("kcli")
        env = {"INTAKE_DATABASE_URL": db.url, "INTAKE_MASTER_KEY": new}
        stopped = run_cli(["rotate-key"], cwd=tmp_path, env=env)
        assert stopped.returncode == 2, stopped.stdout + stopped.stderr
        assert "add it to INTAKE_OLD_MASTER_KEYS. Nothing was changed." in stopped.stderr
        done = run_cli(["rotate-key"], cwd=tmp_path, env={**env, "INTAKE_OLD_MASTER_KEYS": old})
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Everything is now wrapped by master key 'kcli'" in done.stdout
        assert "requests.data_key_enc=5" in done.stdout
        again = run_cli(["rotate-key"], cwd=tmp_path, env=env)
        assert again.returncode == 0 and "re-wrapped 0 in" in again.stdout, again.stdout
        with db.session() as reading:
            assert _under(reading, "kcli") == 5


@pytest.mark.slow
def test_an_erasure_between_the_read_and_the_write_is_not_undone(
    tmp_path: Path, master_keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each row is written only if still under the key it was read with: a request erased
    (its data key destroyed) while its batch is being re-wrapped stays erased."""
    old = _key("kold")
    master_keys.use(old)
    with real_database("postgresql", tmp_path) as db:
        session = db.session()
        _insert_requests(session, 3)
        session.commit()
        victim = session.scalars(select(IntakeRequest).order_by(IntakeRequest.id)).first()
        assert victim is not None
        session.close()
        master_keys.use(_key("knew"), old=old)
        real_encrypt = crypto.encrypt

        def erase_first(key: bytes, plain: bytes, aad: bytes = b"") -> bytes:
            if aad == f"dk:{victim.id}".encode():
                with db.engine.begin() as other:  # another transaction, committed meanwhile
                    other.execute(
                        update(IntakeRequest)
                        .where(IntakeRequest.id == victim.id)
                        .values(data_key_id=None, data_key_enc=None)
                    )
            return real_encrypt(key, plain, aad)

        monkeypatch.setattr(crypto, "encrypt", erase_first)
        rotation.rotate(db.engine)
        with db.session() as reading:
            erased = reading.get(IntakeRequest, victim.id)
            assert erased is not None and erased.data_key_enc is None and erased.data_key_id is None
            assert _under(reading, "knew") == 2
