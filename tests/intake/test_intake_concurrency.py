"""Two submissions with the same Idempotency-Key at the same moment, in real, committed
PostgreSQL transactions: one request, the first reply twice."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.core.settings import get_settings
from app.intake import service
from app.intake.schemas import SubmitIn
from app.models import Base, IntakeRequest, OutboxMessage, RequestHistory, SecretKey
from tests.factories import backend_pid, form, wait_until_blocked


def _cleanup(factory: sessionmaker[Session], outbox_before: int, had_lookup_key: bool) -> None:
    """Leave the shared test database as it was: remove this test's committed rows, and rows
    of any table that points at them (routing adds its own)."""
    with factory() as s:
        ids = s.scalars(select(IntakeRequest.id)).all()
        for table in reversed(Base.metadata.sorted_tables):
            for column in table.columns:
                if any(fk.column.table.name == "requests" for fk in column.foreign_keys):
                    s.execute(delete(table).where(column.in_(ids)))
        s.execute(delete(OutboxMessage).where(OutboxMessage.id > outbox_before))
        s.execute(
            update(IntakeRequest).where(IntakeRequest.id.in_(ids)).values(linked_request_id=None)
        )
        s.execute(delete(IntakeRequest).where(IntakeRequest.id.in_(ids)))
        if not had_lookup_key:
            s.execute(delete(SecretKey))
        s.commit()


def test_concurrent_twins_with_one_key_make_one_request(pg_engine: Engine) -> None:
    factory = sessionmaker(bind=pg_engine, expire_on_commit=False)
    key = f"race-{uuid.uuid4()}"
    data = SubmitIn.model_validate(form(email="race@example.org"))
    with factory() as before:
        outbox_before = before.scalar(select(func.max(OutboxMessage.id))) or 0
        had_lookup_key = before.get(SecretKey, "email_lookup") is not None
    first_session, second_session = factory(), factory()
    second: dict[str, Any] = {}
    try:
        first = service.submit(first_session, data, idempotency_key=key)  # not committed yet

        def twin() -> None:
            second["reply"] = service.submit(second_session, data, idempotency_key=key)
            second_session.commit()

        thread = threading.Thread(target=twin)
        waiter, holder = backend_pid(second_session), backend_pid(first_session)
        thread.start()
        # The twin waits on the first one's row locks (seen in pg_locks, not guessed).
        assert wait_until_blocked(pg_engine, waiter, holder, finished=lambda: not thread.is_alive())
        first_session.commit()
        thread.join(timeout=20)
        assert not thread.is_alive()
        assert second["reply"] == first
        with factory() as check:
            rows = check.scalars(
                select(IntakeRequest).where(IntakeRequest.reference == first["reference"])
            ).all()
            assert len(rows) == 1
            total = check.scalars(
                select(IntakeRequest.id).where(IntakeRequest.email_lookup == rows[0].email_lookup)
            ).all()
            assert len(total) == 1
    finally:
        first_session.rollback()
        second_session.rollback()
        first_session.close()
        second_session.close()
        _cleanup(factory, outbox_before, had_lookup_key)


def test_simultaneous_submissions_from_one_address_keep_the_acknowledgement_cap(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two forms from one address at the same moment: the second waits for the first (a
    per-address transaction lock), so it sees the first's acknowledgement against the daily cap
    and links to the first request, instead of both reading "none today"."""
    monkeypatch.setenv("INTAKE_ACK_CAP_PER_ADDRESS_PER_DAY", "1")
    get_settings.cache_clear()
    factory = sessionmaker(bind=pg_engine, expire_on_commit=False)
    email = f"cap-race-{uuid.uuid4().hex[:8]}@example.org"
    with factory() as before:
        outbox_before = before.scalar(select(func.max(OutboxMessage.id))) or 0
        had_lookup_key = before.get(SecretKey, "email_lookup") is not None
    first_session, second_session = factory(), factory()
    second: dict[str, Any] = {}
    try:
        first = service.submit(first_session, SubmitIn.model_validate(form(email=email)))

        def other() -> None:
            body = form(email=email, case_summary="A different form from the same address.")
            second["reply"] = service.submit(second_session, SubmitIn.model_validate(body))
            second_session.commit()

        thread = threading.Thread(target=other)
        waiter, holder = backend_pid(second_session), backend_pid(first_session)
        thread.start()
        assert wait_until_blocked(
            pg_engine, waiter, holder, finished=lambda: not thread.is_alive()
        ), "the second submission did not wait for the first"
        first_session.commit()
        thread.join(timeout=20)
        assert not thread.is_alive()
        with factory() as check:
            actions = check.scalars(
                select(RequestHistory.action)
                .join(IntakeRequest, IntakeRequest.id == RequestHistory.request_id)
                .where(
                    IntakeRequest.reference.in_([first["reference"], second["reply"]["reference"]])
                )
            ).all()
            assert sorted(a for a in actions if a.startswith("ack_")) == [
                "ack_capped",
                "ack_queued",
            ]
            later = check.scalars(
                select(IntakeRequest).where(IntakeRequest.reference == second["reply"]["reference"])
            ).one()
            assert later.linked_request_id is not None
    finally:
        first_session.rollback()
        second_session.rollback()
        first_session.close()
        second_session.close()
        _cleanup(factory, outbox_before, had_lookup_key)
        monkeypatch.delenv("INTAKE_ACK_CAP_PER_ADDRESS_PER_DAY")
        get_settings.cache_clear()


def test_a_lookup_key_created_in_a_rolled_back_transaction_is_not_kept(pg_engine: Engine) -> None:
    """The look-up key is cached per database only after a commit: a transaction that created
    it and rolled back leaves no trace, and the next one stores and uses the key it reads."""
    from app.core.database import commit
    from app.intake import keys

    factory = sessionmaker(bind=pg_engine, expire_on_commit=False)
    with factory() as s:
        had_key = s.get(SecretKey, "email_lookup") is not None
    if had_key:
        pytest.skip("the shared database already has a committed key")
    keys.forget_cached_keys()
    try:
        with factory() as s:
            rolled_back = keys.email_lookup(s, "cache@example.org")
            s.rollback()
        with factory() as s:
            kept = keys.email_lookup(s, "cache@example.org")
            commit(s)  # the app's commit: runs the after-commit work
        assert kept != rolled_back  # a new random key: the rolled-back one was not cached
        with factory() as s:
            s.execute(delete(SecretKey))  # served from the cache from now on...
            assert keys.email_lookup(s, "cache@example.org") == kept
            s.rollback()
    finally:
        keys.forget_cached_keys()
        with factory() as s:
            s.execute(delete(SecretKey))
            s.commit()
