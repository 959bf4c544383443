"""The Streamlit glue every page shares: the blocks of the page template, in the template's order.

A concept page reads like a description of its UI:

    page = ui.Page("loss_scaling", core.CONTROLS, FIGURES)
    page.header()                      # 1. the question
    page.predict()                     # 2. predict first, 3. the short answer
    page.experiment("update")          # 4. an experiment: heading ...
    s = page.control("scale_exp")      #    ... its controls (bound to the URL) ...
    df = page.figure("sweep")          #    ... one figure: cached core call, chart, CSV and SVG ...
    page.reading("update", ratio=...)  #    ... and the paragraph that reads it
    page.misconceptions(...)           # 5. each wrong claim beside its live number
    page.show_code(core.sweep)         # 6. the source of the very function that ran
    page.takeaways()                   # 7. takeaways and references

Everything with words takes them from content/<lang>/<page>.toml.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from content import words
from core import figures
from core.controls import Control, defaults, find
from core.export import to_svg
from core.figures import Figure
from core.readings import Readout
from ui.cache import background, memo, run
from ui.controls import presets_block, render
from ui.workers import compute, pool

__all__ = ["Page", "run", "seed"]

APP = words("app")
PRESENT_HEIGHT = 480  # chart height in presentation mode, for the back of a lecture hall


def seed() -> int:
    """The seed control shared by all pages (streamlit_app.py draws it in the sidebar)."""
    return int(st.session_state.get("seed", 0))


def figure_spec(page: str, name: str, view: dict[str, Any]) -> dict:
    """The Vega-Lite spec of a page's figure, ready for st.vega_lite_chart, shared by every session.

    Built in a worker from the cached data (core.worker.chart_spec); its data sets are then turned into Arrow
    bytes once, as Streamlit would on every rerun, so a rerun that finds it here sends it as it is.
    """
    from streamlit import dataframe_util

    from core import worker

    def make() -> dict:
        figure = figures.registry(page)[name]
        data = run(figure.data, **figure.arguments(view))
        spec = compute(worker.chart_spec, page, name, data, view)
        if "datasets" in spec:
            spec["datasets"] = {key: dataframe_util.convert_anything_to_arrow_bytes(values)
                                for key, values in spec["datasets"].items()}
        return spec

    return memo(("figure_spec", page, name, tuple(sorted(view.items()))), make)


def prefetch_figure(page: str, name: str, view: dict[str, Any]) -> None:
    with contextlib.suppress(Exception):  # the page computes it again and shows the failure where it belongs
        figure_spec(page, name, view)


@functools.cache
def source(fn: Callable) -> str:
    """The source of fn, read once: "Show the code" prints the code that runs."""
    return inspect.getsource(fn)


def ensure_app_shell() -> None:
    """Make sure this page runs inside streamlit_app.py, never on its own.

    Streamlit still has its older, folder-based navigation: while no run has called st.navigation
    since the server started, a request for /loss_scaling runs pages/loss_scaling.py alone, without
    the entry script, so the seed, the presentation toggle and the navigation are missing. A deep
    link as a server's first request would land there. Switch to st.navigation's mode and rerun.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def presenting() -> bool:
    """Presentation mode (the sidebar toggle, `?present=true`): controls and charts, large; no prose."""
    return bool(st.session_state.get("present", False))


