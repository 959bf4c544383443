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


TRUTHY = ("true", "1", "yes", "y", "on", "t")
FALSY = ("false", "0", "no", "n", "off", "f")
NOTE_LIMIT = 60  # characters of a link's value quoted in a note: a 3000-character value must not fill the screen


@dataclass(frozen=True)
class LinkValue:
    """What a URL value became: the value to use (None: the default) and, if it was changed or dropped, why.

    `problem` is a content key under app.toml's [links] ("repeated", "clamped", "rounded", "unusable"); the
    page shows every problem as one note at its top. `raw` is the value as given, shortened for the note.
    """

    value: int | float | str | bool | None
    problem: str | None = None
    raw: str = ""
    used: str = ""  # the value used instead, as the note says it


def shorten(raw: str, limit: int = NOTE_LIMIT) -> str:
    """A link's value bounded for a note: its first characters and how many were left out."""
    return raw if len(raw) <= limit else f"{raw[:limit]}… (+{len(raw) - limit})"


def decimals(step: float | None) -> int:
    """How many decimals a step has: 0.001 -> 3, 0.05 -> 2, 1 -> 0; the digits a slider must show."""
    if not step:
        return 2
    text = f"{step:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def number_format(control: Control) -> str:
    """The printf format a slider shows its value in: as many digits as its step, so 0.001 never reads 0.00."""
    if control.kind == "log10":
        return "1e%d"
    if control.kind == "int":
        return "%d"
    return f"%.{decimals(control.step)}f"


def shown(control: Control, value: int | float | str | bool) -> str:
    """The value as its widget shows it: a slider's readout (number_format), an option or a toggle as it is."""
    if control.kind in ("int", "float", "log10"):
        return number_format(control) % value
    return str(value)


def parse_link(control: Control, values: list[str]) -> LinkValue:
    """A control's value from the URL's values for its key (several when the key is repeated).

    The last value counts (as st.query_params reads it), and a repeated key is said so. A number out of range is
    clamped to the nearest end, a non-integer for an integer control is rounded, a truthy spelling turns a toggle
    on; what cannot be read at all falls back to the default. Each change is reported, never silent.
    """
    if not values:
        return LinkValue(None)
    raw = values[-1]
    note = "repeated" if len(values) > 1 else None
    value, problem = _parse_one(control, raw.strip())
    if problem is None and note:
        problem = note
    used = "" if value is None else (str(value).lower() if isinstance(value, bool) else _plain(value))
    if problem == "unusable":
        used = _plain(control.default) if not isinstance(control.default, bool) else str(control.default).lower()
    return LinkValue(value, problem, shorten(raw), used)


def _plain(value: int | float | str) -> str:
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def _parse_one(control: Control, raw: str) -> tuple[int | float | str | bool | None, str | None]:
    if control.kind == "select":
        if raw in control.options:
            return raw, None
        folded = {o.lower(): o for o in control.options}
        return (folded[raw.lower()], None) if raw.lower() in folded else (None, "unusable")
    if control.kind == "toggle":
        if raw.lower() in TRUTHY:
            return True, None
        if raw.lower() in FALSY:
            return False, None
        return None, "unusable"
    try:
        number = float(raw)
    except ValueError:
        return None, "unusable"
    if not math.isfinite(number):
        return None, "unusable"
    problem = None
    if control.kind in ("int", "log10") and number != round(number):
        number, problem = float(round(number)), "rounded"
    if number < control.lo or number > control.hi:
        number, problem = min(max(number, control.lo), control.hi), "clamped"
    if control.kind in ("int", "log10"):
        return int(number), problem
    if control.step:  # the slider's own grid: Streamlit would keep 0.1234 on a 0.001 slider and show 0.123
        snapped = round(round((number - control.lo) / control.step) * control.step + control.lo, decimals(control.step))
        if not math.isclose(snapped, number, rel_tol=0, abs_tol=1e-12):
            number, problem = min(max(snapped, control.lo), control.hi), problem or "rounded"
    return float(number), problem


def query_value(value: int | float | str | bool) -> str:
    """A value as a bound widget writes it into the URL."""
    if isinstance(value, bool):
        return str(value).lower()
    return _plain(value)
