"""What a worker process of the app holds: every concept's experiments and charts, imported once.

ui/workers.py runs core functions in processes forked from a server that imported this module, so each worker
starts with torch, pandas, Altair and every page's core ready (shared, copy-on-write) and pays no import.
"""

from __future__ import annotations

import gc
import importlib
import time
from typing import Any

import pandas as pd

import content
from core import altair_speed, heap
from core.figures import _Declared, finish, registry
from core.registry import PAGES

for _info in PAGES:
    importlib.import_module(f"core.{_info.name}")
    importlib.import_module(f"core.charts.{_info.name}")

# Imported once by the fork server, whose pages every worker shares copy-on-write: a collection that walked the
# imported objects would write to each of them, and each worker would end up with a private copy of it all.
gc.collect()
gc.freeze()


def start() -> None:
    """Run once in each worker process as it starts (ui.workers): Altair without its per-object schema checks, and
    the memory a job freed given back to the system (core.heap)."""
    altair_speed.unchecked()
    heap.keep_trimmed()


MEASURE_EVERY = 2.0  # seconds: a worker reads its own memory (a few ms) at most this often
_measured = -MEASURE_EVERY


def job(fn: Any, args: tuple, kwargs: dict) -> tuple[Any, int | None]:
    """A pool's job (ui.workers): (fn(*args, **kwargs), this worker's own memory in bytes before it ran), the memory
    read after giving back what earlier jobs freed, and only every MEASURE_EVERY seconds (None between)."""
    global _measured
    own = None
    if time.monotonic() - _measured >= MEASURE_EVERY:
        heap.trim()  # what the last job freed is not this worker's to keep
        own = heap.own_bytes()
        _measured = time.monotonic()
    return fn(*args, **kwargs), own


def chart_spec(page: str, name: str, data: pd.DataFrame, view: dict[str, Any], *, present: bool = False,
               present_height: int = 240, lang: str | None = None) -> dict:
    """FIGURES[name]'s Vega-Lite spec for data at view, as the page draws it, finished for reading (title,
    legends, fonts, its text description; larger and lower for a projector when present).

    Not validated against the Vega-Lite schema here: that costs more than most experiments, and every figure's
    spec is validated by the tests and the export (core.figures.spec) at every preset.
    """
    if lang is not None:  # a worker's thread speaks the language of the session that asked (content.use)
        content.use(lang)
    spec = finish(registry(page)[name].chart(data, _Declared(view)).to_dict(validate=False), present=present)
    if present and spec.get("width", "container") == "container":
        spec["height"] = present_height
        # panels stacked one above the other share the height one chart has on a projector
        panels = [p for p in spec.get("vconcat", []) if isinstance(p.get("height"), (int, float))]
        total = sum(p["height"] for p in panels)
        for panel in panels:
            panel["height"] = round(present_height * panel["height"] / total)
    # Fit the width, legend included; let the height grow around title and x-axis (Vega's "pad"). Left to
    # Streamlit's fitting, a long y-axis title squeezed the plot to half and pushed the chart title out of view.
    spec.setdefault("autosize", {"type": "fit-x", "contains": "padding"})
    return spec
