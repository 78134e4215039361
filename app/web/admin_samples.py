"""``/admin/sample-reports``: the admin console's Sample reports (admins only). Being built."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
PATH = "/admin/sample-reports"
