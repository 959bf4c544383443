"""The Streamlit glue every page shares: the blocks of the page template, in the template's order.

A concept page reads like a description of its UI:

    page = ui.Page("loss_scaling", core.CONTROLS, FIGURES)
    page.header()                      # 1. the question
    page.predict()                     # 2. predict first, 3. the short answer

    @page.experiment("update")         # 4. an experiment: heading, then its body ...
    def update():
        page.control("scale_exp")      #    ... its controls (bound to the URL) ...
        page.figure("sweep")           #    ... one figure: cached core call, chart, CSV and SVG ...
        page.readout("update")         #    ... and its live numbers and the paragraphs that read them

    page.misconceptions()              # 5. each wrong claim beside its live number (READINGS in core)
    page.show_code(core.sweep)         # 6. the source of the very function that ran
    page.takeaways()                   # 7. takeaways and references

An experiment's body is a fragment: a control that moves reruns the parts of the page that read it (its
experiment, any other that reads it, the misconceptions, the share link), not the whole page (Page._moved).

Everything with words takes them from content/<lang>/<page>.toml.
"""

from __future__ import annotations

import contextlib
import functools
import html
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

import content
from content import words
from core import figures
from core.controls import Control, defaults, find, shown
from core.export import to_svg
from core.figures import Figure
from core.readings import Readout, evidence
from ui import links
from ui.cache import background, memo, readout, run
from ui.controls import presets_block, render
from ui.workers import compute, pool

__all__ = ["Page", "link_notes", "run", "seed"]

APP = words("app")
# Chart height in presentation mode: with 18 px text, a chart fits one 1024x768 screen under its pinned controls.
PRESENT_HEIGHT = 225


def seed() -> int:
    """The seed control shared by all pages (streamlit_app.py draws it in the sidebar)."""
    return int(st.session_state.get("seed", 0))


def figure_spec(page: str, name: str, view: dict[str, Any], present: bool = False,
                lang: str | None = None) -> tuple[dict, str]:
    """(the Vega-Lite spec of a page's figure, ready for st.vega_lite_chart, its full text description), shared by
    every session.

    Built and finished (title, legends, fonts, its text description: core.figures.finish) in a worker from the
    cached data (core.worker.chart_spec), then made steady (core.figures.steady: a move that changes only the
    rows lets the browser swap them in); its data sets are then turned into Arrow bytes once, as Streamlit would
    on every rerun, so a rerun that finds it here sends it as it is.
    """
    from streamlit import dataframe_util

    from core import worker

    def make() -> tuple[dict, str]:
        figure = figures.registry(page)[name]
        data = run(figure.data, **figure.arguments(view))
        spec, described = figures.steady(compute(worker.chart_spec, page, name, data, view, present=present,
                                                 present_height=PRESENT_HEIGHT, lang=lang))
        if "datasets" in spec:
            spec["datasets"] = {key: dataframe_util.convert_anything_to_arrow_bytes(values)
                                for key, values in spec["datasets"].items()}
        return spec, described

    lang = lang or content.current()  # a chart's words are the reader's: one spec per language
    return memo(("figure_spec", page, name, tuple(sorted(view.items())), present, lang), make)


def prefetch_figure(page: str, name: str, view: dict[str, Any], present: bool, lang: str) -> None:
    with contextlib.suppress(Exception):  # the page computes it again and shows the failure where it belongs
        figure_spec(page, name, view, present, lang)


@functools.cache
def source(fn: Callable) -> str:
    """The source of fn, read once: "Show the code" prints the code that runs."""
    return inspect.getsource(fn)


def embedded_section() -> str | None:
    """`?embed=true&section=<experiment key>`: the page shows that one experiment, its controls and charts."""
    if str(links.raw_param("embed") or "").lower() != "true":
        return None
    return links.raw_param("section") or None


def _section(name: str) -> str | None:
    """The embedded experiment of this page, if the link names one of its experiments."""
    section = embedded_section()
    return section if section and words(name).get(f"experiments.{section}.title") else None


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


METRICS_PER_ROW = 3


def predict_reasons(templates: Any, reader: Callable[..., Readout] | None, settings: dict,
                    page: str = "", read: set[str] | None = None) -> list[str] | None:
    """Each option's reason, filled with the reader's live values; None when the page has none yet."""
    if not templates:
        return None
    values: dict[str, Any] = {}
    if reader is not None:
        try:
            said = readout(page, "predict", reader, settings, read)
            values = next((dict(r.values) for r in said.readings if r.key == "predict.why"), {})
        except Exception:  # a page whose reader is still being written keeps its generic lines
            return None
    try:
        return [str(template).format(**values) for template in templates]
    except (KeyError, IndexError, ValueError):
        return None


