"""Heartbeats of the worker and beat processes (app/ops/heartbeat.py): a thread in the main
process of each, started when Celery says it is ready, writing its row every few seconds."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import signals

from app.ops.heartbeat import HeartbeatThread

_threads: list[HeartbeatThread] = []


def _start(name: str, kind: str) -> None:
    thread = HeartbeatThread(name=name, kind=kind)
    _threads.append(thread)
    thread.start()


@signals.worker_ready.connect
def _worker_ready(sender: Any = None, **_: Any) -> None:
    _start(str(getattr(sender, "hostname", None) or f"worker@{socket.gethostname()}"), "worker")


@signals.beat_init.connect
def _beat_init(**_: Any) -> None:
    _start(f"beat@{socket.gethostname()}:{os.getpid()}", "beat")


@signals.worker_shutdown.connect
def _stop(**_: Any) -> None:
    for thread in _threads:
        thread.stop()
