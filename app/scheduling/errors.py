"""Typed errors of the scheduling domain."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.core.errors import Conflict, FieldProblem, NotFound, Unprocessable


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


class SlotTaken(SlotUnavailable):
    """The slot is not free (taken meanwhile, never offered, too soon...): 409 with the reason
    and ``details.alternatives``, the next free slots in the requester's zone."""

    def __init__(self, reason: str, alternatives: list[dict[str, Any]], message: str) -> None:
        Conflict.__init__(self, message, details={"reason": reason, "alternatives": alternatives})


class BookingNotAllowed(Conflict):
    """The request's status does not allow booking (only ``new`` and ``in_progress`` do)."""

    code = "booking_not_allowed"


class ConsultationNotFound(NotFound):
    """No booked consultation of this request (or not one of the caller's): 404."""

    code = "consultation_not_found"


class ExpertNotFound(NotFound):
    """No expert profile with this id, or not the caller's own: 404."""

    code = "expert_not_found"


class HoldNotFound(NotFound):
    """No time is held for this request (never chosen, confirmed already, or replaced): 404."""

    code = "hold_not_found"


class HoldExpired(Conflict):
    """The held time was not confirmed in time: 409. It is released (offered to everyone
    again while free): ``details.still_free`` says whether it still is, and
    ``details.alternatives`` lists the next free slots."""

    code = "hold_expired"

    def __init__(
        self,
        start: dt.datetime,
        minutes: int,
        alternatives: list[dict[str, Any]],
        *,
        still_free: bool,
    ) -> None:
        super().__init__(
            f"The time was held for you for {minutes} minutes and was not confirmed, so it "
            "was released. Choose it again if it is still free, or another time.",
            details={
                "reason": "hold_expired",
                "start_utc": start.isoformat(),
                "hold_minutes": minutes,
                "still_free": still_free,
                "alternatives": alternatives,
            },
        )
