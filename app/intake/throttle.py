"""Per-client limit on submissions: the public page and ``POST /api/v1/requests`` share it.

A fixed window per client address, so every API process sees the same count:

- in Redis when the broker is Redis (production): ``SET NX EX`` + ``INCR`` + ``PTTL`` in one
  round trip, and the key expires with its window - nothing about the address outlives it;
- else, or while Redis does not answer, in the database's ``login_throttles`` table (a key, a
  counter, a window start), one upsert in its own transaction.

Either way the key is ``submit:ip:`` and a keyed hash of the address (HMAC with a key derived
from the master key): a plain hash of an IPv4 address is reversed by trying all of them. The
count is taken before the form is read, so attempts that end in a validation error count too.
Over the limit: ``429`` with ``Retry-After`` (the end of the window).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import weakref
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import case, delete, literal
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from starlette.requests import Request  # at run time: FastAPI reads the dependencies' hints

from app.core import crypto, database
from app.core.errors import TooManyRequests
from app.core.settings import get_settings
from app.core.time import now
from app.models import LoginThrottle
from app.models.base import UTCDateTime

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import Pipeline

# Redis's client and FastAPI's thread helpers are imported where a submission is counted: the
# worker and the commands import this module only for the retention run's purge, and start
# faster without them.

KEY_PREFIX = "submit:ip:"
HASH_PURPOSE = "submission limit: client address"
#: Redis keys live in the broker's database: our own prefix keeps them apart from Celery's.
REDIS_PREFIX = "asylum-intake:"

log = structlog.get_logger(__name__)


def client_address(request: Request) -> str:
    """The client's address: the last X-Forwarded-For entry (the one our proxy added) when
    ``INTAKE_TRUST_PROXY_HEADERS`` is set, else the peer (uvicorn has already applied its own
    FORWARDED_ALLOW_IPS rule to it)."""
    if get_settings().trust_proxy_headers:
        forwarded = request.headers.get("x-forwarded-for", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return request.client.host if request.client else "unknown"


def key_for(address: str) -> str:
    return KEY_PREFIX + crypto.keyed_hash(HASH_PURPOSE, address)


async def hit(address: str) -> float:
    """Count one submission attempt; the seconds to wait when over the limit, else 0. On the
    event loop: the API counts there without a hop to a worker thread; only the database
    fallback takes one."""
    from redis import RedisError
    from starlette.concurrency import run_in_threadpool

    settings = get_settings()
    key = key_for(address)
    broker = settings.resolved_broker_url
    if _is_redis(broker):
        try:
            pipe = _redis(broker).pipeline(transaction=False)
            counted = _read_count(await _queue_count(pipe, key, _window_seconds()).execute())
        except RedisError as exc:
            log.warning("submit_limit_redis_unavailable", error=type(exc).__name__)
        else:
            return _over_limit(*counted)
    return await run_in_threadpool(_count_in_database, key)


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://"))


# Short timeouts: a Redis that does not answer costs a submission half a second at most, then
# the database counts.
_REDIS_OPTIONS: dict[str, Any] = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}


# An asyncio client belongs to the event loop it was made on: one per loop (one in a server
# process; tests start several).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Redis]] = (
    weakref.WeakKeyDictionary()
)


def _redis(url: str) -> Redis:
    from redis.asyncio import Redis

    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    if url not in clients:
        clients[url] = Redis.from_url(url, **_REDIS_OPTIONS)
    return clients[url]


def _window_seconds() -> int:
    return get_settings().submit_rate_window_minutes * 60


def _queue_count(pipe: Pipeline, key: str, window_seconds: int) -> Pipeline:
    """The one round trip: ``SET NX EX`` starts the window once, ``INCR`` is atomic, ``PTTL``
    says when the window ends. No transaction needed."""
    pipe.set(REDIS_PREFIX + key, 0, ex=window_seconds, nx=True)
    pipe.incr(REDIS_PREFIX + key)
    pipe.pttl(REDIS_PREFIX + key)
    return pipe


def _read_count(replies: list[Any]) -> tuple[int, float]:
    """(attempts in this window, seconds until it ends)."""
    _, count, ttl_ms = replies
    return int(count), max(1.0, int(ttl_ms) / 1000)


def _over_limit(count: int, wait: float) -> float:
    return wait if count > get_settings().submit_rate_limit else 0.0


def _count_in_database(key: str) -> float:
    """One ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` in its own transaction (PostgreSQL
    and SQLite alike): the row lock lasts one statement, so many submissions from one address
    (an office behind one NAT) do not queue behind a read-then-write transaction, and two
    first attempts at once cannot both create the row."""
    settings = get_settings()
    window = dt.timedelta(minutes=settings.submit_rate_window_minutes)
    current = now()
    table = LoginThrottle.__table__
    expired = table.c.window_started_at <= literal(current - window, UTCDateTime())
    with database.session_scope() as session:
        insert_fn = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = insert_fn(LoginThrottle).values(
            key=key, failures=1, window_started_at=current, last_failure_at=current
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "failures": case((expired, 1), else_=table.c.failures + 1),
                "window_started_at": case(
                    (expired, literal(current, UTCDateTime())), else_=table.c.window_started_at
                ),
                "last_failure_at": literal(current, UTCDateTime()),
            },
        )
        count, started = session.execute(
            stmt.returning(LoginThrottle.failures, LoginThrottle.window_started_at)
        ).one()
    if count > settings.submit_rate_limit:
        return max(1.0, (started + window - current).total_seconds())
    return 0.0


async def limit_submissions(request: Request) -> None:
    """FastAPI dependency of ``POST /api/v1/requests``: raise ``TooManyRequests`` (429 +
    Retry-After) over the limit."""
    _refuse_after(await hit(client_address(request)))


def check_submission_rate(request: Request) -> None:
    """``limit_submissions`` for the /apply page, which runs in a worker thread."""
    from anyio import from_thread

    _refuse_after(from_thread.run(hit, client_address(request)))


def _refuse_after(wait: float) -> None:
    if wait > 0:
        raise TooManyRequests(
            "Too many requests from this address. Please try again later.",
            retry_after_seconds=math.ceil(wait),
        )


def purge_ended_windows(session: Session, current: dt.datetime) -> int:
    """Delete the database's counts whose window has ended (the daily retention run calls
    this): a count is needed for its window, not longer. Returns how many were deleted."""
    window = dt.timedelta(minutes=get_settings().submit_rate_window_minutes)
    result = session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.key.startswith(KEY_PREFIX, autoescape=True),
            LoginThrottle.window_started_at <= current - window,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
