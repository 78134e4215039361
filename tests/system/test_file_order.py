"""Under -n the test files go to the workers heaviest first (tests/conftest.py): files with a
``slow`` or ``heavy`` test, then the others, each group with the most tests first, every file's
tests kept together and in their own order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from tests.conftest import pytest_collection_modifyitems


@dataclass
class Item:
    """What the ordering reads of a collected test: its id and its markers."""

    nodeid: str
    markers: set[str] = field(default_factory=set)

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None


def _order(items: list[Item]) -> list[str]:
    collected = cast(list[pytest.Item], items)
    pytest_collection_modifyitems(cast(Any, None), collected)
    return [item.nodeid for item in cast(list[Item], collected)]


def test_heavy_files_first_then_the_most_tests_first_each_file_in_its_own_order() -> None:
    items = [
        Item("tests/a.py::one"),
        Item("tests/a.py::two"),
        Item("tests/b.py::one"),
        Item("tests/b.py::two"),
        Item("tests/b.py::three"),
        Item("tests/c.py::quick"),
        Item("tests/c.py::processes", {"slow"}),
        Item("tests/d.py::fuzz", {"heavy"}),
        Item("tests/d.py::again", {"heavy"}),
    ]
    assert _order(items) == [
        "tests/c.py::quick",
        "tests/c.py::processes",
        "tests/d.py::fuzz",
        "tests/d.py::again",
        "tests/b.py::one",
        "tests/b.py::two",
        "tests/b.py::three",
        "tests/a.py::one",
        "tests/a.py::two",
    ]


def test_files_alike_keep_a_fixed_order_whatever_the_collection_order() -> None:
    first = _order([Item("tests/y.py::t"), Item("tests/x.py::t")])
    second = _order([Item("tests/x.py::t"), Item("tests/y.py::t")])
    assert first == second == ["tests/x.py::t", "tests/y.py::t"]
