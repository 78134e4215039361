"""``/metrics`` in the Prometheus text format.

Two sources: per-process HTTP counters kept by the request middleware (each API process is one
scrape target), and figures read from the database at scrape time (outbox backlog, requests by
status, SLA breaches), which are the same whichever process answers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from app.intake.metrics import request_figures
from app.ops import figures
from app.outbox import service as outbox


class HttpMetrics:
    """Request counts and durations of this process, labelled by route template."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "intake_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "intake_http_request_duration_seconds",
            "Time to answer, by route template",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(route).observe(seconds)


class DatabaseFigures(Collector):
    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = outbox.stats(self.session)
        g = GaugeMetricFamily("intake_outbox_messages", "Outbox rows by state", labels=["state"])
        for state in ("due", "in_flight", "dead"):
            g.add_metric([state], stats[state])
        yield g
        yield GaugeMetricFamily(
            "intake_outbox_oldest_due_age_seconds",
            "Age of the oldest message that is due and not yet sent",
            value=stats["oldest_due_age_seconds"],
        )
        yield from _request_figures(self.session)
        yield from _operations(self.session)


def _operations(session: Session) -> Iterator[GaugeMetricFamily]:
    """Heartbeats, the oldest unanswered request, failing outbox rows by kind."""
    live = GaugeMetricFamily(
        "intake_live_processes",
        "Worker and beat processes whose heartbeat is recent (INTAKE_HEARTBEAT_STALE_SECONDS)",
        labels=["kind"],
    )
    age = GaugeMetricFamily(
        "intake_heartbeat_age_seconds",
        "Seconds since the newest heartbeat of a worker or beat (+Inf: never seen)",
        labels=["kind"],
    )
    for kind, process in figures.processes(session).items():
        live.add_metric([kind], process.live)
        age.add_metric([kind], math.inf if process.age_seconds is None else process.age_seconds)
    yield live
    yield age
    yield GaugeMetricFamily(
        "intake_oldest_unanswered_request_age_seconds",
        "Age of the oldest open request still waiting for its first response (0: none)",
        value=figures.oldest_unanswered_age_seconds(session),
    )
    failing = GaugeMetricFamily(
        "intake_outbox_failing",
        "Outbox rows failing, by kind: retrying after a failed attempt, or dead-lettered",
        labels=["kind", "state"],
    )
    for (kind, how), count in sorted(figures.failing_by_kind(session).items()):
        failing.add_metric([kind, how], count)
    yield failing


def _request_figures(session: Session) -> Iterator[GaugeMetricFamily]:
    """Requests by status and first-response SLA."""
    for name, help_text, labels, rows in request_figures(session):
        family = GaugeMetricFamily(name, help_text, labels=labels)
        for label_values, value in rows:
            family.add_metric(label_values, value)
        yield family


def render(http: HttpMetrics, session: Session) -> bytes:
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(DatabaseFigures(session))
    return generate_latest(http.registry) + generate_latest(scrape)
