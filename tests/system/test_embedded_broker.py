"""The embedded broker's transport (workers/embedded_broker.py): it delivers as kombu's does,
and stops waiting for a message as soon as the worker is asked to stop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.worker import state
from kombu import Connection, Queue
from kombu.transport import TRANSPORT_ALIASES

from workers import embedded_broker


@pytest.fixture
def received(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[Any]]]:
    """A connection to a new embedded broker, consuming queue ``tasks`` into the list."""
    monkeypatch.setitem(TRANSPORT_ALIASES, "sqla", TRANSPORT_ALIASES["sqla"])  # put back after
    embedded_broker.install()
    bodies: list[Any] = []

    def on_message(body: Any, message: Any) -> None:
        bodies.append(body)
        message.ack()

    with Connection(f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}") as conn:
        assert isinstance(conn.transport, embedded_broker.Transport)
        with conn.Consumer(Queue("tasks"), callbacks=[on_message]):
            yield conn, bodies


def test_a_message_sent_is_delivered(received: tuple[Any, list[Any]]) -> None:
    conn, bodies = received
    with conn.Producer() as producer:
        producer.publish({"task": "outbox.pump"}, routing_key="tasks", declare=[Queue("tasks")])
    conn.drain_events(timeout=10)
    assert bodies == [{"task": "outbox.pump"}]


def test_with_nothing_to_deliver_it_waits_its_whole_timeout(
    received: tuple[Any, list[Any]],
) -> None:
    conn, bodies = received
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        conn.drain_events(timeout=0.3)
    assert time.monotonic() - started >= 0.3
    assert bodies == []


@pytest.mark.parametrize("asked", ["should_stop", "should_terminate"])
def test_once_the_worker_is_asked_to_stop_it_stops_waiting(
    received: tuple[Any, list[Any]], monkeypatch: pytest.MonkeyPatch, asked: str
) -> None:
    # Celery's signal handlers set these (a warm and a cold shutdown); its loop would wait up
    # to its own timeout before looking at them.
    conn, _ = received
    monkeypatch.setattr(state, asked, 0)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        conn.drain_events(timeout=30)
    assert time.monotonic() - started < 5
