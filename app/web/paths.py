"""Addresses of pages that code outside the pages names (the commands print the sign-in page),
apart from the pages' modules so that naming one imports no web code."""

from __future__ import annotations

SIGN_IN_PATH = "/staff/sign-in"
