"""Shared test helpers: running pages under AppTest, and reading what their charts were given."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from streamlit.testing.v1 import AppTest, app_test
from streamlit.testing.v1.element_tree import parse_tree_from_messages
from streamlit.testing.v1.local_script_runner import LocalScriptRunner

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 180  # seconds for one script run under AppTest: a cold cache on a slow 2-core machine


class _BrowserView(LocalScriptRunner):
    """AppTest's runner, keeping the page as a browser does across fragment runs.

    AppTest builds its element tree from the last run's messages only. After a run of some fragments alone (a
    control's callback reruns only the parts of the page that read it), that is those parts and nothing else, and
    the next interaction would send the widget states of those parts alone. A browser keeps every other element and
    replaces the elements of the fragments that ran; so does this view (messages kept per session, by delta path).
    """

    _views: dict[int, dict[tuple[int, ...], object]] = {}
    _partial: dict[int, bool] = {}

    def __init__(self, script_path, session_state, *args, **kwargs):
        super().__init__(script_path, session_state, *args, **kwargs)
        self._session = id(session_state)  # AppTest's own, the same object in every run of one AppTest

    def run(self, *args, **kwargs):
        tree = super().run(*args, **kwargs)
        started = [data for event, data in zip(self.events, self.event_data) if event.name == "SCRIPT_STARTED"]
        ran = set((started[-1].get("fragment_ids_this_run") or ()) if started else ())
        self._partial[self._session] = bool(ran)
        deltas = {tuple(m.metadata.delta_path): m for m in self.forward_msgs() if m.HasField("delta")}
        view = self._views.get(self._session)
        if ran and view is not None:
            kept = {path: m for path, m in view.items() if m.delta.fragment_id not in ran}
            deltas = {**kept, **deltas}
            tree = parse_tree_from_messages([deltas[path] for path in sorted(deltas)])
        self._views.pop(self._session, None)
        self._views[self._session] = deltas
        while len(self._views) > 64:  # the AppTests of a test or two: older ones are gone
            self._partial.pop(next(iter(self._views)), None)
            del self._views[next(iter(self._views))]
        return tree


app_test.LocalScriptRunner = _BrowserView


def ran_parts(at: AppTest) -> bool:
    """Whether the last run of at ran some fragments alone, not the whole page."""
    return _BrowserView._partial.get(id(at._session_state), False)


def open_page(path: str, query: dict[str, str] | None = None) -> AppTest:
    """The app as a visitor lands on it: the entry script, the URL's query, then the page."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.run()
    if path != "pages/home.py":
        at.switch_page(path).run()
    return at


CONTENT = ("markdown", "vega_lite_chart", "metric", "alert", "warning", "success", "info", "error", "caption", "code",
           "text", "html", "header", "subheader", "title", "exception")


def page_view(at: AppTest) -> list[tuple[str, str]]:
    """Every element that shows something (not the widgets), in page order, with everything it shows."""
    out: list[tuple[str, str]] = []

    def walk(node) -> None:
        kind = getattr(node, "type", "")
        if kind in CONTENT:
            out.append((kind, str(getattr(node, "proto", ""))))
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(at._tree)
    return out


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
