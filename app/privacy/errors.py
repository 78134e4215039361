from __future__ import annotations

from app.core.errors import NotFound


class CaseNotFound(NotFound):
    code = "request_not_found"

    def __init__(self) -> None:
        super().__init__("No request with this reference.")
