"""Hypothesis strategies over a page's whole control space, and the checks every reading must pass.

settings_of(controls) draws every control anywhere in its range (as the widget can hold it: a slider with a
step takes lo + k * step) and a seed among several, so a property holds at every setting, not at the defaults.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from content import words
from core.controls import Control
from core.readings import Readout, placeholders, problems

SEEDS = (0, 1, 7, 123)


def values_of(control: Control) -> st.SearchStrategy:
    if control.kind == "select":
        return st.sampled_from(control.options)
    if control.kind == "toggle":
        return st.booleans()
    lo, hi = control.lo, control.hi
    if control.kind in ("int", "log10"):
        step = int(control.step or 1)
        return st.integers(0, (int(hi) - int(lo)) // step).map(lambda k: int(lo) + k * step)
    if control.step:
        n = round((hi - lo) / control.step)
        decimals = max(0, len(f"{control.step:.10f}".rstrip("0").split(".")[1]))
        return st.integers(0, n).map(lambda k: round(lo + k * control.step, decimals))
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def settings_of(controls: tuple[Control, ...], seeds: tuple[int, ...] = SEEDS, **fixed: Any) -> st.SearchStrategy:
    """A dict with every control of the page and "seed"; keyword arguments pin controls to a value or strategy."""
    parts = {c.key: values_of(c) for c in controls}
    parts["seed"] = st.sampled_from(seeds)
    for key, value in fixed.items():
        parts[key] = value if isinstance(value, st.SearchStrategy) else st.just(value)
    return st.fixed_dictionaries(parts)


def diverged(losses) -> bool:
    """The pages' divergence rule, recomputed: a loss that went non-finite or past a million."""
    import numpy as np

    values = np.asarray(losses, dtype=float)
    return bool((~np.isfinite(values)).any() or (values[np.isfinite(values)] > 1e6).any())


def check_readout(page: str, readout: Readout) -> list[str]:
    """Every sentence of a readout filled from the page's English words: returns the texts, asserts they are sound.

    Each reading's key must exist, its values must fill every placeholder, and nothing may print as nan or inf;
    each metric's label must exist and its value must be finite.
    """
    w = words(page)
    texts = []
    for reading in readout.readings:
        template = w[reading.key]
        if isinstance(template, list):  # one reading fills a list of templates (predict.why, misconceptions)
            texts += check_readout(page, Readout(readings=tuple(
                type(reading)(f"{reading.key}.{i}", reading.values, reading.tone) for i in range(len(template)))))
            continue
        if isinstance(template, dict):  # a misconception: {claim, evidence}; the evidence is what gets filled
            texts += check_readout(page, Readout(readings=(type(reading)(f"{reading.key}.evidence", reading.values),)))
            continue
        missing = placeholders(template) - set(reading.values)
        assert not missing, f"{reading.key}: no value for {sorted(missing)}"
        text = template.format(**reading.values)
        assert not problems(text, reading.values), (reading.key, problems(text, reading.values), text)
        texts.append(text)
    for key, value in readout.metrics.items():
        assert w.get(f"metrics.{key}") is not None, f"no label metrics.{key}"
        assert not problems(value, {key: value}), (key, value)
    return texts
