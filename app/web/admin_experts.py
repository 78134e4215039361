"""``/admin/experts``: the admin console's Experts (admins only). Being built."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
PATH = "/admin/experts"
