"""Declarative base shared by every table.

- A naming convention so constraint names are the same on PostgreSQL and SQLite and
  migrations can refer to them.
- ``UTCDateTime``: stored as UTC, always returned timezone-aware (SQLite drops the zone).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import BigInteger, DateTime, Enum, Integer, MetaData, TypeDecorator, Uuid, func
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.core.time import UTC, now

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database: use app.core.time.now()")
        value = value.astimezone(UTC)
        # SQLite stores text; keep it naive-UTC so string comparison orders correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def str_enum(cls: type[enum.Enum], name: str, *, length: int = 32) -> Enum:
    """A Python enum stored as its string values (VARCHAR + a named CHECK constraint) on both
    databases: no native PostgreSQL type to ALTER when a value is added."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


# 64-bit ids on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), uuid.UUID: Uuid()}


class UUIDPk:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(default=now, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=now, onupdate=now, server_default=func.now()
    )
