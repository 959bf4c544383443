"""One registry of figures per concept: the page and the figure export draw the same chart from the same settings.

Each core/charts/<page>.py exports FIGURES, a dict from a figure's name to a Figure. `settings` is
a plain dict holding every control of the page by its Control.key, plus "seed". The page calls
`page.figure(name)`; the export (core/export.py) calls `render(figure, settings)` with a preset's
settings; both run the same `data` and the same `chart`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd

Settings = Mapping[str, Any]


@dataclass(frozen=True)
class Figure:
    inputs: tuple[str, ...]  # the settings the data depends on: its cache key, so other controls do not recompute it
    data: Callable[..., pd.DataFrame]  # data(**{k: settings[k] for k in inputs}) -> the tidy DataFrame charted
    chart: Callable[[pd.DataFrame, Settings], alt.TopLevelMixin]  # chart(df, settings): cheap, never recomputes

    def arguments(self, settings: Settings) -> dict[str, Any]:
        return {key: settings[key] for key in self.inputs}


def render(figure: Figure, settings: Settings) -> tuple[pd.DataFrame, alt.TopLevelMixin]:
    """The figure's data and chart at these settings, without Streamlit."""
    df = figure.data(**figure.arguments(settings))
    return df, figure.chart(df, settings)
