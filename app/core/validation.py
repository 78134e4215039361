"""Input normalisers shared by schemas (messages are shown to people: keep them plain), and the
bounded types every route's path and query parameters go through.

Odd input must be a 4xx naming the parameter, never a 500 from the database or from date
arithmetic. So the bounds sit in the types, once:

- ``DbId``: 1..2**63-1, what a bigint id column can hold (PostgreSQL refuses more).
- ``SafeStr``: no NUL or other control character (PostgreSQL refuses NUL in text), bounded
  length (``Query(max_length=...)`` on top for a tighter one).
- ``SafeDate`` / ``SafeDateTime`` / ``SafeAwareDateTime``: years 1900..2199, so that a day or a
  consultation's length added or a zone applied never leaves Python's calendar (years 1..9999).

``app.core.input_guard.reject_control_characters`` is the guard before every endpoint
(installed by ``app.core.handlers.install``): any path or query value with a control character
is refused naming it, declared or read by hand. It lives apart, being FastAPI's: the worker, beat
and the commands use these types without importing the web framework.
``tests/core/test_input_bounds.py`` walks every route and fails when a parameter does not use
these types.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, TypeVar

import annotated_types
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, AwareDatetime, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from app.core.errors import FieldProblem, Unprocessable

DB_ID_MAX = 2**63 - 1
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2199, 12, 31)
TEXT_MAX_LENGTH = 1000

# C0 controls and DEL: never part of a code, reference, token or search term.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f]*$"
NO_CONTROL_MESSAGE = "must not contain control characters"
NUL_MESSAGE = "must not contain NUL characters"
CALENDAR_MESSAGE = f"must be a date between {DATE_MIN} and {DATE_MAX}"


def normalise_email(value: str) -> str:
    try:
        # No DNS look-up: it is slow, and fails on closed networks.
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None
    return result.normalized.lower()


def field_error(field: str, message: str) -> Unprocessable:
    """The 422 naming one field, as the validation handler shapes pydantic's."""
    return Unprocessable(
        f"Please correct: {field}: {message}", fields=[FieldProblem(field=field, message=message)]
    )


# Strings -------------------------------------------------------------------------------------


def _no_control(value: str) -> str:
    if CONTROL.search(value):
        raise ValueError(NO_CONTROL_MESSAGE)
    return value


@dataclass(frozen=True)
class _NoControlSchema:
    """Puts the rule in the OpenAPI document too, so clients (and the fuzzer) know it."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.setdefault("pattern", NO_CONTROL_PATTERN)
        return schema


# The marker the route walk looks for: a str parameter without it is unchecked.
SAFE_TEXT = AfterValidator(_no_control)


SafeStr = Annotated[str, annotated_types.MaxLen(TEXT_MAX_LENGTH), SAFE_TEXT, _NoControlSchema()]


# Ids -----------------------------------------------------------------------------------------

DbId = Annotated[int, annotated_types.Ge(1), annotated_types.Le(DB_ID_MAX)]


# Dates ---------------------------------------------------------------------------------------


_D = TypeVar("_D", dt.date, dt.datetime)


def in_calendar(value: dt.date | dt.datetime) -> bool:
    return DATE_MIN.year <= value.year <= DATE_MAX.year


def _within_calendar(value: _D) -> _D:
    if not in_calendar(value):
        raise ValueError(CALENDAR_MESSAGE)
    return value


# The marker the route walk looks for: a date parameter without it is unbounded.
SAFE_RANGE = AfterValidator(_within_calendar)

SafeDate = Annotated[dt.date, SAFE_RANGE]
SafeDateTime = Annotated[dt.datetime, SAFE_RANGE]
SafeAwareDateTime = Annotated[AwareDatetime, SAFE_RANGE]


def parse_date(raw: str | None, field: str) -> dt.date | None:
    """A date typed by hand (a page's query): None when empty or not a date, the 422 naming
    ``field`` when outside the calendar the service works in."""
    if not raw:
        return None
    try:
        value = dt.date.fromisoformat(raw)
    except ValueError:
        return None
    if not in_calendar(value):
        raise field_error(field, CALENDAR_MESSAGE)
    return value