class Page:
    def __init__(self, name: str, controls: tuple[Control, ...] = (), figures: dict[str, Figure] | None = None):
        ensure_app_shell()
        self.name, self.table, self.words, self.figures = name, controls, words(name), figures or {}
        module = importlib.import_module(f"core.{name}")
        self.presets: dict[str, dict] = getattr(module, "PRESETS", {})
        self.readers: dict[str, Callable[..., Readout]] = getattr(module, "READINGS", {})
        self.seed = seed()
        self.present = presenting()
        # Every control's value as the page has drawn it so far (defaults until then), plus the seed:
        # the settings a figure reads, the same dict the export builds from a preset.
        self.settings: dict[str, Any] = {**defaults(controls), "seed": self.seed}
        self.prefetch()

    def prefetch(self) -> None:
        """Start every figure of the page computing at once, in the background, before the page asks for them.

        On a rerun every widget's value is already in the session state, so the settings the page will draw
        are known now. The figures' experiments then run side by side in the worker processes while the
        script draws the page, and each page.figure(...) waits only for what is not finished yet. The first
        run of a session, whose widgets do not exist yet, computes as it goes.
        """
        state = st.session_state
        keys = [f"{self.name}_{c.key}" for c in self.table]
        if not self.figures or pool() is None or not all(key in state for key in keys):
            return
        settings = {c.key: state[key] for c, key in zip(self.table, keys)} | {"seed": self.seed}
        for name, figure in self.figures.items():
            background(prefetch_figure, self.name, name, dict(figure.view(settings)))

    # 1. The question, and the page's presets
    def header(self) -> None:
        st.title(self.words["title"])
        if not self.present:
            st.markdown(f"> {self.words['question']}")
        if self.presets:
            presets_block(self.name, self.table, self.presets, self.words)

    # 2. Predict first, then 3. the short answer
    def predict(self, **values: Any) -> None:
        if self.present:
            return
        w = self.words
        with st.container(border=True):
            options = w["predict.options"]
            choice = st.radio(w["predict.prompt"], options, index=None, key=f"{self.name}_predict")
            hurry = st.checkbox(APP["predict.reveal"], key=f"{self.name}_reveal")
            if choice is not None:
                right = options.index(choice) == w["predict.answer"]
                (st.success if right else st.warning)(APP["predict.right" if right else "predict.wrong"])
            if choice is not None or hurry:
                st.markdown(f"**{APP['predict.short_answer']}** {w('short_answer', **values)}")

    # 4. Experiments
    def experiment(self, key: str) -> None:
        st.header(self.words[f"experiments.{key}.title"], divider="gray")
        intro = self.words.get(f"experiments.{key}.intro")
        if intro and not self.present:
            st.markdown(intro)

    def control(self, key: str) -> Any:
        self.settings[key] = render(self.name, find(self.table, key), self.words)
        return self.settings[key]

    def controls(self, *keys: str) -> tuple[Any, ...]:
        """Several controls side by side, in one row."""
        values = []
        for column, key in zip(st.columns(len(keys)), keys):
            with column:
                values.append(self.control(key))
        return tuple(values)

    def run(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return run(fn, *args, **kwargs)

    def figure(self, name: str) -> pd.DataFrame:
        """Draw FIGURES[name] at the current settings and return its data.

        The data is cached by the settings it reads, the spec by those and the chart's own: moving a
        marker rebuilds a chart without rerunning its experiment.
        """
        figure = self.figures[name]
        data = run(figure.data, **figure.arguments(self.settings))
        view = dict(figure.view(self.settings))
        spec = figure_spec(self.name, name, view)
        if self.present:
            spec = {**spec, "height": PRESENT_HEIGHT}
        st.vega_lite_chart(spec=spec, width="stretch", key=f"{self.name}_{name}_chart")
        self.download(data, name, view)
        return data

    def download(self, data: pd.DataFrame, name: str, view: dict[str, Any]) -> None:
        """The chart's data as CSV and the figure as SVG, both made only when clicked."""
        if self.present:
            return
        with st.container(horizontal=True):
            st.download_button(
                APP["chart.download_csv"], data=lambda: data.to_csv(index=False), file_name=f"{self.name}_{name}.csv",
                mime="text/csv", on_click="ignore", key=f"{self.name}_{name}_csv", icon=":material/download:")
            st.download_button(
                APP["chart.download_svg"], data=lambda: to_svg(self.svg_spec(name, data, view)),
                file_name=f"{self.name}_{name}.svg", mime="image/svg+xml", on_click="ignore",
                key=f"{self.name}_{name}_svg", icon=":material/image:")

    def svg_spec(self, name: str, data: pd.DataFrame, view: dict[str, Any]) -> dict:
        from core import worker

        spec = worker.chart_spec(self.name, name, data, view)
        return {**spec, "height": PRESENT_HEIGHT} if self.present else spec

    def metrics(self, items: dict[str, str]) -> None:
        """A row of live numbers: {label key under metrics.: formatted value}."""
        for column, (key, value) in zip(st.columns(len(items)), items.items()):
            column.metric(self.words[f"metrics.{key}"], value)

    def readout(self, key: str) -> Readout:
        """Experiment key's metrics and readings, chosen and filled in core (READINGS[key]) at the current settings.

        The reader gets the page's own cached run, so it reuses what the figures computed.
        """
        readout = self.readers[key](dict(self.settings), run)
        self.show(readout)
        return readout

    def show(self, readout: Readout) -> None:
        if readout.metrics:
            self.metrics(dict(readout.metrics))
        for reading in readout.readings:
            text = self.words(reading.key, **reading.values)
            if reading.tone == "warning":
                st.warning(text, icon=":material/warning:")
            elif not self.present:
                (st.caption if reading.tone == "note" else st.markdown)(text)

    def reading(self, key: str, **values: Any) -> None:
        if self.present:
            return
        st.markdown(self.words(f"experiments.{key}.reading", **values))

    def nonfinite(self, found: dict[Any, Any], *, what: str = "step") -> None:
        """Say where runs went non-finite; the chart beside it shows only the finite part."""
        for run_name, at in found.items():
            st.warning(APP("nonfinite", run=run_name, what=what, at=at), icon=":material/warning:")

    # 5. Misconceptions
    def misconceptions(self, **values: Any) -> None:
        if self.present:
            return
        st.header(APP["misconceptions.title"], divider="gray")
        for item in self.words["misconceptions"]:
            with st.container(border=True):
                st.markdown(f"**{APP['misconceptions.claim']}** ~~{item['claim']}~~")
                st.markdown(f"**{APP['misconceptions.live']}** {item['evidence'].format(**values)}")

    # 6. Show the code
    def show_code(self, *functions: Callable) -> None:
        if self.present:
            return
        st.header(APP["code.title"], divider="gray")
        st.caption(APP["code.caption"])
        for fn in functions:
            with st.expander(f"`{fn.__module__}.{fn.__qualname__}`"):
                st.code(source(fn), language="python")

    # 7. Takeaways and references
    def takeaways(self) -> None:
        if self.present:
            return
        st.header(APP["takeaways.title"], divider="gray")
        st.markdown("\n".join(f"- {t}" for t in self.words["takeaways"]))
        st.subheader(APP["takeaways.references"])
        st.markdown("\n".join(f"- [{r['title']}]({r['url']})" for r in self.words["references"]))
