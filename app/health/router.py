from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from app.core.deps import SessionDep
from app.health import metrics, service

router = APIRouter(tags=["operations"])


class Alive(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    status: str = Field(description="`ok`, or `unavailable` with the failing part named")
    checks: dict[str, Any]


@router.get("/healthz", response_model=Alive, summary="The process is alive")
async def healthz() -> Alive:
    # On the event loop, with nothing to wait for: a liveness probe must not queue for a worker
    # thread behind the pages' work.
    return Alive()


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Database and broker reachable",
    description="`503` when a dependency is down; `checks` names which one. Also reports the "
    "outbox: due, in-flight and dead-lettered rows and the age of the oldest due one.",
    responses={503: {"model": Ready, "description": "a dependency is unavailable"}},
)
def readyz(session: SessionDep) -> Any:
    ok, checks = service.readiness(session)
    body = Ready(status="ok" if ok else "unavailable", checks=checks)
    return body if ok else JSONResponse(body.model_dump(mode="json"), status_code=503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Text exposition format: HTTP requests of this process by route and status, "
    "outbox backlog (due, in flight, dead-lettered, oldest due age), requests by status and "
    "first-response SLA breaches. With `INTAKE_METRICS_TOKEN` set, only a scraper sending "
    "`Authorization: Bearer <token>` gets them (401 otherwise). Unset: open outside "
    "production; in production 404 until the token is set.",
    response_class=Response,
)
def prometheus(request: Request, session: SessionDep) -> Response:
    service.check_metrics_token(request.headers.get("authorization"))
    http: metrics.HttpMetrics = request.app.state.http_metrics
    return Response(
        metrics.render(http, session), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
