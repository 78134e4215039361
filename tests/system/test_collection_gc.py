"""The suite's collection runs without the cyclic collector (tests/conftest.py); the tests
themselves run with it on again, over a frozen heap of what collection built."""

from __future__ import annotations

import gc

from tests.conftest import FROZEN_BY_COLLECTION


def test_the_tests_run_with_the_collector_on_and_what_collection_built_frozen() -> None:
    assert gc.isenabled()
    # Every test module and the whole app were imported during collection: far more than this.
    assert FROZEN_BY_COLLECTION and FROZEN_BY_COLLECTION[0] > 100_000
