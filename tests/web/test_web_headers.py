"""Headers of every answer: no cache keeps personal data, ``/docs`` is served by the service
under the pages' CSP, and ``/metrics`` in production needs its token."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.health import service as health
from app.models import Role
from app.web.security import PAGE_CSP
from tests.factories import create_user, login, signed_in, submission, submit

# Cache-Control ------------------------------------------------------------------------------


def test_every_api_and_webhook_answer_says_no_store_errors_included(
    web: TestClient, db: Session
) -> None:
    req = submit(db)
    staff = create_user(db, role=Role.staff)
    auth = login(web, staff)
    body = submission().model_dump(mode="json", exclude_none=True)
    answers = {
        "case (personal data)": web.get(f"/api/v1/cases/{req.reference}", headers=auth),
        "queue": web.get("/api/v1/queue", headers=auth),
        "submit": web.post("/api/v1/requests", json=body),
        "me": web.get("/api/v1/auth/me", headers=auth),
        "401": web.get("/api/v1/queue"),
        "404": web.get("/api/v1/cases/NOPE-NOPE", headers=auth),
        "422": web.post("/api/v1/requests", json={}),
        "inbound webhook": web.post("/webhooks/inbound-email", content=b"x"),
        "zoom webhook": web.post("/webhooks/zoom", content=b"{}"),
        "unknown path": web.get("/api/v1/nothing-here"),
        "health": web.get("/healthz"),
        "openapi": web.get("/openapi.json"),
    }
    assert answers["case (personal data)"].status_code == 200
    assert answers["submit"].status_code == 201
    for name, resp in answers.items():
        assert resp.headers.get("cache-control") == "no-store", (name, resp.status_code)


def test_pages_say_no_store_and_the_services_own_files_stay_cacheable(
    web: TestClient, db: Session
) -> None:
    req = submit(db)
    signed_in(web, create_user(db, role=Role.staff))
    for url in ("/staff/queue", f"/staff/cases/{req.reference}", "/apply", "/docs"):
        resp = web.get(url)
        assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store", url
    for url in ("/static/staff.css", "/static/docs.js", "/docs/assets/swagger-ui.css"):
        resp = web.get(url)
        assert resp.status_code == 200, url
        assert "no-store" not in resp.headers.get("cache-control", ""), url


# /docs ----------------------------------------------------------------------------------------


def test_docs_load_swagger_ui_from_the_service_under_the_pages_csp(web: TestClient) -> None:
    resp = web.get("/docs")
    assert resp.status_code == 200
    csp = resp.headers["content-security-policy"]
    assert csp == PAGE_CSP.replace("img-src 'self'", "img-src 'self' data:")
    assert "script-src 'self';" in csp and "unsafe" not in csp
    assert resp.headers["x-frame-options"] == "DENY"
    html = resp.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/' in attrs and not inline.strip() for attrs, inline in scripts)
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(assets)
    for url in assets:
        asset = web.get(url)
        assert asset.status_code == 200 and asset.content, url
    bundle = web.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in bundle.content
    assert web.get("/docs/assets/redoc.standalone.js").status_code == 404
    assert web.get("/docs/assets/..%2F__init__.py").status_code == 404
    assert web.get("/openapi.json").json()["info"]["title"] == "asylum-intake"


# /metrics -------------------------------------------------------------------------------------


def _use(monkeypatch: pytest.MonkeyPatch, **values: object) -> None:
    settings = get_settings().model_copy(update=values)
    monkeypatch.setattr(health, "get_settings", lambda: settings)


def test_metrics_in_production_without_a_token_are_not_found(
    web: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, env="production", metrics_token=None)
    resp = web.get("/metrics")
    assert resp.status_code == 404
    assert "intake_http_requests" not in resp.text
    assert web.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


def test_metrics_in_production_need_the_token_once_it_is_set(
    web: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, env="production", metrics_token=SecretStr("scrape-secret-123"))
    assert web.get("/metrics").status_code == 401
    wrong = web.get("/metrics", headers={"Authorization": "Bearer scrape-secret-12"})
    assert wrong.status_code == 401
    ok = web.get("/metrics", headers={"Authorization": "Bearer scrape-secret-123"})
    assert ok.status_code == 200 and "intake_http_requests" in ok.text


def test_metrics_outside_production_without_a_token_stay_open(
    web: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, env="development", metrics_token=None)
    resp = web.get("/metrics")
    assert resp.status_code == 200 and "intake_http_requests" in resp.text
