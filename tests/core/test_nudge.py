"""Nudges of the worker after a commit: best-effort, and collapsed under load."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from app.core import tasks


def _recorder(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    # A nudge an earlier test left in flight would send into this test's recorder.
    _settle()
    sent: list[str] = []
    lock = threading.Lock()

    def record(name: str, kwargs: dict[str, Any] | None = None) -> None:
        with lock:
            sent.append(name)

    monkeypatch.setattr(tasks, "send_task_now", record)
    return sent


def _settle(name: str = "outbox.pump") -> None:
    """Until the sender of ``name`` has finished its last interval and let go of it."""
    deadline = time.monotonic() + 10
    while True:
        with tasks._pending_lock:
            if name not in tasks._pending:
                return
        assert time.monotonic() < deadline, f"the nudge of {name} never settled"
        time.sleep(0.005)  # the polling interval of a bounded wait


def test_a_burst_of_nudges_is_sent_once_then_once_more_at_the_end_of_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = _recorder(monkeypatch)
    for _ in range(50):
        tasks.nudge("outbox.pump")
    _settle()
    # The first at once; the 49 that came while it was fresh become one more: a row committed
    # after the first send is never left waiting for beat.
    assert sent == ["outbox.pump", "outbox.pump"]
    tasks.nudge("outbox.pump")  # quiet since: sent at once again
    _settle()
    assert len(sent) == 3


def test_a_single_nudge_is_sent_once_and_a_failing_broker_is_only_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _settle()  # nothing left in flight from an earlier test
    calls: list[str] = []

    def broken(name: str, kwargs: dict[str, Any] | None = None) -> None:
        calls.append(name)
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks, "send_task_now", broken)
    tasks.nudge("outbox.pump")
    _settle()
    assert calls == ["outbox.pump"]
    tasks.nudge("outbox.pump")  # the failure left nothing stuck
    _settle()
    assert calls == ["outbox.pump", "outbox.pump"]
