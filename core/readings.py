"""What a page says about its numbers, chosen and filled in core (DESIGN rule 11).

An experiment's words depend on its numbers: "SGD moved 0.1 times as far", or "the run diverged at step
7". Which sentence applies, and with which values, is decided here, by pure functions from the page's
settings (and the results they compute) to content keys and values. The page only shows what they
return; the handout shows the same; tests hold them at every setting of the controls.

Each concept module exports READINGS, a dict from an experiment's content key to a reader:

    def read_update(settings: Settings, run: Run = direct) -> Readout:
        sweep = figure_data("loss_scaling", "update_ratio", settings, run)
        ratio = run(update_ratio, "sgd", 10.0 ** settings["scale_exp"], steps=settings["steps"], seed=settings["seed"])
        key = "experiments.update.reading_" + ("diverged" if not math.isfinite(ratio) else "moved")
        return Readout(metrics={"sgd": f"{ratio:.4g}"}, readings=(Reading(key, {"ratio": ratio}),))

`run(fn, *args, **kwargs)` computes fn(*args, **kwargs): `direct` calls it; the app passes its bounded,
shared cache (ui.cache.run), so a reader asks for exactly the results the page's figures already
computed and pays nothing again. Every function a reader runs through `run` is a module-level function
of core with plain arguments (ints, floats, strings, tuples), so a result can be cached and computed in
another process.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.figures import Settings, registry

Run = Callable[..., Any]


def direct(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """The `run` of tests, the export and notebooks: just call it."""
    return fn(*args, **kwargs)


@dataclass(frozen=True)
class Reading:
    """One paragraph: a content key in the page's words and the values its placeholders take."""

    key: str  # e.g. "experiments.update.reading_diverged"
    values: Mapping[str, Any] = field(default_factory=dict)
    tone: str = "text"  # "text" (a paragraph), "warning" (st.warning: a run that went non-finite), "note"


@dataclass(frozen=True)
class Readout:
    """Everything an experiment says about its numbers, in the order the page shows it."""

    readings: tuple[Reading, ...] = ()
    metrics: Mapping[str, str] = field(default_factory=dict)  # label key under "metrics." -> formatted value


Reader = Callable[..., Readout]  # reader(settings, run=direct) -> Readout


def figure_data(page: str, name: str, settings: Settings, run: Run = direct) -> Any:
    """FIGURES[name]'s data at these settings, through run: the page's own cached result."""
    figure = registry(page)[name]
    return run(figure.data, **figure.arguments(settings))


def evidence(readout: Readout, words: Callable[..., str]) -> dict[str, Any]:
    """What the misconception templates are filled with, from READINGS["misconceptions"]: a reading keyed
    "misconceptions" gives its values as they are; any other reading is one evidence sentence, filled from the
    words under its name (key "evidence.<name>_<variant>" -> {name: text})."""
    values: dict[str, Any] = {}
    for r in readout.readings:
        if r.key == "misconceptions":
            values |= dict(r.values)
        else:
            values[r.key.split(".")[1].rsplit("_", 1)[0]] = words(r.key, **r.values)
    return values


def fill(template: str, values: Mapping[str, Any]) -> str:
    """The template with its values, failing loudly on a missing one (str.format does)."""
    return template.format(**values)


PLACEHOLDER = re.compile(r"(?<!\{)\{[A-Za-z_][A-Za-z0-9_]*(?:[.!:][^{}]*)?\}(?!\})")
NAN_NUMBER = re.compile(r"(?<![A-Za-z_])[+-]?nan(?![A-Za-z_])")  # how Python prints a NaN; prose writes "NaN"
NONFINITE_STRINGS = {"nan", "inf", "-inf", "+inf", "infinity", "-infinity"}


def problems(text: str, values: Mapping[str, Any] | None = None) -> list[str]:
    """What is wrong with a filled sentence: a placeholder left unfilled, a number that came out non-finite.

    Prose may name NaN and inf as concepts ("the loss became NaN", "overflow to inf"); what is caught is a
    value handed to a sentence that is a non-finite float or a string that prints one, and Python's "nan".
    """
    found = [f"unfilled placeholder {m.group(0)}" for m in PLACEHOLDER.finditer(text)]
    found += [f"a NaN printed as {m.group(0)!r}" for m in NAN_NUMBER.finditer(text)]
    for name, value in (values or {}).items():
        if isinstance(value, float) and not math.isfinite(value):
            found.append(f"value {name} = {value}")
        elif isinstance(value, str) and value.strip().lower() in NONFINITE_STRINGS:
            found.append(f"value {name} = {value!r}")
    return found


def placeholders(template: str) -> set[str]:
    """The names a template asks for."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}
