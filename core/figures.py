"""One registry of figures per concept: the page and the figure export draw the same chart from the same settings.

Each core/charts/<page>.py exports FIGURES, a dict from a figure's name to a Figure. `settings` is
a plain dict holding every control of the page by its Control.key, plus "seed". The page calls
`page.figure(name)`; the export (core/export.py) calls `render(figure, settings)` with a preset's
settings; both run the same `data` and the same `chart`.

The page caches each figure's Vega-Lite spec by exactly the settings it reads (its data's `inputs`
and its `chart_inputs`): building and validating an Altair spec costs more than most experiments
here, so a control that a figure does not read must not rebuild it.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd

from content import words

Settings = Mapping[str, Any]


class UndeclaredSetting(KeyError):
    pass


class _Declared(dict):
    """The settings a chart may read; reading any other is a bug the cache would hide, so it fails loudly."""

    def __missing__(self, key: str) -> Any:
        raise UndeclaredSetting(f"a chart read setting {key!r}: add it to its Figure's chart_inputs")


@dataclass(frozen=True)
class Figure:
    inputs: tuple[str, ...]  # the settings the data depends on: its cache key, so other controls do not recompute it
    data: Callable[..., pd.DataFrame]  # data(**{k: settings[k] for k in inputs}) -> the tidy DataFrame charted
    chart: Callable[[pd.DataFrame, Settings], alt.TopLevelMixin]  # chart(df, settings): draws, never recomputes
    chart_inputs: tuple[str, ...] = ()  # settings the chart reads beyond `inputs` (a marker at "your s", say)
    experiment: str = ""  # the content key of the experiment it belongs to: where a handout places it

    def arguments(self, settings: Settings) -> dict[str, Any]:
        return {key: settings[key] for key in self.inputs}

    def view(self, settings: Settings) -> dict[str, Any]:
        """Everything the chart may read: the data's inputs and its own chart_inputs."""
        return _Declared({key: settings[key] for key in (*self.inputs, *self.chart_inputs)})


def render(figure: Figure, settings: Settings) -> tuple[pd.DataFrame, alt.TopLevelMixin]:
    """The figure's data and chart at these settings, without Streamlit."""
    df = figure.data(**figure.arguments(settings))
    return df, figure.chart(df, figure.view(settings))


def registry(page: str) -> dict[str, Figure]:
    """FIGURES of core/charts/<page>.py."""
    return importlib.import_module(f"core.charts.{page}").FIGURES


def spec(page: str, name: str, settings: Settings) -> tuple[pd.DataFrame, dict]:
    """The figure's data and its Vega-Lite spec (validated once, here): what the page caches and draws."""
    df, chart = render(registry(page)[name], settings)
    return df, fixed_titles(finish(chart.to_dict()))


# ---- What every figure gets before it is drawn (the page) or written (the export) -------------------------------
#
# Builders say what a chart shows; these pure functions make it read at every width: a title that wraps to the
# width it has, legends below the plot so a phone keeps the plot wide, dark text, larger text on a projector, and a
# text description made from the data for screen readers. ui.figure_spec and spec() apply the same ones.

INK = "#1f2328"  # the charts' text: 15.8:1 on white (Streamlit's grey #808495 is 3.7:1)
FONT = {"normal": {"label": 12, "title": 13, "chart": 15}, "present": {"label": 18, "title": 20, "chart": 24}}
LEGEND_KEYS = ("color", "fill", "stroke", "strokeDash", "shape", "size", "opacity")


# Chinese characters and their punctuation: a line may break between any two
CJK = "\u2e80-\u9fff\u3000-\u303f\uff00-\uffef"
_TOKEN = re.compile(rf"[{CJK}]|[^\s{CJK}]+")


def _width(token: str) -> int:
    """A token's width in average Latin glyphs: a Chinese character is about two."""
    return sum(2 if re.match(rf"[{CJK}]", ch) else 1 for ch in token)


