"""Start-up imports run without the cyclic collector, and it is back on afterwards."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.core.startup import quick_imports


@pytest.fixture
def collector() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()


def test_the_collector_is_off_inside_on_after_and_what_was_built_is_frozen(
    collector: None,
) -> None:
    gc.enable()
    gc.unfreeze()
    with quick_imports():
        assert not gc.isenabled()
        built = [[i] for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)


def test_a_collector_turned_off_before_stays_off(collector: None) -> None:
    gc.disable()
    with quick_imports():
        pass
    assert not gc.isenabled()


def test_the_collector_comes_back_when_an_import_fails(collector: None) -> None:
    gc.enable()
    with pytest.raises(ImportError), quick_imports():
        import app.no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert gc.isenabled()
