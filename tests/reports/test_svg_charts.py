"""The report charts keep every text inside the picture: the turned axis labels (long region
names in English, Russian and Arabic), the scale and the legend, in each kind of chart. A text's
box is worked out from the SVG's own numbers (position, anchor, direction, turn, viewBox) and
the width the charts reckon with (``svg.text_width``; tests/browser/test_reports_charts_page.py
shows in Chromium that the drawn texts are no wider). An absurdly long label is cut with an
ellipsis and kept whole in its <title>."""

from __future__ import annotations

import math
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from markupsafe import Markup

from app.reports import svg

NS = "{http://www.w3.org/2000/svg}"


def _parse(markup: Markup) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - the charts' own output


# A text's extent above and below its baseline in ems (DejaVu Sans in Chromium: Arabic reaches
# 1.0 em up, every script 0.27 em down).
ASCENT, DESCENT = 1.0, 0.27

REGIONS = {
    "en": [
        "Eastern Europe and post-Soviet states",
        "Middle East and North Africa",
        "Sub-Saharan Africa",
        "general",
    ],
    "ru": [
        "Восточная Европа и постсоветские государства",
        "Ближний Восток и Северная Африка",
        "Африка к югу от Сахары",
        "ЩЕЛЬ ЖЖЖ ШШШ ЮЮЮ ФФФ",
    ],
    "ar": [
        "أوروبا الشرقية ودول ما بعد الاتحاد السوفيتي",
        "الشرق الأوسط وشمال أفريقيا (منطقة ٢)",
        "أفريقيا جنوب الصحراء الكبرى",
        "عام",
    ],
}
SERIES = {
    "en": ("requests arrived (range)", "staff on duty (roster)"),
    "ru": ("поступившие запросы (за выбранный период)", "сотрудники на дежурстве (по графику)"),
    "ar": ("الطلبات الواردة (النطاق المحدد)", "الموظفون المناوبون (جدول المناوبات)"),
}


def _bar(lang: str) -> Markup:
    labels = REGIONS[lang] * 2
    return svg.bar_chart("t", labels, [float(i) for i in range(len(labels))])


def _line(lang: str) -> Markup:
    labels = REGIONS[lang] * 2
    a, b = SERIES[lang]
    return svg.line_chart(
        "t", labels, [svg.Series(a, [1.0] * len(labels)), svg.Series(b, [2.5] * len(labels))]
    )


