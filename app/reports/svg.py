"""Small server-side SVG charts (no scripts, no third-party code): bars, lines, and bars with a
line over them. Every text is escaped; the output is safe to put into a page as markup.

Titles, labels and series names come in as the viewer reads them; the one text of the charts'
own ("No data in this range") goes through the ``gettext`` the page passes in (the viewer's
language; this module knows nothing of the pages).

Room for the texts is computed from the texts drawn, never fixed: the server has no font at
hand, so :func:`text_width` estimates a text's width generously (DejaVu Sans, the widest common
sans-serif, measured in Chromium) and the chart makes room for that. The axis labels are turned
40 degrees, their end at their tick, so a long label reaches down and to the left: the picture
grows downwards as the longest one needs, and the plot moves right as far as the labels near the
left edge need. A label wider than ``MAX_LABEL_WIDTH`` is cut with an ellipsis, its full text in
a ``<title>``. The legend wraps onto more rows instead of running out on the right.

Right-to-left pages: the chart's geometry is left to right whatever the page (``direction="ltr"``
on the ``<svg>``, else an Arabic page would turn every ``text-anchor`` around); each text takes
the direction of its first strong character, as ``dir="auto"`` does, with its anchor flipped so
that it ends on the same side."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 760
PLOT_HEIGHT = 180
PAD_LEFT = 48  # at least: room for the scale's numbers
PAD_RIGHT = 12
PAD_TOP = 24  # with one row of legend
FONT_SIZE = 11
# A text's extent above and below its baseline, in ems (DejaVu Sans in Chromium: 0.91 and 0.27
# for Latin and Cyrillic, 1.0 and 0.27 for Arabic).
ASCENT = 1.0
DESCENT = 0.3
LABEL_ANGLE = 40  # degrees, the axis labels turned anticlockwise
LABEL_GAP = 14  # from the axis down to a label's baseline
MAX_LABEL_WIDTH = 320.0  # about 48 characters; a longer label is cut with an ellipsis
MARGIN = 4.0  # kept free inside the picture's edges
LEGEND_ROW = 16
LEGEND_GAP = 18
ELLIPSIS = "…"
COLOURS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad")
NO_DATA = "No data in this range"
Gettext = Callable[[str], str]

# Widths in ems, generous for DejaVu Sans (a Latin or Cyrillic text of ordinary letters comes
# out about 10 % wider than drawn; other fonts are narrower still). Wide: M, W, @, % and the
# Cyrillic Zhe, Sha, Shcha, Yeru, Yu and Ef, capital and small.
_WIDE = frozenset("MWmw@%\u0416\u0428\u0429\u042b\u042e\u0424\u0436\u0448\u0449\u044b\u044e\u0444")
_NARROW = frozenset(" .,:;'!|()[]/-ijlIft\u00a0")


# Arabic letters by their width inside a word and at its end (joined forms are narrower than
# final ones), in ems; other Arabic letters 0.5 and 0.6.
_ARABIC = {
    **dict.fromkeys("\u0633\u0634\u0635\u0636", (0.95, 1.25)),  # seen, sheen, sad, dad
    **dict.fromkeys("\u0637\u0638", (0.85, 0.95)),  # tah, zah
    **dict.fromkeys("\u0628\u062a\u062b\u064a\u0649\u0626", (0.4, 0.95)),  # beh, teh, yeh
    "\u0641": (0.6, 1.05),  # feh
    **dict.fromkeys("\u0642\u0643\u0644\u0646", (0.6, 0.85)),  # qaf, kaf, lam, noon
    **dict.fromkeys("\u062c\u062d\u062e\u0639\u063a\u0645", (0.66, 0.68)),  # jeem .. meem
}


def _arabic_letter(ch: str) -> bool:
    return unicodedata.bidirectional(ch) == "AL" and unicodedata.category(ch) == "Lo"


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """The estimated width of ``text`` at ``size``: what the chart makes room for."""
    ems = 0.0
    letters = [ch for ch in text if unicodedata.category(ch) not in ("Mn", "Me", "Cf")]
    for k, ch in enumerate(letters):
        # Combining marks (Arabic vowel signs), joiners and direction marks take no room.
        if _arabic_letter(ch):
            inside = k + 1 < len(letters) and _arabic_letter(letters[k + 1])
            ems += _ARABIC.get(ch, (0.5, 0.6))[0 if inside else 1]
        elif ch in _WIDE or unicodedata.east_asian_width(ch) in ("W", "F"):
            ems += 1.0
        elif ch in _NARROW:
            ems += 0.36
        elif ch.isupper():
            ems += 0.78
        elif ch.isdigit():
            ems += 0.66
        else:
            ems += 0.62
    return ems * size


def fit(text: str, limit: float, size: float = FONT_SIZE) -> str:
    """``text`` as drawn: whole when it fits ``limit``, else cut with an ellipsis (never
    between a letter and its combining marks) so that it fits."""
    if text_width(text, size) <= limit:
        return text
    # The longest start that fits with the ellipsis (a letter's width depends on the next one).
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_width(text[:mid].rstrip() + ELLIPSIS, size) <= limit:
            lo = mid
        else:
            hi = mid - 1
    while 0 < lo < len(text) and unicodedata.combining(text[lo]):
        lo -= 1
    return text[:lo].rstrip() + ELLIPSIS


def _untranslated(text: str) -> str:
    return text


def _rtl(text: str) -> bool:
    """Right to left by its first strong character, as ``dir="auto"`` decides."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def _text(
    x: float, y: float, text: str, *, end: bool = False, turn: int = 0, title: str = ""
) -> str:
    """A ``<text>`` at (x, y): its left edge there, or its right edge with ``end``, in either
    direction. A text cut by :func:`fit` is shown whole in its ``<title>``."""
    anchor = "end" if end else "start"
    direction = ""
    if _rtl(text):
        anchor = "start" if end else "end"
        direction = ' direction="rtl"'
    if turn:
        direction += f' transform="rotate({turn} {x:.1f} {y:.1f})"'
    tooltip = f"<title>{escape(title)}</title>" if title and title != text else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{direction}>'
        f"{escape(text)}{tooltip}</text>"
    )


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


