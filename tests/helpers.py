"""Shared test helpers: running pages under AppTest, and reading what their charts were given."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 180  # seconds for one script run under AppTest: a cold cache on a slow 2-core machine


def open_page(path: str, query: dict[str, str] | None = None) -> AppTest:
    """The app as a visitor lands on it: the entry script, the URL's query, then the page."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.run()
    if path != "pages/home.py":
        at.switch_page(path).run()
    return at


def charts(at: AppTest) -> list:
    return list(at.get("vega_lite_chart"))


def chart_tables(at: AppTest) -> Iterator[pa.Table]:
    """Every data set every chart on the page received, as Arrow tables."""
    for chart in charts(at):
        for dataset in chart.proto.datasets:
            yield pa.ipc.open_stream(dataset.data.data).read_all()
        if chart.proto.data.data:
            yield pa.ipc.open_stream(chart.proto.data.data).read_all()


def nonfinite_cells(at: AppTest) -> list[str]:
    """Where any chart received ±inf or NaN, also inside inline spec values: DESIGN rule 5."""
    bad = []
    for table in chart_tables(at):
        for name, column in zip(table.column_names, table.columns):
            for value in column.to_pylist():
                if isinstance(value, float) and not math.isfinite(value):
                    bad.append(f"{name}={value}")
    for chart in charts(at):
        bad += [f"spec value {v}" for v in _numbers(json.loads(chart.proto.spec)) if not math.isfinite(v)]
    return bad


def _numbers(node) -> Iterator[float]:
    if isinstance(node, float):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _numbers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _numbers(value)


def walk_marks(spec: dict) -> Iterator[dict]:
    """Every single-view (mark-bearing) unit in a Vega-Lite spec, however layered or concatenated."""
    if "mark" in spec:
        yield spec
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for child in spec.get(key, []):
            yield from walk_marks(child)
    if "spec" in spec:
        yield from walk_marks(spec["spec"])
