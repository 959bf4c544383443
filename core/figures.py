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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd

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
    return df, chart.to_dict()