@dataclass(frozen=True)
class _Label:
    i: int  # the tick it belongs to
    full: str
    shown: str
    width: float


class _Frame:
    """Where everything goes: the padding around the plot follows from the texts drawn."""

    def __init__(
        self, labels: Sequence[str], every: int, top: float, legend: Sequence[str] = ()
    ) -> None:
        self.n = max(len(labels), 1)
        self.top = top
        self.ticks = [_fmt(top * k / 4) for k in range(5)]
        self.labels: list[_Label] = []
        for i, label in enumerate(labels):
            if i % every == 0:
                shown = fit(label, MAX_LABEL_WIDTH)
                self.labels.append(_Label(i, label, shown, text_width(shown)))
        sin = math.sin(math.radians(LABEL_ANGLE))
        cos = math.cos(math.radians(LABEL_ANGLE))
        # A label turned about its end reaches left by w*cos + ascent*sin, down by
        # w*sin + descent*cos (its top-left and bottom-left corners).
        scale = max(text_width(t) for t in self.ticks) + 6 + MARGIN
        self.pad_left = max(float(PAD_LEFT), scale)
        span = WIDTH - PAD_RIGHT
        for lab in self.labels:
            # x(i) = pad + (span - pad) * f; its reach must stay MARGIN inside the edge.
            f = (lab.i + 0.5) / self.n
            reach = lab.width * cos + ASCENT * FONT_SIZE * sin + MARGIN
            self.pad_left = max(self.pad_left, (reach - span * f) / (1 - f))
        self.plot_w = span - self.pad_left
        self.legend = self._legend(legend)
        rows = 1 + max((row for row, _, _ in self.legend), default=0)
        self.pad_top = PAD_TOP + LEGEND_ROW * (rows - 1)
        self.base = self.pad_top + PLOT_HEIGHT
        below = max((lab.width * sin + DESCENT * FONT_SIZE * cos for lab in self.labels), default=0)
        self.height = math.ceil(self.base + LABEL_GAP + below + MARGIN)

    def _legend(self, names: Sequence[str]) -> list[tuple[int, float, str]]:
        """(row, x, name as shown) of each legend entry: a row full, the next one."""
        out: list[tuple[int, float, str]] = []
        row, x = 0, self.pad_left
        right = WIDTH - PAD_RIGHT
        for name in names:
            shown = fit(name, right - self.pad_left - 14)
            width = 14 + text_width(shown)
            if x > self.pad_left and x + width > right:
                row, x = row + 1, self.pad_left
            out.append((row, x, shown))
            x += width + LEGEND_GAP
        return out

    def x(self, i: float) -> float:
        return self.pad_left + self.plot_w * (i + 0.5) / self.n

    def y(self, value: float) -> float:
        return self.pad_top + PLOT_HEIGHT * (1 - value / self.top)

    def slot(self) -> float:
        return self.plot_w / self.n


def _open(title: str, height: float) -> list[str]:
    t = escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-label="{t}" font-family="sans-serif" '
        f'font-size="{FONT_SIZE}" direction="ltr">',
        f"<title>{t}</title>",
    ]


def _axes(frame: _Frame) -> list[str]:
    out = []
    for k, tick in enumerate(frame.ticks):
        y = frame.y(frame.top * k / 4)
        out.append(
            f'<line x1="{frame.pad_left:.1f}" y1="{y:.1f}" x2="{WIDTH - PAD_RIGHT}" '
            f'y2="{y:.1f}" stroke="#ddd"/>' + _text(frame.pad_left - 6, y + 4, tick, end=True)
        )
    y = frame.base + LABEL_GAP
    for lab in frame.labels:
        x = frame.x(lab.i)
        out.append(_text(x, y, lab.shown, end=True, turn=-LABEL_ANGLE, title=lab.full))
    return out


def _legend(frame: _Frame) -> list[str]:
    out = []
    for i, (row, x, name) in enumerate(frame.legend):
        colour = COLOURS[i % len(COLOURS)]
        y = 6 + LEGEND_ROW * row
        out.append(
            f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{colour}"/>'
            + _text(x + 14, y + 9, name)
        )
    return out


def _empty(title: str, gettext: Gettext) -> Markup:
    height = PAD_TOP + PLOT_HEIGHT + 56
    parts = _open(title, height)
    parts.append(
        f'<text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle" fill="#666">'
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
    frame = _Frame(labels, _label_every(len(labels)), _nice_max(max(values, default=0)))
    parts = _open(title, frame.height) + _axes(frame)
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
    frame = _Frame(
        labels, _label_every(len(labels)), _nice_max(max(values)), [s.name for s in series]
    )
    parts = _open(title, frame.height) + _axes(frame) + _legend(frame)
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
    frame = _Frame(labels, label_every, _nice_max(max(values, default=0)), [bars.name, line.name])
    parts = _open(title, frame.height) + _axes(frame) + _legend(frame)
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
