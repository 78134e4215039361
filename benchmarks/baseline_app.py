"""The bare baseline for HTTP benchmarks: the same server (uvicorn), the same framework and
driver (FastAPI, SQLAlchemy, psycopg 3), doing one plain INSERT per request and nothing else."""

from __future__ import annotations

import os
from typing import Any

from fastapi import Body, FastAPI
from sqlalchemy import text

from app.core.database import build_engine

TABLE = "bench_baseline"  # a constant, never input


def create_app() -> FastAPI:
    engine = build_engine(os.environ["INTAKE_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(
            text(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, body jsonb)")
        )
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/insert", status_code=201)
    def insert(body: dict[str, Any] = Body(...)) -> dict[str, int]:
        import json

        with engine.begin() as conn:
            new_id = conn.execute(
                text(f"INSERT INTO {TABLE} (body) VALUES (CAST(:b AS jsonb)) RETURNING id"),  # noqa: S608
                {"b": json.dumps(body)},
            ).scalar_one()
        return {"id": int(new_id)}

    return app
