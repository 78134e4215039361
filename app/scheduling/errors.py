"""Typed errors of the scheduling domain."""

from __future__ import annotations

from typing import Any

from app.core.errors import Conflict, FieldProblem, Unprocessable


class SlotQueryInvalid(Unprocessable):
    """A slot query (``from``, ``to``, ``timezone``) that cannot be answered: 422.

    ``fields`` names every problem found, e.g. ``[{"field": "to", "message": "..."}]``.
    """

    code = "invalid_slot_query"

    def __init__(
        self, problems: list[FieldProblem], *, details: dict[str, Any] | None = None
    ) -> None:
        names = ", ".join(p.field for p in problems)
        super().__init__(f"Invalid slot query: {names}", fields=problems, details=details)


class SlotUnavailable(Conflict):
    """The slot asked for is not (or no longer) free: 409, with the reason in ``details``."""

    code = "slot_unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__("This time is no longer available", details={"reason": reason})
