"""``/docs`` (Swagger UI) and ``/openapi.json``, served by the service itself.

Swagger UI runs on the same origin as the staff pages, where a signed-in browser carries the
session cookie: it gets the pages' Content-Security-Policy (scripts and styles only from this
service, no inline script), and its files come from a pinned Python package
(``fastapi-offline``, only its static folder), never from a CDN. FastAPI's own ``/docs`` page
is off: it loads the files from a CDN, unpinned, with an inline script. Both routes are plain
``def``: the OpenAPI schema is built on first use (CPU), in a worker thread, not on the event
loop.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from app.core.validation import SafeStr
from app.web.security import PAGE_CSP, PAGE_HEADERS

router = APIRouter(include_in_schema=False)
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
# Swagger UI's stylesheet draws its icons as data: images; nothing else is loosened.
DOCS_CSP = PAGE_CSP.replace("img-src 'self'", "img-src 'self' data:")
DOCS_HEADERS = {**PAGE_HEADERS, "Content-Security-Policy": DOCS_CSP}

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>asylum-intake API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<script src="/docs/assets/swagger-ui-bundle.js" defer></script>
<script src="/static/docs.js" defer></script>
</head>
<body>
<div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body>
</html>
"""


@router.get("/openapi.json")
def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def docs_page() -> HTMLResponse:
    return HTMLResponse(DOCS_PAGE, headers=DOCS_HEADERS)


@router.get("/docs/assets/{name}")
def docs_asset(name: SafeStr) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status_code=404)
    # The same file for the life of this installation: cacheable, unlike every answer with data.
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return FileResponse(ASSETS_DIR / name, media_type=media_type, headers=headers)
