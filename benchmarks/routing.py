"""One routing decision against a realistic load, beside a primary-key read in the same run.

    python -m benchmarks.routing [--experts 500] [--requests 100000] [--runs 400]

A fresh PostgreSQL database is filled (COPY) with ``--experts`` experts over the seven regions
(each covering its region and a few of its countries, with languages, topics and a few
absences) and ``--requests`` open requests, each with an accepted assignment, so every
expert carries a realistic number of open assignments. Then, ``--runs`` times, a new request is
routed — the candidates query, the ranking, then (PostgreSQL) one statement that takes a unit of
the expert's capacity and writes the decision, the assignment, the notification, the history
row and the request's expert, and the outbox row of the e-mail — and the transaction is rolled
back. A primary-key read of a request (``session.get`` forced to the database) is timed in the
same run, alternating with the routings, as the baseline; ``routing_client_cpu_*`` is this
process's CPU per routing (on a busy machine, wall time also holds waiting for a CPU).

Goal (issue "Regional expert routing"): routing p99 under 10 ms on this machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import time
import uuid
from typing import Any

os.environ.setdefault("INTAKE_LOG_LEVEL", "WARNING")
os.environ.setdefault("INTAKE_BROKER_URL", "memory://")

from benchmarks._harness import emit, fresh_database, summary, timed

REGIONS = {
    "east_africa": ["ER", "SD", "SS", "SO", "ET", "DJ", "KE", "UG"],
    "south_central_asia": ["PK", "AF", "BD", "IN", "NP", "LK", "BT"],
    "middle_east": ["SY", "IQ", "YE", "IR", "SA", "LB", "JO", "PS"],
    "western_balkans": ["AL", "XK", "MK", "RS", "BA"],
    "eastern_europe_post_soviet": [
        "RU",
        "UA",
        "BY",
        "MD",
        "GE",
        "AM",
        "AZ",
        "KZ",
        "KG",
        "UZ",
        "TM",
        "TJ",
    ],
    "latin_america_caribbean": [
        "VE",
        "CU",
        "NI",
        "MX",
        "GT",
        "HN",
        "SV",
        "HT",
        "CO",
        "PE",
        "BO",
        "BR",
        "DO",
    ],
    "east_asia": ["CN", "KP", "MN", "VN", "MM"],
}
LANGUAGES = ["en", "ru", "ar", "fa", "es", "fr", "zh", "uk", "tr", "am"]
TOPICS = [
    "freedom_of_speech",
    "political_repression",
    "corruption",
    "war_crimes",
    "ethnic_persecution",
    "religious_persecution",
    "gender_based_violence",
    "lgbt_persecution",
    "forced_conscription",
    "cartel_gang_violence",
    "statelessness",
    "detention_conditions",
]


def _copy(cur: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def fill(url: str, *, experts: int, requests: int, rng: random.Random) -> list[uuid.UUID]:
    """Bulk-load the data set; returns the ids of experts."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    now = dt.datetime.now(dt.UTC)
    region_codes = list(REGIONS)
    expert_ids = [uuid.uuid4() for _ in range(experts)]
    expert_region = {e: region_codes[i % len(region_codes)] for i, e in enumerate(expert_ids)}
    load = {e: 0 for e in expert_ids}
    request_rows = []
    assignment_rows = []
    for i in range(requests):
        rid = uuid.uuid4()
        e = expert_ids[i % experts]
        region = expert_region[e]
        country = rng.choice(REGIONS[region])
        received = now - dt.timedelta(minutes=rng.uniform(0, 60 * 24 * 30))
        request_rows.append(
            (
                rid,
                f"B{i:07d}",
                rng.choice(["new", "in_progress", "consultation_scheduled"]),
                "form",
                "applicant",
                "email",
                country,
                "DE",
                region,
                "not_filed",
                json.dumps(rng.sample(TOPICS, 2)),
                json.dumps(["consultation"]),
                "[]",
                rng.choice(LANGUAGES),
                "Europe/Berlin",
                False,
                "2026-11",
                received,
                received,
                60,
                received + dt.timedelta(hours=1),
                e,
                now,
                now,
            )
        )
        assignment_rows.append((rid, e, "accepted", received, received, received))
        load[e] += 1
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        _copy(
            cur,
            "users",
            [
                "id",
                "email",
                "display_name",
                "role",
                "is_active",
                "totp_enabled",
                "created_at",
                "updated_at",
            ],
            [
                (e, f"expert{i}@bench.example", f"Expert {i}", "expert", True, False, now, now)
                for i, e in enumerate(expert_ids)
            ],
        )
        _copy(
            cur,
            "expert_profiles",
            [
                "user_id",
                "public_name",
                "email",
                "timezone",
                "languages",
                "topics",
                "max_open_assignments",
                "open_assignments",
                "is_active",
                "last_assigned_at",
                "created_at",
                "updated_at",
            ],
            [
                (
                    e,
                    f"Dr Expert {i}",
                    f"expert{i}@bench.example",
                    "Europe/London",
                    json.dumps(rng.sample(LANGUAGES, 2)),
                    json.dumps(rng.sample(TOPICS, 4)),
                    load[e] + 50,
                    load[e],
                    True,
                    now - dt.timedelta(minutes=rng.uniform(0, 600)),
                    now,
                    now,
                )
                for i, e in enumerate(expert_ids)
            ],
        )
        _copy(
            cur,
            "expert_regions",
            ["expert_id", "region_code"],
            [(e, expert_region[e]) for e in expert_ids],
        )
        _copy(
            cur,
            "expert_countries",
            ["expert_id", "country_code"],
            [(e, c) for e in expert_ids for c in rng.sample(REGIONS[expert_region[e]], 3)],
        )
        absences = []
        for e in rng.sample(expert_ids, experts // 10):
            start = now + dt.timedelta(hours=rng.uniform(-48, 48))
            absences.append((e, start, start + dt.timedelta(hours=24), "leave", now))
        _copy(
            cur,
            "unavailable_periods",
            ["expert_id", "starts_at", "ends_at", "kind", "created_at"],
            absences,
        )
        _copy(
            cur,
            "requests",
            [
                "id",
                "reference",
                "status",
                "source",
                "requester_type",
                "preferred_channel",
                "country_of_origin",
                "country_of_residence",
                "region_code",
                "case_stage",
                "topics",
                "wants",
                "consent_updates",
                "language",
                "timezone",
                "discreet",
                "privacy_notice_version",
                "consent_given_at",
                "received_at",
                "sla_minutes",
                "first_response_due_at",
                "assigned_expert_id",
                "created_at",
                "updated_at",
            ],
            request_rows,
        )
        _copy(
            cur,
            "assignments",
            ["request_id", "expert_id", "status", "offered_at", "respond_by", "responded_at"],
            assignment_rows,
        )
        cur.execute("ANALYZE")
        conn.commit()
    return expert_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experts", type=int, default=500)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()

    from sqlalchemy.orm import Session

    from app.core import database
    from app.core.logging import configure_logging
    from app.models import IntakeRequest
    from app.routing import assignments, repository
    from tests.factories import make_request

    configure_logging("console", "WARNING")
    rng = random.Random(5)  # the same data set every run
    with fresh_database("bench_routing") as url:
        fill(url, experts=args.experts, requests=args.requests, rng=rng)
        engine = database.build_engine(url)
        database.set_engine(engine)
        try:
            with Session(engine) as s:
                countries = [c for cs in REGIONS.values() for c in cs]
                region_of = {c: r for r, cs in REGIONS.items() for c in cs}
                fresh = []
                for i in range(args.runs):
                    country = countries[i % len(countries)]
                    fresh.append(
                        make_request(
                            s,
                            country=country,
                            region=region_of[country],
                            language=rng.choice(LANGUAGES),
                            topics=rng.sample(TOPICS, 2),
                            reference=f"R{i:07d}",
                        ).id
                    )
                s.commit()

            decisions: list[float] = []
            # This process's CPU per decision: on a busy machine wall time also holds waiting.
            decision_cpu: list[float] = []
            candidates_ms: list[float] = []
            pk_reads: list[float] = []
            assigned = 0
            with Session(engine) as s:
                # Warm the connection and the statement caches.
                for rid in fresh[:20]:
                    req = s.get(IntakeRequest, rid)
                    assert req is not None
                    assignments.route(s, req, trigger="submitted")
                    s.flush()
                    s.rollback()
                    s.get(IntakeRequest, rid, populate_existing=True)
                    s.rollback()
                # As timeit does, no garbage collection inside the measured calls (both kinds
                # alike); routing and the baseline alternate, so both see the same machine.
                gc.collect()
                gc.disable()
                try:
                    for rid in fresh:
                        req = s.get(IntakeRequest, rid)
                        assert req is not None

                        def decide(r: IntakeRequest = req) -> None:
                            nonlocal assigned
                            if assignments.route(s, r, trigger="submitted") is not None:
                                assigned += 1
                            s.flush()

                        cpu0 = time.thread_time()
                        decisions += timed(decide, 1)
                        decision_cpu.append((time.thread_time() - cpu0) * 1000)

                        def candidates(r: IntakeRequest = req) -> None:
                            repository.candidates(
                                s,
                                country=r.country_of_origin,
                                region=r.region_code,
                                current=dt.datetime.now(dt.UTC),
                                request_id=r.id,
                            )

                        candidates_ms += timed(candidates, 1)
                        s.rollback()

                        def pk_read(i: uuid.UUID = rid) -> None:
                            s.get(IntakeRequest, i, populate_existing=True)

                        pk_reads += timed(pk_read, 1)
                        s.rollback()
                finally:
                    gc.enable()
        finally:
            database.set_engine(None)
            engine.dispose()

    route_stats = summary(decisions)
    pk_stats = summary(pk_reads)
    cand_stats = summary(candidates_ms)
    emit(
        {
            "experts": args.experts,
            "open_requests": args.requests,
            "runs": len(decisions),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "assigned_runs": assigned,
            **{f"routing_{k}": v for k, v in route_stats.items()},
            **{f"routing_client_cpu_{k}": v for k, v in summary(decision_cpu).items()},
            **{f"candidates_query_{k}": v for k, v in cand_stats.items()},
            **{f"pk_read_{k}": v for k, v in pk_stats.items()},
            "routing_p99_over_pk_read_p99": round(route_stats["p99_ms"] / pk_stats["p99_ms"], 2)
            if pk_stats["p99_ms"]
            else None,
            "routing_p99_met": route_stats["p99_ms"] < 10.0,
        }
    )


if __name__ == "__main__":
    main()
