"""The embedded broker (a SQLite file, ``sqla+sqlite://``): kombu's SQLAlchemy transport, told
to stop waiting for messages as soon as the worker is asked to stop.

kombu's polling transports wait for a message in a loop of one-second sleeps that Celery's
worker only leaves every two seconds to look whether it should stop: a warm shutdown (Ctrl-C on
``asylum-intake run``, a restart) waited up to four seconds before the worker even began to
finish its tasks. Here the wait sleeps in short steps and ends once a shutdown is asked for;
Celery's own loop then shuts down as before (tasks that are running finish first). A message
is still looked for once a second, as before: no more work for the database while idle.
"""

from __future__ import annotations

from queue import Empty
from time import monotonic, sleep
from typing import Any

from celery.worker import state
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport

#: Seconds between two looks at whether the worker is asked to stop.
STOP_CHECK_SECONDS = 0.05


def stop_asked() -> bool:
    """A warm (Ctrl-C, SIGTERM) or cold shutdown of this worker was asked for."""
    return state.should_stop is not None or state.should_terminate is not None


class Transport(SQLAlchemyTransport):
    # The signature of kombu's virtual Transport (which already narrows its base's **kwargs).
    def drain_events(self, connection: Any, timeout: Any = None) -> Any:  # type: ignore[override]
        # kombu's virtual Transport.drain_events, with its sleep split into short steps.
        started = monotonic()
        assert self.cycle is not None  # made with the transport
        get = self.cycle.get
        while True:
            try:
                get(self._deliver, timeout=timeout)  # type: ignore[no-untyped-call]
            except Empty:
                pass
            else:
                return
            next_poll = monotonic() + float(self.polling_interval or 0)
            while True:
                if stop_asked() or (timeout is not None and monotonic() - started >= timeout):
                    raise TimeoutError()  # socket.timeout, what Celery expects
                left = next_poll - monotonic()
                if left <= 0:
                    break
                sleep(min(STOP_CHECK_SECONDS, left))


def install() -> None:
    """Make ``sqla+`` broker URLs use this transport in this process."""
    TRANSPORT_ALIASES["sqla"] = f"{__name__}:Transport"
