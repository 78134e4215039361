"""Statements that write a request's history row, for callers that compose them into their
own statement (routing's offer writes all its rows in one round trip on PostgreSQL).

The row is the one ``add_history`` writes: no status change, ``details`` non-personal facts
only, nothing encrypted. Imports only SQLAlchemy and the models, so any domain may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain
from typing import Any, cast

from sqlalchemy import FromClause, Insert, Table, func, insert, literal, select
from sqlalchemy.sql.elements import ColumnElement

from app.models import RequestHistory

_table = cast(Table, RequestHistory.__table__)


def insert_from(
    source: FromClause,
    *,
    request_id: ColumnElement[Any],
    at: ColumnElement[Any],
    actor: ColumnElement[Any],
    action: str,
    details: Mapping[str, ColumnElement[Any]],
) -> Insert:
    """The INSERT of one history row per row of ``source``, with ``details`` the JSON object
    of the given expressions (PostgreSQL's ``json_build_object``); meant as a CTE."""
    detail_pairs = chain.from_iterable((literal(key), value) for key, value in details.items())
    rows = select(
        request_id,
        at,
        actor,
        literal(action),
        func.json_build_object(*detail_pairs),
    ).select_from(source)
    return insert(_table).from_select(["request_id", "at", "actor", "action", "details"], rows)
