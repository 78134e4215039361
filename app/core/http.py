"""Outbound HTTPS (Zoom, WhatsApp, calendar feeds): one TLS configuration per process."""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def tls_context() -> ssl.SSLContext:
    """httpx's default verification (certifi's CA bundle, hostnames checked), built once.

    Every new client would otherwise load and parse the CA bundle again (some 15 ms of CPU), and
    the worker makes one client per WhatsApp message and per calendar fetch. An ``SSLContext``
    is safe to share between clients and threads once built.
    """
    return httpx.create_ssl_context()
