"""Helpers for the public pages' tests: the apply form's hidden fields and a valid answer set."""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi.testclient import TestClient

HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def hidden_fields(html: str) -> dict[str, str]:
    return dict(HIDDEN.findall(html))


def title_of(html: str) -> str:
    found = re.search(r"<title>(.*?)</title>", html, re.S)
    assert found is not None
    return found.group(1).strip()


def answers(**overrides: Any) -> dict[str, Any]:
    """A valid form as the page sends it (checkboxes "on", lists as repeated fields)."""
    body: dict[str, Any] = {
        "requester_type": "applicant",
        "full_name": "Aigerim Test",
        "email": f"applicant-{secrets.token_hex(4)}@example.org",
        "preferred_channel": "email",
        "language": "en",
        "timezone": "Europe/London",
        "country_of_origin": "KG",
        "country_of_residence": "GB",
        "case_stage": "filed_pending",
        "wants": ["consultation", "sample_report"],
        "consent_data_processing": "on",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def open_form(client: TestClient, url: str = "/apply") -> dict[str, str]:
    resp = client.get(url)
    assert resp.status_code == 200, resp.text
    return hidden_fields(resp.text)


def post_form(client: TestClient, url: str = "/apply", **overrides: Any) -> Any:
    """Open the form (cookie + hidden fields), then send the answers with them."""
    hidden = open_form(client, url)
    return client.post(url, data={**hidden, **answers(**overrides)})
