"""Start-up of a process: import the app without the cyclic garbage collector.

Importing the app creates a few hundred thousand objects (modules, classes, Pydantic and
SQLAlchemy models) that all live as long as the process. The collector cannot free any of them
but keeps scanning them as they pile up: about a third of an ``asylum-intake api`` start's CPU.
So the imports run with it off, and what they built is then frozen (moved out of the
collector's sight for good, which also keeps it shared between a worker's forked pool
processes) before it is turned back on for the process's real work.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quick_imports() -> Iterator[None]:
    """Run the block (imports, set-up) with the collector off; freeze what it built."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
