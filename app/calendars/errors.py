"""Typed errors of the calendars domain."""

from __future__ import annotations

from app.core.errors import FieldProblem, NotFound, Unprocessable


class CalendarNotFound(NotFound):
    """No such calendar of this expert (or not the caller's own): 404."""

    code = "calendar_not_found"


class FeedNotFound(NotFound):
    """No feed with this address (revoked, rotated, never made): 404."""

    code = "feed_not_found"


class CalendarInvalid(Unprocessable):
    """A calendar that cannot be connected as given: 422 naming each field."""

    code = "invalid_calendar"

    def __init__(self, problems: list[FieldProblem]) -> None:
        names = ", ".join(p.field for p in problems)
        super().__init__(f"Check these fields: {names}", fields=problems)
