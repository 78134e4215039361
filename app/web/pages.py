"""Server-rendered pages shared by the web domain (Jinja2, autoescaped)."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from app.web import bidi

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters.update(bidi.FILTERS)

# No framing, no third-party anything, no referrer: these pages carry one-time tokens.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
