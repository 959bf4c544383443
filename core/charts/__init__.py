"""Altair figure builders: DataFrame in, alt.Chart out, the same for the page and the figure export.

This package holds what every figure shares: one colour-blind-safe palette (Okabe and Ito, 2008) in
which the same thing has the same colour on every page, and small helpers for log axes and markers.
Each concept's builders live in core/charts/<concept>.py, beside core/<concept>.py.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any

import altair as alt
import pandas as pd

from content import DEFAULT_LANG, words
from core import altair_speed  # noqa: F401  (one Altair converter per process: see its docstring)
from core.nonfinite import finite_rows

OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "grey": "#999999",
}

# One colour per thing, across every page: SGD is blue everywhere, Adam vermillion, "mean" green...
COLORS = {
    "sgd": OKABE_ITO["blue"], "momentum": OKABE_ITO["sky"], "adam": OKABE_ITO["vermillion"],
    "adamw": OKABE_ITO["orange"], "rmsprop": OKABE_ITO["green"], "adagrad": OKABE_ITO["purple"],
    "float32": OKABE_ITO["blue"], "float64": OKABE_ITO["orange"],
    "mean": OKABE_ITO["green"], "sum": OKABE_ITO["purple"],
    "flushed to zero": OKABE_ITO["vermillion"], "subnormal (precision lost)": OKABE_ITO["orange"],
    "normal": OKABE_ITO["blue"], "overflow to inf": OKABE_ITO["purple"],
}

WIDTH = "container"  # charts take their column's width; the export sets a fixed one
HEIGHT = 300


@functools.cache
def _label_table(page: str, lang: str) -> dict[str, Any]:
    """Every id's label for page in lang: the page's [charts.labels] over app.toml's, the language's over English's."""
    table: dict[str, Any] = {}
    for language in dict.fromkeys((DEFAULT_LANG, lang)):
        for source in ("app", page):
            found = words(source, language).get("charts.labels") if language == DEFAULT_LANG else \
                _own(source, language)
            table.update(found if isinstance(found, dict) else {})
    return table


def _own(page: str, lang: str) -> Any:
    """A language's own [charts.labels] table of a page (no fallback to English: that is layered below it)."""
    from content import _dig, _load

    try:
        return _dig(_load(page, lang), "charts.labels")
    except (KeyError, TypeError, IndexError, ValueError):
        return None


class Labels:
    """A page's category labels in the reader's language (DESIGN rule 8).

    Data keep stable ids (a run's name, a category: "flushed to zero", "SGD, mean, lr"), in CSV downloads and exports
    too; a chart shows each id as content/<lang>/<page>.toml's [charts.labels] says, else as content/<lang>/app.toml's,
    else as English does, else as the id itself.
    """

    def __init__(self, page: str):
        self.page = page

    def __call__(self, value: Any) -> Any:
        return _label_table(self.page, words(self.page).lang).get(value, value) if isinstance(value, str) else value

    def frame(self, df: pd.DataFrame, *fields: str) -> pd.DataFrame:
        """df with each field's ids replaced by their labels (a copy); each distinct id is looked up once."""
        return df.assign(**{f: df[f].map({v: self(v) for v in df[f].unique()}) for f in fields if f in df})

    def domain(self, ids: Iterable[Any]) -> list[Any]:
        return [self(i) for i in ids]


def color(field: str, domain: list[str] | tuple[str, ...], title: str | None = None,
          labels: Labels | None = None) -> alt.Color:
    """A colour encoding whose every name keeps its house colour (unknown names get the leftovers); with labels, the
    field holds labels (Labels.frame) and the domain is given by id."""
    spare = iter(c for c in OKABE_ITO.values() if c not in COLORS.values())
    shown = labels.domain(domain) if labels else list(domain)
    return alt.Color(
        f"{field}:N",
        scale=alt.Scale(domain=shown, range=[COLORS.get(d) or next(spare, "#666666") for d in domain]),
        title=title,
        legend=alt.Legend(orient="right", labelLimit=260),
    )


def log_axis(field: str, title: str, *, fmt: str = ".0e") -> alt.X:
    return alt.X(field, scale=alt.Scale(type="log"), axis=alt.Axis(format=fmt, grid=True), title=title)


def vertical_marker(value: float, label: str) -> alt.LayerChart:
    """A dashed vertical rule at value with a label: 'your setting' on a sweep."""
    data = pd.DataFrame({"x": [value], "label": [label]})
    app = words("app")
    tooltip = [alt.Tooltip("label:N", title=app["charts.marker"]),
               alt.Tooltip("x:Q", title=app["charts.at"], format=".3g")]
    base = alt.Chart(data).encode(x="x:Q", tooltip=tooltip)
    rule = base.mark_rule(strokeDash=[6, 3], color=OKABE_ITO["black"])
    text = base.mark_text(align="left", dx=4, dy=4, baseline="top").encode(text="label:N", y=alt.value(0))
    return rule + text


def chartable(df: pd.DataFrame) -> pd.DataFrame:
    """The rows a chart may draw: DESIGN rule 5, no ±inf or NaN reaches Vega."""
    return finite_rows(df).reset_index(drop=True)


def lines_of(label: str, width: int = 18) -> list[str]:
    """A label on lines of at most `width` characters, broken after a space or an opening parenthesis (a piece
    with no such place in it stays whole, however long)."""
    lines, line = [], ""
    for piece in re.findall(r"[^\s(]*\(|\S+\s*|\s+", label):  # "word(", "word " or spaces, in order
        if line.strip() and len((line + piece).rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece if line or piece.strip() else ""
    return [*lines, line.rstrip()]


def label_lines(labels: Iterable[str], width: int = 18) -> str:
    """An axis labelExpr that draws each of these category labels on lines of at most `width` characters
    (lines_of): side by side, long labels ran into each other on a phone. Any other label stays as it is."""
    cases = [f"datum.label === {json.dumps(label, ensure_ascii=False)} ? "
             f"{json.dumps(lines, ensure_ascii=False)} : "
             for label in labels if len(lines := lines_of(label, width)) > 1]
    return "".join(cases) + "datum.label"
