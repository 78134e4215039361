"""Render e-mail templates (text and HTML) with Jinja2, autoescaped for HTML."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("app.notifications", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_pair(name: str, context: dict[str, Any]) -> tuple[str, str]:
    """``name`` without extension -> (text, html) from ``name.txt`` and ``name.html``."""
    env = environment()
    return env.get_template(f"{name}.txt").render(context), env.get_template(f"{name}.html").render(
        context
    )
