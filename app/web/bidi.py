"""Text from people, and times, kept from reordering the page around them.

Names, summaries, notes and messages come from requesters (and staff) and may hold right-to-left
script or bidirectional controls: an unclosed U+202E (right-to-left override) reverses what
follows it, so staff would read another name, another e-mail or another time. Every such value
is shown through one of these Jinja filters (registered on every page environment):

- ``bdi``: ``<bdi>`` isolates the value; its own direction comes from its first strong letter.
- ``ltr``: ``<bdi dir="ltr">`` for times, references, codes, e-mail addresses and links, which
  read left to right on right-to-left pages too ("11:30-12:15 (UTC+01:00)" stays whole).
- ``controls_shown``: no markup (``<option>`` text, titles), only the controls made visible.

All three replace the explicit directional controls (embeddings, overrides, isolates and their
terminators) with a visible ``[U+202E]``: nothing a person typed can reorder what others see,
and a spoofing attempt is there to be seen.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

# LRE, RLE, PDF, LRO, RLO (U+202A-U+202E) and LRI, RLI, FSI, PDI (U+2066-U+2069).
CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_VISIBLE = {ord(c): f"[U+{ord(c):04X}]" for c in CONTROLS}


def controls_shown(value: Any) -> str:
    return str(value).translate(_VISIBLE) if value is not None else ""


def bdi(value: Any) -> Markup:
    return Markup("<bdi>%s</bdi>") % escape(controls_shown(value))


def ltr(value: Any) -> Markup:
    return Markup('<bdi dir="ltr">%s</bdi>') % escape(controls_shown(value))


FILTERS = {"bdi": bdi, "ltr": ltr, "controls_shown": controls_shown}
