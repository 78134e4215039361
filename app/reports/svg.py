"""Small server-side SVG charts (no scripts, no third-party code): bars, lines, and bars with a
line over them. Every text is escaped; the output is safe to put into a page as markup.

Titles, labels and series names come in as the viewer reads them; the one text of the charts'
own ("No data in this range") goes through the ``gettext`` the page passes in (the viewer's
language; this module knows nothing of the pages)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 760
HEIGHT = 260
PAD_LEFT = 48
PAD_RIGHT = 12
PAD_TOP = 24
PAD_BOTTOM = 56
COLOURS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad")
NO_DATA = "No data in this range"
Gettext = Callable[[str], str]


def _untranslated(text: str) -> str:
    return text


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def _markup(parts: list[str]) -> Markup:
    # Every piece of text that reaches ``parts`` went through ``escape``; numbers are formatted.
    return Markup("".join(parts))  # noqa: S704


def _nice_max(value: float) -> float:
    """The top of the scale: four equal steps of 1, 2 or 5 times a power of ten (at least 1),
    so every tick is a round number."""
    raw = max(value, 0.0) / 4
    step = 1.0
    while step < raw:
        for m in (2.0, 2.5, 2.0):
            step *= m
            if step >= raw:
                break
    return step * 4


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


class _Frame:
    def __init__(self, n: int, top: float) -> None:
        self.n = max(n, 1)
        self.top = top
        self.plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
        self.plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(self, i: float) -> float:
        return PAD_LEFT + self.plot_w * (i + 0.5) / self.n

    def y(self, value: float) -> float:
        return PAD_TOP + self.plot_h * (1 - value / self.top)

    def slot(self) -> float:
        return self.plot_w / self.n


def _open(title: str) -> list[str]:
    t = escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-label="{t}" font-family="sans-serif" font-size="11">',
        f"<title>{t}</title>",
    ]


def _axes(frame: _Frame, labels: Sequence[str], every: int) -> list[str]:
    out = []
    for k in range(5):
        value = frame.top * k / 4
        y = frame.y(value)
        out.append(
            f'<line x1="{PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH - PAD_RIGHT}" y2="{y:.1f}" '
            f'stroke="#ddd"/>'
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(value)}</text>'
        )
    base = HEIGHT - PAD_BOTTOM
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = frame.x(i)
        out.append(
            f'<text x="{x:.1f}" y="{base + 14}" text-anchor="end" '
            f'transform="rotate(-40 {x:.1f} {base + 14})">{escape(label)}</text>'
        )
    return out


def _legend(series: Sequence[Series]) -> list[str]:
    out = []
    for i, s in enumerate(series):
        x = PAD_LEFT + i * 170
        colour = COLOURS[i % len(COLOURS)]
        out.append(
            f'<rect x="{x}" y="6" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="15">{escape(s.name)}</text>'
        )
    return out


def _empty(title: str, gettext: Gettext) -> Markup:
    parts = _open(title)
    parts.append(
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#666">'
        f"{escape(gettext(NO_DATA))}</text></svg>"
    )
    return _markup(parts)


def _label_every(n: int) -> int:
    return max(1, -(-n // 31))


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    gettext: Gettext = _untranslated,
) -> Markup:
    if not labels:
        return _empty(title, gettext)
    frame = _Frame(len(labels), _nice_max(max(values, default=0)))
    parts = _open(title) + _axes(frame, labels, _label_every(len(labels)))
    w = frame.slot() * 0.7
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = frame.y(value)
        parts.append(
            f'<rect x="{frame.x(i) - w / 2:.1f}" y="{y:.1f}" width="{w:.1f}" '
            f'height="{frame.y(0) - y:.1f}" fill="{COLOURS[1]}">'
            f"<title>{escape(label)}: {_fmt(value)}</title></rect>"
        )
    parts.append("</svg>")
    return _markup(parts)


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    gettext: Gettext = _untranslated,
) -> Markup:
    values = [v for s in series for v in s.values if v is not None]
    if not labels or not values:
        return _empty(title, gettext)
    frame = _Frame(len(labels), _nice_max(max(values)))
    parts = _open(title) + _axes(frame, labels, _label_every(len(labels))) + _legend(series)
    for k, s in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        points = [
            (frame.x(i), frame.y(v), labels[i], v) for i, v in enumerate(s.values) if v is not None
        ]
        # One line per run of consecutive values: a day without a value breaks the line.
        run: list[str] = []
        for i, v in enumerate([*s.values, None]):
            if v is not None:
                run.append(f"{frame.x(i):.1f},{frame.y(v):.1f}")
                continue
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"/>'
                )
            run = []
        for x, y, label, v in points:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(s.name)} {escape(label)}: {_fmt(v)}</title></circle>"
            )
    parts.append("</svg>")
    return _markup(parts)


def bars_with_line(
    title: str,
    labels: Sequence[str],
    bars: Series,
    line: Series,
    *,
    label_every: int = 12,
    gettext: Gettext = _untranslated,
) -> Markup:
    """Bars (e.g. arrivals) with a step line over them (e.g. people on duty), one scale."""
    values = [v for v in [*bars.values, *line.values] if v is not None]
    if not labels:
        return _empty(title, gettext)
    frame = _Frame(len(labels), _nice_max(max(values, default=0)))
    parts = _open(title) + _axes(frame, labels, label_every) + _legend([bars, line])
    w = frame.slot() * 0.8
    for i, value in enumerate(bars.values):
        if not value:
            continue
        y = frame.y(value)
        parts.append(
            f'<rect x="{frame.x(i) - w / 2:.1f}" y="{y:.1f}" width="{w:.1f}" '
            f'height="{frame.y(0) - y:.1f}" fill="{COLOURS[0]}">'
            f"<title>{escape(labels[i])}: {_fmt(value)}</title></rect>"
        )
    step = []
    half = frame.slot() / 2
    for i, value in enumerate(line.values):
        y = frame.y(value or 0)
        step.append(f"{frame.x(i) - half:.1f},{y:.1f} {frame.x(i) + half:.1f},{y:.1f}")
    parts.append(
        f'<polyline points="{" ".join(step)}" fill="none" stroke="{COLOURS[1]}" '
        f'stroke-width="2"><title>{escape(line.name)}</title></polyline>'
    )
    parts.append("</svg>")
    return _markup(parts)