def wrap(text: str, chars: int) -> list[str]:
    """text in lines of at most chars average glyphs, broken at spaces and beside Chinese characters (which need no
    space to break at); a longer word gets its own line."""
    lines: list[str] = []
    width, end = 0, 0
    for match in _TOKEN.finditer(text):
        token, spaced = match.group(), match.start() > end
        end = match.end()
        gap = " " if spaced and lines else ""
        if lines and width + len(gap) + _width(token) <= chars:
            lines[-1] += gap + token
            width += len(gap) + _width(token)
        else:
            lines.append(token)
            width = _width(token)
    return lines or [""]


FIXED_TITLE_WIDTH = {"normal": 320, "present": 900}  # px a concatenated chart's title may take: a phone, a projector


def _wrapped_title(text: str, font: int, responsive: bool, mode: str = "normal") -> dict:
    """A title whose lines follow the chart's width: Vega re-wraps it whenever the width signal changes. A
    concatenated chart has no one width to follow: its title is wrapped once, for a phone, or in presentation mode
    for a projector (there a phone's lines made the title three lines tall, and pushed the chart off the screen)."""
    chinese = bool(re.search(rf"[{CJK}]", text))
    per_char = 0.55 * font  # a generous average glyph width for the sans-serif Vega draws titles in
    if not responsive:
        return {"text": wrap(text, max(24, int(FIXED_TITLE_WIDTH[mode] / per_char)))}
    literal = json.dumps(text)
    if chinese:  # a Chinese glyph is a font size wide, and a line may break before any of them; a line wider than
        # the plot is cut short with "…" on a phone, so the estimate, exact here, gets no margin beyond the plot
        chars = f"max(8, floor(width / {font:.2f}))"
        brk = f"(\\\\s+|$|(?=[{CJK}]))"
    else:
        chars = f"max(16, floor((width + 50) / {per_char:.2f}))"
        brk = "(\\\\s+|$)"
    expr = (f"split(trim(replace({literal}, regexp('(.{{1,' + {chars} + '}})" + brk + "', 'g'), '$1\\n')), '\\n')")
    return {"text": {"expr": expr}}


# Where a spec keeps its rows: a finished spec shares them with the one it was made from, and a walk looking for
# encodings skips them (a figure's spec is mostly rows; copying and walking them was half of finish()'s time).
ROWS = frozenset({"datasets", "values"})


def _walk(node: Any, fn: Callable[[dict], None]) -> None:
    if isinstance(node, dict):
        fn(node)
        for key, value in node.items():
            if key not in ROWS:
                _walk(value, fn)
    elif isinstance(node, list):
        for value in node:
            _walk(value, fn)


