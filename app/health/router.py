from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.core.deps import SessionDep
from app.health import service

router = APIRouter(tags=["operations"])


class Alive(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    status: str = Field(description="`ok`, or `unavailable` with the failing part named")
    checks: dict[str, Any]


@router.get("/healthz", response_model=Alive, summary="The process is alive")
def healthz() -> Alive:
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
