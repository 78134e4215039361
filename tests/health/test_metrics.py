"""/metrics: Prometheus text with request counts, outbox backlog and SLA breaches."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.flows import request as flows
from app.intake import records
from app.models import RequestStatus
from app.outbox import service as outbox
from tests.conftest import Clock
from tests.factories import submit


def _value(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name}{labels} not in:\n{text}"
    return float(found.group(1))


def test_metrics_count_requests_by_route_and_status(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no-such-page")
    text = client.get("/metrics").text
    assert (
        _value(text, "intake_http_requests_total", '{method="GET",route="/healthz",status="200"}')
        == 2
    )
    assert (
        _value(
            text, "intake_http_requests_total", '{method="GET",route="(unmatched)",status="404"}'
        )
        == 1
    )
    assert "intake_http_request_duration_seconds_bucket" in text


def test_metrics_report_outbox_backlog_and_sla_breaches(
    client: TestClient, db: Session, clock: Clock
) -> None:
    submit(client)
    submit(client, email="second@example.org")
    text = client.get("/metrics").text
    assert _value(text, "intake_requests", '{status="new"}') == 2
    assert _value(text, "intake_open_requests_by_sla", '{sla_state="awaiting"}') == 2
    assert _value(text, "intake_sla_breaches") == 0
    assert _value(text, "intake_outbox_messages", '{state="due"}') >= 2  # acknowledgements

    clock.advance(minutes=50)
    text = client.get("/metrics").text
    assert _value(text, "intake_open_requests_by_sla", '{sla_state="due_soon"}') == 2
    clock.advance(minutes=11)
    text = client.get("/metrics").text
    assert _value(text, "intake_open_requests_by_sla", '{sla_state="breached"}') == 2
    assert _value(text, "intake_sla_breaches") == 2
    assert _value(text, "intake_outbox_oldest_due_age_seconds") >= 60 * 60
    assert outbox.stats(db)["due"] >= 2


def test_requests_marked_spam_or_withdrawn_before_their_deadline_are_not_breaches(
    client: TestClient, db: Session, clock: Clock
) -> None:
    """A handful marked at once, minutes after arriving: no outcome, counted apart."""
    refs = [submit(client, email=f"spam-{i}@example.org")["reference"] for i in range(4)]
    clock.advance(minutes=5)
    for ref in refs[:2]:
        req = records.get_by_reference(db, ref)
        assert req is not None
        flows.change_status(db, req, RequestStatus.spam, actor="system")
    first = records.get_by_reference(db, refs[2])
    assert first is not None
    flows.withdraw(db, first)
    clock.advance(minutes=56)  # +61: the last one is overdue
    text = client.get("/metrics").text
    assert _value(text, "intake_sla_breaches") == 1
    assert _value(text, "intake_sla_ended") == 3
    assert _value(text, "intake_open_requests_by_sla", '{sla_state="breached"}') == 1
    assert 'sla_state="ended"' not in text  # the open gauge holds open requests only


def test_with_a_metrics_token_only_the_scraper_that_sends_it_reads_the_metrics(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTAKE_METRICS_TOKEN", "scraper-secret-123")
    get_settings.cache_clear()
    try:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "not_authenticated"
        basic = client.get("/metrics", headers={"Authorization": "Basic scraper-secret-123"})
        assert basic.status_code == 401
        ok = client.get("/metrics", headers={"Authorization": "Bearer scraper-secret-123"})
        assert ok.status_code == 200 and "intake_outbox_messages" in ok.text
    finally:
        monkeypatch.delenv("INTAKE_METRICS_TOKEN")
        get_settings.cache_clear()