def link_notes(*scopes: str) -> None:
    """Every value of the opening link that was changed or dropped, in one note at the top of the page."""
    lines = links.notes("app", *scopes)
    if lines:  # HTML-escaped text, not Markdown: nothing in a link's value can become a link, code or emphasis
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        title = html.escape(APP["links.title"])
        st.html(f'<div class="gl-link-notes" role="status"><p>{title}</p><ul>{items}</ul></div>')


class Page:
    def __init__(self, name: str, controls: tuple[Control, ...] = (), figures: dict[str, Figure] | None = None):
        ensure_app_shell()
        self.name, self.table, self.words, self.figures = name, controls, words(name), figures or {}
        self._keys = frozenset(c.key for c in controls)
        module = importlib.import_module(f"core.{name}")
        self.presets: dict[str, dict] = getattr(module, "PRESETS", {})
        self.readers: dict[str, Callable[..., Readout]] = getattr(module, "READINGS", {})
        self.seed = seed()
        self.present = presenting()
        links.correct(f"{name}_", controls, name)  # before any widget seeds from the link
        self.section = _section(name)
        self.hidden = False  # inside an experiment an embed leaves out: compute, draw nothing
        # Parts of the page that rerun alone (st.fragment, keyed f"{name}_{part}") and the settings each read in its
        # last run. Presentation mode draws whole pages: its pinned blocks span experiments.
        self.fragments = not self.present
        self.reads: dict[str, set[str]] = {}
        self._reading: set[str] | None = None
        self._slots = 0
        # Presentation mode: the open experiment's block, its pinned controls, and the controls drawn in it
        self._block: Any = None
        self._pinned: Any = None
        self._drawn: set[str] = set()
        self._noted: set[str] = set()  # controls of earlier experiments whose values the pinned box states
        self._experiment = ""
        # Every control's value (as drawn, else as the session or the link holds it), plus the seed: the settings a
        # figure reads, the same dict the export builds from a preset.
        self.settings: dict[str, Any] = {**defaults(controls), **{c.key: links.link_value(f"{name}_", c)
                                                                 for c in controls}, "seed": self.seed}
        st.html(f'<span class="gl-page gl-page-{name}"></span>')
        self.prefetch()

    def prefetch(self, moved: str | None = None) -> None:
        """Start every figure of the page computing at once, in the background, before the page asks for them.

        The settings the page will draw are known now (from the session and the link), so the figures'
        experiments run side by side in the worker processes while the script draws the page, and each
        page.figure(...) waits only for what is not finished yet. With `moved`, only the figures that read it.
        """
        if not self.figures or pool() is None:
            return
        for name, figure in self.figures.items():
            if moved is None or moved in (*figure.inputs, *figure.chart_inputs):
                background(prefetch_figure, self.name, name, dict(figure.view(self.settings)), self.present,
                           content.current())

    # 1. The question, and the page's presets
    def header(self) -> None:
        if self.section:
            link_notes(self.name)
            return
        st.title(self.words["title"])
        link_notes(self.name)
        if not self.present:
            st.markdown(f"> {self.words['question']}")
            self.contents()
        self._part("head", self._head)

    def _head(self) -> None:
        """The presets (the one the controls match is marked) and the share link: they read every control."""
        self._note(self._keys)
        if self.presets:
            presets_block(self.name, self.table, self.presets, self.words, self.settings, self.seed, self.present)
        self.share()

    def contents(self) -> None:
        """The table of contents: each experiment, the misconceptions, the code and the takeaways."""
        experiments = [(key, e["title"]) for key, e in (self.words.get("experiments") or {}).items()
                       if isinstance(e, dict) and "title" in e]
        items = [*experiments, ("misconceptions", APP["toc.misconceptions"]), ("code", APP["toc.code"]),
                 ("takeaways", APP["toc.takeaways"])]
        entries = "".join(f'<li><a href="#{html.escape(key)}" target="_self">{html.escape(title)}</a></li>'
                          for key, title in items)
        st.html(f'<nav class="gl-toc" aria-label="{html.escape(APP["toc.label"])}">'
                f'<p class="gl-toc-label">{html.escape(APP["toc.label"])}</p><ol>{entries}</ol></nav>')

    def share(self) -> None:
        """The full address of this view, in a box with a copy button."""
        base = str(getattr(st.context, "url", "") or "").split("?")[0]
        query = links.view_query(self.name, self.table, self.settings, self.seed, self.present,
                                 links.carried_language())
        with st.popover(APP["share.label"], icon=":material/link:", help=APP["share.help"]):
            st.code(f"{base}?{query}" if query else base, language=None, wrap_lines=True)

    # 2. Predict first, then 3. the short answer
    def predict(self, **values: Any) -> None:
        """Choose, then press Check: choosing alone (a click, an arrow key) reveals nothing. The feedback names the
        right option and says why the chosen one is right or wrong, with the live numbers of READINGS["predict"]."""
        if self.section:
            return
        w, key = self.words, f"{self.name}_predict"
        checked = f"{key}_checked"
        options = w["predict.options"]

        def check() -> None:
            st.session_state[checked] = st.session_state.get(key) or ""

        with st.container(border=True, key=f"{key}_box"):
            choice = st.radio(w["predict.prompt"], options, index=None, key=key)
            with st.container(horizontal=True, vertical_alignment="center"):
                st.button(APP["predict.check"], key=f"{key}_check", on_click=check, type="primary")
                hurry = False if self.present else st.checkbox(APP["predict.reveal"], key=f"{self.name}_reveal")
            judged = st.session_state.get(checked)
            if judged == "" and choice is None:
                st.info(APP["predict.choose_first"])
            shown = judged is not None and judged != "" and judged == choice
            if shown:  # its live numbers read the controls: it reruns with them
                self._part("predict", lambda: self._feedback(options, options.index(choice)))
            if (shown or hurry) and not self.present:
                st.markdown(f"**{APP['predict.short_answer']}** {w('short_answer', **values)}")

    def _feedback(self, options: list[str], chosen: int) -> None:
        answer = self.words["predict.answer"]
        right = chosen == answer
        lines = [APP("predict.right_named" if right else "predict.wrong_named", answer=options[answer])]
        why = predict_reasons(self.words.get("predict.why"), self.readers.get("predict"), dict(self.settings),
                              self.name, self._reading)
        if why and chosen < len(why):
            lines.append(why[chosen])
        else:
            lines.append(APP["predict.right" if right else "predict.wrong"])
        (st.success if right else st.warning)("\n\n".join(lines))

    # Parts that rerun alone
    def _part(self, part: str, body: Callable[[], None]) -> None:
        """Draw body as a fragment keyed f"{page}_{part}", noting the settings it reads (self.reads)."""
        key = f"{self.name}_{part}"

        def draw() -> None:
            outer, hidden = self._reading, self.hidden
            self._reading = self.reads[key] = set()
            self.hidden = False  # a rerun of this part alone finds the flag where the page's last part left it
            try:
                body()
            finally:
                self._reading, self.hidden = outer, hidden

        if self.fragments:
            st.fragment(draw, key=key)()
        else:
            draw()

    def _note(self, keys: Any) -> None:
        if self._reading is not None:
            self._reading.update(keys)

    def _moved(self, key: str) -> None:
        """A control's callback: rerun only the parts of the page that read it in their last run.

        The experiment that draws it, any other experiment whose figures or readout read it, the misconceptions,
        the predict feedback, the presets and the share link: each noted what it read (figures their declared
        inputs, readouts the keys their reader touched), so a part that does not read the control keeps what it
        shows, and what it shows is still true. The new value is set here first, for parts drawn elsewhere.
        """
        self.settings[key] = st.session_state[f"{self.name}_{key}"]
        parts = [part for part, keys in self.reads.items() if key in keys]
        if parts:
            self.prefetch(key)  # the parts rerun one after another; their figures compute side by side
            st.rerun(scope=parts)

    # 4. Experiments
    def experiment(self, key: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
        """Experiment `key`: its heading and intro, then its body (controls, figures, readout), drawn at once.

        The body is a part of its own (self._part): moving one of its controls reruns it, not the page.
        """
        def draw(body: Callable[[], None]) -> Callable[[], None]:
            self.hidden = bool(self.section) and key != self.section
            if self.hidden:  # an embed of another experiment: the values still feed what follows, nothing drawn
                body()
                return body
            if self.present:
                self._open_block(key)
            st.header(self.words[f"experiments.{key}.title"], divider="gray", anchor=key)
            intro = self.words.get(f"experiments.{key}.intro")
            if intro and not self.present:
                st.markdown(intro)
            self._part(key, body)
            return body

        return draw

    def _open_block(self, key: str) -> None:
        """Presentation mode: the experiment's header, controls and charts in one block, in which its controls stay
        pinned under the top of the screen while its charts scroll by, so each chart is seen with the controls that
        drive it. An experiment whose charts read only controls drawn in the open block stays in that block, under
        those controls (the balance of two losses, driven by the conflict experiment's controls, say)."""
        reads = {k for f in self.figures.values() if f.experiment == key for k in (*f.inputs, *f.chart_inputs)}
        reads.discard("seed")
        if self._block is not None and reads and reads <= self._drawn:
            return
        self._close_block()
        self._block = st.container(key=f"gl_block_{self.name}_{key}")
        self._block.__enter__()
        self._pinned, self._drawn, self._noted = None, set(), set()
        self._experiment = key

    def _close_block(self) -> None:
        if self._block is not None:
            self._block.__exit__(None, None, None)
            self._block = self._pinned = None

    def _controls_place(self) -> Any:
        """Where a control is drawn: in presentation mode, the open experiment's pinned box (ui/theme.py)."""
        if self._block is None:
            return contextlib.nullcontext()
        if self._pinned is None:
            self._pinned = st.container(key=f"gl_pinned_{self.name}_{self._experiment}")
        return self._pinned

    def _pin_set_above(self, figure: Figure) -> None:
        """Presentation mode: the values of the controls a chart reads that an earlier experiment draws, pinned with
        this experiment's own (as plain text), so the room sees every setting that drives the chart in view."""
        if self._block is None:
            return
        keys = [k for k in (*figure.inputs, *figure.chart_inputs)
                if k in self._keys and k not in self._drawn and k not in self._noted]
        if not keys:
            return
        self._noted.update(keys)
        values = " · ".join(f"{self.words[f'controls.{k}.label']} = {shown(find(self.table, k), self.settings[k])}"
                            for k in keys)
        with self._controls_place():
            st.html(f'<p class="gl-set-above">{html.escape(APP["present.set_above"].format(values=values))}</p>')

    def control(self, key: str) -> Any:
        if self.hidden:
            return self._control(key)
        with self._controls_place():
            return self._control(key)

    def _control(self, key: str) -> Any:
        control = find(self.table, key)
        if self.hidden:  # an embed's other experiments: the value still feeds what follows, no widget drawn
            self.settings[key] = links.link_value(f"{self.name}_", control)
        else:
            on_change = functools.partial(self._moved, key) if self.fragments else None
            self.settings[key] = render(self.name, control, self.words, on_change)
            self._drawn.add(key)
            self._note((key,))
        return self.settings[key]

    def controls(self, *keys: str) -> tuple[Any, ...]:
        """Several controls side by side, in one row."""
        if self.hidden:
            return tuple(self.control(key) for key in keys)
        values = []
        with self._controls_place():
            for column, key in zip(st.columns(len(keys)), keys):
                with column:
                    values.append(self._control(key))
        return tuple(values)

    def run(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return run(fn, *args, **kwargs)

    def figure(self, name: str) -> pd.DataFrame:
        """Draw FIGURES[name] at the current settings and return its data.

        The data is cached by the settings it reads, the spec by those and the chart's own: moving a
        marker rebuilds a chart without rerunning its experiment.
        """
        figure = self.figures[name]
        self._note((*figure.inputs, *figure.chart_inputs))
        data = run(figure.data, **figure.arguments(self.settings))
        if self.hidden:
            return data
        self._pin_set_above(figure)
        view = dict(figure.view(self.settings))
        spec, described = figure_spec(self.name, name, view, self.present)
        st.vega_lite_chart(spec=spec, width="stretch" if spec.get("width", "container") == "container" else "content",
                           key=f"{self.name}_{name}_chart")
        self.download(data, name, view, described)
        return data

    def download(self, data: pd.DataFrame, name: str, view: dict[str, Any], description: str) -> None:
        """The chart's data as CSV and the figure as SVG, both made only when clicked."""
        if self.present:
            return
        with st.container(horizontal=True, vertical_alignment="center"):
            st.download_button(
                APP["chart.download_csv"], data=lambda: data.to_csv(index=False), file_name=f"{self.name}_{name}.csv",
                mime="text/csv", on_click="ignore", key=f"{self.name}_{name}_csv", icon=":material/download:")
            st.download_button(
                APP["chart.download_svg"], data=lambda: to_svg(figures.fixed_titles(self.svg_spec(name, data, view))),
                file_name=f"{self.name}_{name}.svg", mime="image/svg+xml", on_click="ignore",
                key=f"{self.name}_{name}_svg", icon=":material/image:")
            with st.popover(APP["describe.label"], icon=":material/description:"):
                st.text(description)

    def svg_spec(self, name: str, data: pd.DataFrame, view: dict[str, Any]) -> dict:
        from core import worker

        return worker.chart_spec(self.name, name, data, view, present=self.present, present_height=PRESENT_HEIGHT,
                                 lang=content.current())

    def metrics(self, items: dict[str, str]) -> None:
        """Live numbers, at most three to a row so every value and label shows in full: {label key: value}."""
        if self.hidden:
            return
        entries = list(items.items())
        for start in range(0, len(entries), METRICS_PER_ROW):
            row = entries[start:start + METRICS_PER_ROW]
            for column, (key, value) in zip(st.columns(METRICS_PER_ROW if len(entries) > METRICS_PER_ROW
                                                       else len(row)), row):
                column.metric(self.words[f"metrics.{key}"], value)

    def readout(self, key: str) -> Readout:
        """Experiment key's metrics and readings, chosen and filled in core (READINGS[key]) at the current settings.

        The reader gets the page's own cached run, so it reuses what the figures computed.
        """
        said = readout(self.name, key, self.readers[key], self.settings, self._reading)
        self.show(said)
        return said

    def show(self, readout: Readout) -> None:
        if self.hidden:
            return
        if readout.metrics:
            self.metrics(dict(readout.metrics))
        for reading in readout.readings:
            text = self.words(reading.key, **reading.values)
            if reading.tone == "warning":
                st.warning(text, icon=":material/warning:")
            elif not self.present:
                (st.caption if reading.tone == "note" else st.markdown)(text)

    def reading(self, key: str, **values: Any) -> None:
        if self.present or self.hidden:
            return
        st.markdown(self.words(f"experiments.{key}.reading", **values))

    def nonfinite(self, found: dict[Any, Any], *, what: str = "step") -> None:
        """Say where runs went non-finite; the chart beside it shows only the finite part.

        The slot keeps its place either way (a calm line when every run stayed finite), so the chart below does
        not jump when a run starts or stops diverging.
        """
        if self.hidden:
            return
        self._slots += 1
        with st.container(key=f"{self.name}_nonfinite_{self._slots}"):
            if found:
                st.warning("\n\n".join(APP("nonfinite", run=run_name, what=what, at=at)
                                        for run_name, at in found.items()), icon=":material/warning:")
            else:
                st.caption(APP["nonfinite_slot.calm"])

    # 5. Misconceptions
    def misconceptions(self) -> None:
        """Each wrong claim beside the live evidence that READINGS["misconceptions"] fills in core."""
        self._close_block()
        if self.present or self.section:
            return
        st.header(APP["misconceptions.title"], divider="gray", anchor="misconceptions")
        self._part("misconceptions", self._claims)

    def _claims(self) -> None:
        reader = self.readers.get("misconceptions")
        values = (evidence(readout(self.name, "misconceptions", reader, self.settings, self._reading), self.words)
                  if reader else {})
        for item in self.words["misconceptions"]:
            with st.container(border=True):
                st.markdown(f"**{APP['misconceptions.claim']}** ~~{item['claim']}~~")
                st.markdown(f"**{APP['misconceptions.live']}** {item['evidence'].format(**values)}")

    # 6. Show the code
    def show_code(self, *functions: Callable) -> None:
        self._close_block()
        if self.present or self.section:
            return
        st.header(APP["code.title"], divider="gray", anchor="code")
        st.caption(APP["code.caption"])
        for fn in functions:
            with st.expander(f"`{fn.__module__}.{fn.__qualname__}`"):
                st.code(source(fn), language="python")

    # 7. Takeaways and references
    def takeaways(self) -> None:
        self._close_block()
        if self.present or self.section:
            return
        st.header(APP["takeaways.title"], divider="gray", anchor="takeaways")
        st.markdown("\n".join(f"- {t}" for t in self.words["takeaways"]))
        st.subheader(APP["takeaways.references"])
        st.markdown("\n".join(f"- [{r['title']}]({r['url']})" for r in self.words["references"]))
