"""The declarative table of a page's controls, the way tensorflow/playground's state.ts lists them.

Each concept module exports CONTROLS, a tuple of Control rows. The page renders them (ui/controls.py),
every one bound to the URL; the tests read the same rows to drive every control to its extremes;
presets and the figure export take their defaults from here. Labels live in content/, keyed by
Control.key, so this table holds no words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Kind = Literal["int", "float", "log10", "select", "toggle"]


@dataclass(frozen=True)
class Control:
    key: str  # unique within its page; the URL key is f"{page}_{key}"
    kind: Kind
    default: int | float | str | bool
    lo: float | None = None  # numeric kinds: inclusive bounds
    hi: float | None = None
    step: float | None = None
    options: tuple[str, ...] = ()  # select: the option ids, shown as they are (they go in the URL)

    def __post_init__(self) -> None:
        if self.kind in ("int", "float", "log10"):
            if self.lo is None or self.hi is None or not self.lo <= self.default <= self.hi:
                raise ValueError(f"{self.key}: default {self.default} outside [{self.lo}, {self.hi}]")
        elif self.kind == "select" and self.default not in self.options:
            raise ValueError(f"{self.key}: default {self.default!r} not in {self.options}")

    @property
    def extremes(self) -> tuple:
        """The values a test must survive: both ends of a range, every option of a select."""
        if self.kind == "select":
            return self.options
        if self.kind == "toggle":
            return (False, True)
        kind = int if self.kind in ("int", "log10") else float
        return (kind(self.lo), kind(self.hi))

    def accepts(self, raw: str) -> bool:
        """Whether Streamlit will take this URL string for the control (else it falls back to the default)."""
        if self.kind == "select":
            return raw in self.options
        if self.kind == "toggle":
            return raw.lower() in ("true", "false")
        try:
            value = float(raw)
        except ValueError:
            return False
        return math.isfinite(value) and self.lo <= value <= self.hi


def find(controls: tuple[Control, ...], key: str) -> Control:
    """The row for key; an unknown key is a ValueError that lists the valid ones."""
    for control in controls:
        if control.key == key:
            return control
    raise ValueError(f"unknown control {key!r}; valid: {', '.join(c.key for c in controls)}")


def defaults(controls: tuple[Control, ...]) -> dict[str, int | float | str | bool]:
    return {c.key: c.default for c in controls}


def preset_settings(controls: tuple[Control, ...], presets: dict[str, dict], name: str | None) -> dict:
    """Every control's value under a preset (defaults for what it leaves out); None is the defaults.

    An unknown preset, an unknown key or a value the control cannot take is a ValueError that says
    what is valid, so a typo in a preset table fails its tests instead of silently falling back.
    """
    values = defaults(controls)
    if name is None:
        return values
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(presets) or '(none)'}")
    for key, value in presets[name].items():
        control = find(controls, key)
        if not control.accepts(str(value).lower() if isinstance(value, bool) else str(value)):
            raise ValueError(f"preset {name!r}: {key}={value!r} is not a value the control takes")
        values[key] = value
    return values
