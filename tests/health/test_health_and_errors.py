"""Health and readiness, the one error shape for every error, the OpenAPI documents, and
structured logs carrying the request id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.core import database
from app.core.deps import SessionDep
from app.core.logging import configure_logging
from app.core.settings import get_settings
from app.main import create_app
from tests.processes import closed_port


def _assert_error_shape(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error", "request_id"}, body
    assert set(body["error"]) == {"code", "message", "fields", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["fields"], list)
    assert body["request_id"], "every error names its request id"


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Change INTAKE_* variables for one test; settings and logging are restored afterwards."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()
    settings = get_settings()
    configure_logging(settings.resolved_log_format, settings.log_level)


def test_healthz_is_alive(client: TestClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}
    assert resp.headers["X-Request-ID"]


def test_readyz_reports_each_check(client: TestClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True, "error": None}
    assert body["checks"]["broker"] == {"ok": True, "error": None}
    assert {"due", "in_flight", "dead", "oldest_due_age_seconds"} <= set(body["checks"]["outbox"])


def test_readyz_is_503_naming_the_broker_when_it_is_down(
    client: TestClient, fresh_settings: pytest.MonkeyPatch
) -> None:
    fresh_settings.setenv("INTAKE_BROKER_URL", f"redis://127.0.0.1:{closed_port()}/0")
    get_settings.cache_clear()
    resp = client.get("/readyz")
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert "broker" in body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_readyz_is_503_naming_the_database_when_it_is_down(db: Session) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nothing"
    database.set_engine(database.build_engine(url, for_tests=True))
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        resp = client.get("/readyz")
    assert resp.status_code == 503, resp.text
    checks = resp.json()["checks"]
    assert checks["database"]["ok"] is False and "database" in checks["database"]["error"]
    assert "outbox" not in checks
    assert "127.0.0.1" not in resp.text, "readiness does not reveal connection details"


def test_unknown_route_is_404_in_the_error_shape(client: TestClient) -> None:
    resp = client.get("/api/v1/no-such-thing")
    assert resp.status_code == 404
    _assert_error_shape(resp.json(), "not_found")
    assert resp.json()["request_id"] == resp.headers["X-Request-ID"]


def test_wrong_method_is_405_in_the_error_shape(client: TestClient) -> None:
    resp = client.delete("/healthz")
    assert resp.status_code == 405
    _assert_error_shape(resp.json(), "method_not_allowed")


def test_malformed_json_is_400(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/auth/login",
        content=b'{"email": "a@example.org", "password": ',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400, resp.text
    _assert_error_shape(resp.json(), "malformed_json")


def test_unknown_field_is_422_naming_it(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/auth/login",
        json={"email": "a@example.org", "password": "long enough password", "favourite": "x"},
    )
    assert resp.status_code == 422, resp.text
    body = resp.json()
    _assert_error_shape(body, "validation_error")
    assert [f["field"] for f in body["error"]["fields"]] == ["favourite"]
    assert "favourite" in body["error"]["message"]


def test_missing_fields_are_422_one_entry_each(client: TestClient) -> None:
    resp = client.post("/api/v1/auth/login", json={})
    assert resp.status_code == 422
    fields = {f["field"]: f["message"] for f in resp.json()["error"]["fields"]}
    assert fields == {"email": "is required", "password": "is required"}


def test_unexpected_exception_is_500_without_internals(
    db: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("applicant Jane Doe, passport X1234567")

    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/boom", headers={"X-Request-ID": "abcdef0123456789"})
    assert resp.status_code == 500
    body = resp.json()
    _assert_error_shape(body, "internal_error")
    assert body["request_id"] == "abcdef0123456789"
    assert resp.headers["X-Request-ID"] == "abcdef0123456789"
    assert "Jane" not in resp.text and "X1234567" not in resp.text
    assert "RuntimeError" not in resp.text and "Traceback" not in resp.text
    # The log says where it broke, never what the exception said (it may be personal data).
    logged = capsys.readouterr()
    log_text = logged.out + logged.err
    assert "unhandled_error" in log_text and "in boom" in log_text
    assert "Jane" not in log_text and "X1234567" not in log_text


def test_a_value_the_database_refuses_is_422_without_echoing_it(
    db: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app()

    @app.get("/too-big")
    def too_big(session: SessionDep) -> None:
        session.execute(text("SELECT CAST(:v AS integer)"), {"v": "X1234567" + "9" * 20})

    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/too-big")
    assert resp.status_code == 422, resp.text
    _assert_error_shape(resp.json(), "invalid_value")
    assert "X1234567" not in resp.text
    logged = capsys.readouterr()
    assert "database_refused_a_value" in logged.out + logged.err
    assert "X1234567" not in logged.out + logged.err


def test_a_caller_request_id_is_kept_only_if_it_looks_like_one(client: TestClient) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "abcdef0123456789"})
    assert kept.headers["X-Request-ID"] == "abcdef0123456789"
    replaced = client.get("/healthz", headers={"X-Request-ID": "evil\nline injected"})
    assert replaced.headers["X-Request-ID"] != "evil\nline injected"
    assert replaced.headers["X-Request-ID"].isalnum()


def test_openapi_documents_the_error_shape_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    doc = spec.json()
    schemas = doc["components"]["schemas"]
    assert "ErrorResponse" in schemas
    assert {"error", "request_id"} <= set(schemas["ErrorResponse"]["properties"])
    referenced = json.dumps(doc["paths"])
    assert "#/components/schemas/ErrorResponse" in referenced
    # The sign-in endpoint documents its 401 and 422 in that shape.
    login = doc["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "ErrorResponse" in json.dumps(login.get("401", {})), login.keys()
    for path in ("/healthz", "/readyz"):
        assert path in doc["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_json_logs_carry_the_request_id_on_the_access_line(
    db: Session, fresh_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh_settings.setenv("INTAKE_LOG_FORMAT", "json")
    fresh_settings.setenv("INTAKE_LOG_LEVEL", "INFO")
    get_settings.cache_clear()
    capsys.readouterr()
    app = create_app()  # configures logging: JSON to the (captured) stderr
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/healthz")
        missing = client.get("/no-such-page/123")
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    access = [line for line in lines if line.get("event") == "request"]
    by_id = {line["request_id"]: line for line in access}
    ok = by_id[resp.headers["X-Request-ID"]]
    assert ok["route"] == "/healthz" and ok["status"] == 200 and ok["level"] == "info"
    assert "timestamp" in ok and ok["logger"] == "app.access"
    unmatched = by_id[missing.headers["X-Request-ID"]]
    assert unmatched["status"] == 404
    assert "123" not in json.dumps(unmatched), "the raw path is never logged"
    logging.getLogger().handlers[:] = []
