"""Outbound HTTPS clients share one TLS context: verifying as httpx does by default, and built
once per process instead of once per client (a WhatsApp message, a calendar fetch)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

from app.calendars import fetch
from app.calendars.settings import CalendarSettings
from app.core.http import tls_context
from app.meetings.zoom import ZoomClient, ZoomCredentials
from app.whatsapp.client import WhatsAppClient


def test_the_context_verifies_certificates_and_hostnames() -> None:
    context = tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.get_ca_certs()  # a CA bundle is loaded
    assert tls_context() is context


def test_new_clients_do_not_load_the_ca_bundle_again(monkeypatch: pytest.MonkeyPatch) -> None:
    tls_context()  # built once (by any earlier client of this process)
    loads: list[Any] = []
    real = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    clients = [WhatsAppClient() for _ in range(3)]
    credentials = ZoomCredentials(account_id="a", client_id="c", client_secret="s")
    zooms = [ZoomClient(credentials) for _ in range(2)]
    # A calendar fetch to a port nobody listens on: refused, but its client was built.
    local = CalendarSettings(allow_private_addresses=True, timeout_seconds=2)
    with pytest.raises(fetch.FetchFailed):
        fetch.fetch_ics(
            "https://127.0.0.1:9/feed.ics", etag=None, last_modified=None, settings=local
        )
    for client in clients:
        client.close()
    for zoom in zooms:
        zoom.close()
    assert loads == []
    # The probe itself counts: a client with a context of its own loads the bundle.
    httpx.Client().close()
    assert len(loads) == 1
