"""Intake throughput and latency against PostgreSQL, beside a bare baseline in the same run.

    python -m benchmarks.intake [--seconds 8] [--rounds 3] [--connections 32]

The service (``app.main:create_app``, one uvicorn process, as ``asylum-intake api`` runs it)
takes full form submissions — the submission limit's count (in Redis, as in production, where
the broker is Redis: a private ``redis-server`` here), validation, phone parsing, per-request
data key and encryption, history rows and the outbox rows, all in one transaction. The baseline
is the same server, framework and driver doing one plain INSERT of the same JSON body
(``benchmarks/baseline_app.py``). Both run side by side against fresh databases on the same
PostgreSQL; each of ``--rounds`` rounds loads the baseline, then the service, for ``--seconds``
each, and the figures pool the rounds (the ratio of each round is printed too).

Goals (issue "Applicant intake"): throughput at least 0.4 of the baseline's; p99 at most three
times the baseline's p99.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    LoadResult,
    closed_loop,
    emit,
    fresh_database,
    redis_server,
    server,
)

RUN = secrets.token_hex(3)


def submission(i: int) -> dict[str, Any]:
    # Distinct addresses: the per-address acknowledgement cap and duplicate linking are
    # features, not what this measures.
    return {
        "requester_type": "applicant",
        "full_name": "Benchmark Applicant",
        "email": f"bench-{RUN}-{i}@example.org",
        "phone": "+996 555 123 456",
        "preferred_channel": "email",
        "language": "en",
        "timezone": "Asia/Bishkek",
        "country_of_origin": "KG",
        "country_of_residence": "DE",
        "case_stage": "refused_appeal",
        "topics": ["political_repression", "freedom_of_speech"],
        "case_summary": "A summary of the case, a few sentences long. " * 5,
        "wants": ["sample_report", "consultation"],
        "discreet": False,
        "consent_data_processing": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="load per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    try:
        figures = measure(args.seconds, args.rounds, args.connections, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    emit(figures)


def measure(seconds: float, rounds: int, connections: int, workdir: Path) -> dict[str, Any]:
    """Both servers run side by side; each round loads the baseline, then the service, so a
    machine that speeds up or slows down during the run (it is shared) weighs on both alike."""
    env_common = {
        "INTAKE_ENV": "development",
        "INTAKE_LOG_LEVEL": "WARNING",
        # One client address sends everything: lift the per-address submission limit (it is
        # still counted on every submission).
        "INTAKE_SUBMIT_RATE_LIMIT": "100000",
    }
    with (
        # As in production, the broker is Redis (a private one): the nudges after each commit
        # go there, and so does the per-address submission count. No worker drains the queue.
        redis_server(workdir) as broker,
        fresh_database("bench_intake_base") as base_db,
        fresh_database("bench_intake") as intake_db,
    ):
        env = {**env_common, "INTAKE_BROKER_URL": broker}
        with (
            server(
                "benchmarks.baseline_app:create_app", {**env, "INTAKE_DATABASE_URL": base_db}
            ) as base_url,
            server("app.main:create_app", {**env, "INTAKE_DATABASE_URL": intake_db}) as url,
        ):
            baseline: list[LoadResult] = []
            intake: list[LoadResult] = []
            for _ in range(rounds):
                baseline.append(
                    closed_loop(
                        f"{base_url}/insert", submission, connections=connections, seconds=seconds
                    )
                )
                intake.append(
                    closed_loop(
                        f"{url}/api/v1/requests",
                        submission,
                        connections=connections,
                        seconds=seconds,
                    )
                )
    return _figures(baseline, intake, seconds=seconds, connections=connections)


def _pooled(results: list[LoadResult]) -> LoadResult:
    return LoadResult(
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        seconds=sum(r.seconds for r in results),
        latencies_ms=[ms for r in results for ms in r.latencies_ms],
    )


def _figures(
    baseline_rounds: list[LoadResult],
    intake_rounds: list[LoadResult],
    *,
    seconds: float,
    connections: int,
) -> dict[str, Any]:
    baseline, intake = _pooled(baseline_rounds), _pooled(intake_rounds)
    throughput_ratio = intake.per_second / baseline.per_second if baseline.per_second else 0.0
    p99_ratio = intake.pct(99) / baseline.pct(99) if baseline.latencies_ms else float("inf")
    per_round = [
        round(i.per_second / b.per_second, 3) if b.per_second else 0.0
        for b, i in zip(baseline_rounds, intake_rounds, strict=True)
    ]
    return {
        "connections": connections,
        "seconds_per_round": seconds,
        "rounds": len(per_round),
        "baseline_per_second": round(baseline.per_second, 1),
        "baseline_p50_ms": round(baseline.pct(50), 2),
        "baseline_p99_ms": round(baseline.pct(99), 2),
        "baseline_errors": baseline.errors,
        "intake_per_second": round(intake.per_second, 1),
        "intake_p50_ms": round(intake.pct(50), 2),
        "intake_p99_ms": round(intake.pct(99), 2),
        "intake_errors": intake.errors,
        "throughput_ratio_per_round": per_round,
        "throughput_ratio": round(throughput_ratio, 3),
        "p99_ratio": round(p99_ratio, 3),
        "throughput_met": throughput_ratio >= 0.4 and intake.errors == 0,
        "p99_met": p99_ratio <= 3.0 and intake.errors == 0,
    }


if __name__ == "__main__":
    main()