def _bars_with_line(lang: str) -> Markup:
    labels = [REGIONS[lang][h // 12 % 4] for h in range(168)]
    a, b = SERIES[lang]
    return svg.bars_with_line(
        "t", labels, svg.Series(a, [1.0] * 168), svg.Series(b, [2.0] * 168), label_every=12
    )


CHARTS: dict[str, Callable[[str], Markup]] = {
    "bar_chart": _bar,
    "line_chart": _line,
    "bars_with_line": _bars_with_line,
}


def _boxes(
    markup: Markup,
) -> tuple[tuple[float, float], list[tuple[str, list[tuple[float, float]]]]]:
    """The viewBox's size, and each <text>'s drawn text with the four corners of its box."""
    root = _parse(markup)
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    assert root.attrib["direction"] == "ltr"
    size = float(root.attrib["font-size"])
    out = []
    for el in root.iter(f"{NS}text"):
        text = el.text or ""
        w = svg.text_width(text, size)
        x, y = float(el.attrib["x"]), float(el.attrib["y"])
        anchor = el.attrib.get("text-anchor", "start")
        if el.attrib.get("direction") == "rtl":  # its start is on the right
            anchor = {"start": "end", "end": "start"}.get(anchor, anchor)
        left = {"start": x, "end": x - w, "middle": x - w / 2}[anchor]
        corners = [
            (cx, cy) for cx in (left, left + w) for cy in (y - ASCENT * size, y + DESCENT * size)
        ]
        transform = el.attrib.get("transform")
        if transform:
            assert transform.startswith("rotate(") and transform.endswith(")"), transform
            angle, ox, oy = (float(v) for v in transform[7:-1].split())
            a = math.radians(angle)
            corners = [
                (
                    ox + (cx - ox) * math.cos(a) - (cy - oy) * math.sin(a),
                    oy + (cx - ox) * math.sin(a) + (cy - oy) * math.cos(a),
                )
                for cx, cy in corners
            ]
        out.append((text, corners))
    return (width, height), out


@pytest.mark.parametrize("kind", CHARTS)
@pytest.mark.parametrize("lang", REGIONS)
def test_every_label_of_a_chart_lies_inside_its_picture(kind: str, lang: str) -> None:
    (width, height), boxes = _boxes(CHARTS[kind](lang))
    turned = [text for text, _ in boxes if any(r in text for r in REGIONS[lang])]
    assert len(turned) >= len(REGIONS[lang]), turned  # the long labels are drawn
    for text, corners in boxes:
        for x, y in corners:
            assert 0 <= x <= width and 0 <= y <= height, (text, round(x, 1), round(y, 1))
    # Whole: the region names are not cut at this length.
    assert not any(t.endswith(svg.ELLIPSIS) for t in turned)


def test_short_labels_keep_the_chart_its_usual_size() -> None:
    (width, height), _ = _boxes(svg.bar_chart("t", ["a", "b"], [1.0, 2.0]))
    assert width == 760 and height <= 260  # as it was with fixed room
    bar = _parse(svg.bar_chart("t", ["a", "b"], [1.0, 2.0])).find(f"{NS}rect")
    assert bar is not None and float(bar.attrib["x"]) < 760 / 4  # the plot starts on the left


def test_an_absurdly_long_label_is_cut_with_an_ellipsis_and_whole_in_its_title() -> None:
    absurd = "Eastern Europe <and> " + "post-Soviet states " * 20
    chart = svg.bar_chart("t", ["general", absurd], [1.0, 2.0])
    root = _parse(chart)
    cut = [el for el in root.iter(f"{NS}text") if (el.text or "").endswith(svg.ELLIPSIS)]
    assert len(cut) == 1
    shown = cut[0].text or ""
    assert absurd.startswith(shown[:-1]) and not shown[:-1].endswith(" ")
    assert svg.MAX_LABEL_WIDTH - 12 < svg.text_width(shown) <= svg.MAX_LABEL_WIDTH
    title = cut[0].find(f"{NS}title")
    assert title is not None and title.text == absurd
    assert "&lt;and&gt;" in chart  # escaped, in the label and in its title
    # The one that fits has no title of its own.
    whole = [el for el in root.iter(f"{NS}text") if el.text == "general"]
    assert len(whole) == 1 and whole[0].find(f"{NS}title") is None
    (width, height), boxes = _boxes(chart)
    assert all(0 <= x <= width and 0 <= y <= height for _, c in boxes for x, y in c)


def test_a_cut_never_parts_a_letter_from_its_marks() -> None:
    # Arabic with its vowel signs (combining marks): the cut falls before a letter.
    text = "مَدِينَةُ " * 60
    for limit in range(60, 120):
        shown = svg.fit(text, limit)
        body = shown[:-1]
        assert shown.endswith(svg.ELLIPSIS) and svg.text_width(shown) <= limit
        assert text.startswith(body) and not unicodedata.combining(text[len(body)])


def test_right_to_left_texts_end_at_their_tick_like_left_to_right_ones() -> None:
    chart = svg.bar_chart("t", ["عام", "general"], [1.0, 2.0])
    root = _parse(chart)
    label = {el.text: el for el in root.iter(f"{NS}text") if "transform" in el.attrib}
    assert label["عام"].attrib["direction"] == "rtl"
    assert label["عام"].attrib["text-anchor"] == "start"  # its start is its right edge
    assert "direction" not in label["general"].attrib
    assert label["general"].attrib["text-anchor"] == "end"


def test_the_width_estimate_counts_arabic_by_its_joined_and_final_forms() -> None:
    # Seen joined inside a word and at its end (DejaVu Sans: 0.93 and 1.22 em).
    assert svg.text_width("سس", 10) == pytest.approx(9.5 + 12.5)
    # Vowel signs and direction marks take no room.
    assert svg.text_width("مَ\u200f", 10) == svg.text_width("م", 10)