def _copy(node: Any) -> Any:
    """A deep copy of a spec's structure, its rows shared: finish() never writes to a row."""
    if isinstance(node, dict):
        return {key: value if key in ROWS else _copy(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_copy(value) for value in node]
    return node


def _concatenated(spec: dict) -> bool:
    return any(k in spec for k in ("hconcat", "vconcat", "concat", "facet", "repeat"))


def finish(spec: dict, present: bool = False, description: str | None = None) -> dict:
    """The spec as every reader gets it: wrapped title, legends below the plot, dark text, the mode's font sizes,
    and its text description (made by describe() when not given). Pure: returns a new dict, which shares the
    rows of its data with the given one."""
    spec = _copy(spec)
    mode = "present" if present else "normal"
    font = FONT[mode]
    responsive = not _concatenated(spec)
    title, text = spec.get("title"), _title_text(spec)
    if text:
        kept = title if isinstance(title, dict) else {}
        spec["title"] = {**kept, **_wrapped_title(text, font["chart"], responsive, mode)}

    def legend_below(node: dict) -> None:
        encoding = node.get("encoding")
        if not isinstance(encoding, dict):
            return
        for key in LEGEND_KEYS:
            channel = encoding.get(key)
            if isinstance(channel, dict) and channel.get("legend", {}) is not None and "field" in channel:
                legend = dict(channel.get("legend") or {})
                legend.update(orient="bottom", direction="vertical", labelLimit=0, titleLimit=0,
                              columns={"expr": f"max(1, floor((width + 40) / {column}))"} if responsive else 1)
                if channel.get("type") == "quantitative":  # a colour ramp lies along the plot, not 200 px down
                    legend.update(direction="horizontal", columns=1)
                channel["legend"] = legend

    column = 16 * font["label"]  # px per legend column: a long label beside its symbol, before the next one
    _walk(spec, legend_below)
    config = spec.setdefault("config", {})
    text = {"labelColor": INK, "titleColor": INK, "labelFontSize": font["label"], "titleFontSize": font["title"]}
    config["axis"] = {**config.get("axis", {}), **text, "labelLimit": 0, "titleLimit": 0}
    config["legend"] = {**config.get("legend", {}), **text, "symbolSize": 120 if present else 80,
                        "layout": {"bottom": {"anchor": "start", "direction": "vertical", "margin": 6}}}
    config["header"] = {**config.get("header", {}), **text}
    config["title"] = {**config.get("title", {}), "color": INK, "fontSize": font["chart"], "limit": 0,
                       "anchor": "start", "lineHeight": round(font["chart"] * 1.25)}
    config["text"] = {**config.get("text", {}), "color": INK, "fontSize": font["label"]}
    spec["description"] = description if description is not None else describe(spec)
    return spec


def fixed_titles(spec: dict, width: int = 720) -> dict:
    """The spec with its width-following title written out as lines for a figure of this width: an offline
    renderer sizes a fixed figure once, so the lines must be known before it lays the chart out."""
    # "pad": the plot keeps its size and the figure grows around title, axes and legend (fitting a fixed figure
    # around a legend below the plot pushed the title out of the picture)
    spec = {**spec, "autosize": {"type": "pad"}}
    title = spec.get("title")
    if not (isinstance(title, dict) and isinstance(title.get("text"), dict)):
        return spec
    font = spec.get("config", {}).get("title", {}).get("fontSize", FONT["normal"]["chart"])
    lines = wrap(_title_text(spec), max(24, int(width / (0.55 * font))))
    return {**spec, "title": {**title, "text": lines}}


# ---- A text alternative from the data --------------------------------------------------------------------------

def _units(spec: dict, data: Any = None) -> Iterator[tuple[dict, Any]]:
    """Every mark-bearing unit with the data it draws (its own, else its parent's)."""
    data = spec.get("data", data)
    if "mark" in spec:
        yield spec, data
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for child in spec.get(key, []):
            yield from _units(child, data)
    if isinstance(spec.get("spec"), dict):
        yield from _units(spec["spec"], data)


def _rows(data: Any, datasets: dict) -> list[dict]:
    if not isinstance(data, dict):
        return []
    if "values" in data and isinstance(data["values"], list):
        return data["values"]
    return datasets.get(data.get("name"), []) if "name" in data else []


def _field(channel: Any) -> tuple[str | None, str | None, str | None]:
    """(field, title, type) of an encoding channel."""
    if not isinstance(channel, dict) or "field" not in channel:
        return None, None, None
    field = channel["field"]
    if isinstance(field, dict):
        return None, None, None
    title = channel.get("title")
    if title is None and isinstance(channel.get("axis"), dict):
        title = channel["axis"].get("title")
    return str(field), (title if isinstance(title, str) else " ".join(title) if isinstance(title, list) else field), \
        channel.get("type")


def _number(value: float) -> str:
    return f"{value:.3g}"


def _names(values: list[str], limit: int = 6) -> str:
    w = words("app")
    shown, comma = [str(v) for v in values[:limit]], w["describe.comma"]
    if len(values) > limit:
        return comma.join(shown) + f" {w('describe.more', n=len(values) - limit)}"
    if len(shown) == 1:
        return shown[0]
    return comma.join(shown[:-1]) + f" {w['describe.and']} " + shown[-1]


def _title_text(spec: dict) -> str:
    title = spec.get("title")
    if isinstance(title, dict):
        title = title.get("text")
        if isinstance(title, dict):  # an expression: the literal it wraps
            match = re.search(r'replace\(("(?:[^"\\]|\\.)*")', title.get("expr", ""))
            title = json.loads(match.group(1)) if match else ""
    if isinstance(title, list):
        title = " ".join(title)
    return (title or "").strip()


def steady(spec: dict) -> tuple[dict, str]:
    """(the spec as a page sends it, its full text description).

    A browser that gets a chart whose spec is unchanged apart from its rows swaps the rows into the chart it
    shows; any other change, and it parses, compiles and draws the chart anew, most of a redraw's time. Altair
    names each data set by a hash of its rows, so every new value was a new spec. Here the data sets are named by
    their place, and the spec's description (the chart's label for a screen reader) says what is plotted against
    what and the series, without the ranges the data span; the full description goes beside the chart.
    """
    described = spec.get("description") or describe(spec)
    names = {old: f"data-{i}" for i, old in enumerate(spec.get("datasets", {}))}

    def rename(node: dict) -> None:
        data = node.get("data")
        if isinstance(data, dict) and data.get("name") in names:
            node["data"] = {**data, "name": names[data["name"]]}

    spec = _copy(spec)
    _walk(spec, rename)
    if names:
        spec["datasets"] = {names[old]: rows for old, rows in spec["datasets"].items()}
    spec["description"] = describe(spec, numbers=False)
    return spec, described


def describe(spec: dict, numbers: bool = True) -> str:
    """One or two sentences a screen reader can read instead of the chart, made from the spec and its data:
    what is plotted against what, the ranges the data span (unless not numbers), and the series.
    Words from content/en/app.toml."""
    w = words("app")
    datasets = spec.get("datasets", {})
    parts, seen_pairs, series, untitled = [], [], {}, set()
    ranges: dict[str, tuple[float, float]] = {}
    titles: dict[str, str] = {}
    for unit, data in _units(spec):
        rows = _rows(data, datasets)
        encoding = unit.get("encoding", {}) or {}
        x, x_title, x_type = _field(encoding.get("x"))
        y, y_title, y_type = _field(encoding.get("y"))
        if x and y and (x_title, y_title) not in seen_pairs and len(rows) > 1:
            named = x_title != x or y_title != y  # a pair the builder titled is the one the reader sees
            seen_pairs.insert(len([p for p in seen_pairs if p[2]]) if named else len(seen_pairs),
                              (x_title, y_title, named))
        x2, _, _ = _field(encoding.get("x2"))
        y2, _, _ = _field(encoding.get("y2"))
        for fields, name, kind in (((x, x2), x_title, x_type), ((y, y2), y_title, y_type)):
            if fields[0] and kind == "quantitative":
                values = [r[f] for r in rows for f in fields if f and isinstance(r.get(f), (int, float))
                          and not isinstance(r.get(f), bool) and math.isfinite(r[f])]
                if values and len(rows) > 1:
                    lo, hi = ranges.get(name, (math.inf, -math.inf))
                    ranges[name] = (min(lo, min(values)), max(hi, max(values)))
                    titles[name] = name
        for key in ("color", "strokeDash"):
            field, name, kind = _field(encoding.get(key))
            if field and rows and kind in ("nominal", "ordinal"):
                names = series.setdefault(name or field, [])
                if not name or name == field:
                    untitled.add(name or field)
                for r in rows:
                    if r.get(field) is not None and r[field] not in names:
                        names.append(r[field])
    title = _title_text(spec)
    lead = w("describe.lead", title=title) if title else ""
    if seen_pairs:
        x_title, y_title, _ = seen_pairs[0]
        parts.append(w("describe.against", y=y_title, x=x_title))
        for name, axis in ((x_title, "x"), (y_title, "y")):
            if numbers and name in ranges and ranges[name][0] < ranges[name][1]:
                lo, hi = ranges[name]
                parts.append(w(f"describe.{axis}_range", **{axis: name}, lo=_number(lo), hi=_number(hi)))
    for name, values in [item for item in series.items() if len(item[1]) > 1][:1]:
        if len(values) > 1:  # a legend with no title of its own is named by its field only where the words want it
            key = "describe.series" if name not in untitled else "describe.series_plain"
            parts.append(w(key, field=name, names=_names(values)))
    body = w["describe.sep"].join(parts)
    sentence = (body[:1].upper() + body[1:] + w["describe.end"]) if body else ""
    return " ".join(s for s in (lead, sentence) if s)
