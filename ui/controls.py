"""Draw one row of a page's control table (core/controls.py) as a widget bound to the URL.

The URL key is the widget key, f"{page}_{control.key}", so every state of every page is a link
(DESIGN rule 6). What a link gives a control is read and corrected first (ui/links.py), so the widget
seeds from a value it can take, and the page says at its top what was changed.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import streamlit as st

from content import Words, words
from core.controls import Control, defaults, number_format, preset_settings
from ui.links import carried_language, view_query

APP = words("app")


def render(page: str, control: Control, page_words: Words, on_change: Callable[[], None] | None = None) -> Any:
    key = f"{page}_{control.key}"
    label = page_words[f"controls.{control.key}.label"]
    common = {"key": key, "bind": "query-params", "help": page_words.get(f"controls.{control.key}.help"),
              "on_change": on_change}
    if control.kind == "select":
        return st.selectbox(label, control.options, index=control.options.index(control.default), **common)
    if control.kind == "toggle":
        return st.toggle(label, value=bool(control.default), **common)
    # The readout shows the value in use, with as many digits as the step: 0.001 never reads 0.00.
    if control.kind in ("int", "log10"):
        return st.slider(label, int(control.lo), int(control.hi), int(control.default),
                         step=int(control.step or 1), format=number_format(control), **common)
    return st.slider(label, float(control.lo), float(control.hi), float(control.default),
                     step=float(control.step) if control.step else None, format=number_format(control), **common)


def active_preset(controls: tuple[Control, ...], presets: dict[str, dict], values: dict[str, Any]) -> str | None:
    """The preset every control matches now, if any."""
    for name in presets:
        settings = preset_settings(controls, presets, name)
        if all(values.get(k) == v for k, v in settings.items()):
            return name
    return None


def presets_block(page: str, controls: tuple[Control, ...], presets: dict[str, dict], page_words: Words,
                  values: dict[str, Any], seed: int, present: bool) -> None:
    """The page's named settings as pills (choosing one sets every control) and as links (each a URL that keeps
    the seed and the mode and opens in this tab); the preset the controls match now is marked."""
    key = f"{page}_preset"

    def apply() -> None:
        chosen = st.session_state.get(key)
        if chosen is None:
            return
        for name, value in preset_settings(controls, presets, chosen).items():
            st.session_state[f"{page}_{name}"] = value  # bound widgets take it, and write it to the URL
        st.session_state[key] = None  # a preset is an action, not a state: the controls now hold it
        st.rerun()  # every control moved: the whole page, not only the part these pills are drawn in

    active = active_preset(controls, presets, values)
    st.pills(APP["presets.label"], list(presets), key=key, on_change=apply, help=APP["presets.help"],
             format_func=lambda p: ("✓ " if p == active else "") + page_words[f"presets.{p}"])
    links = []
    for name in presets:
        query = view_query(page, controls, preset_settings(controls, presets, name), seed, present,
                           carried_language())
        label = html.escape(page_words[f"presets.{name}"])
        current = ' aria-current="true" class="gl-active"' if name == active else ""
        mark = f' <span class="gl-active-note">{html.escape(APP["presets.active"])}</span>' if name == active else ""
        links.append(f'<a href="?{html.escape(query)}" target="_self"{current}>{label}</a>{mark}')
    st.html(f'<p class="gl-preset-links">{html.escape(APP["presets.links"])} {" · ".join(links)}</p>')


def preset_query(page: str, controls: tuple[Control, ...], presets: dict[str, dict], name: str) -> str:
    """The URL query of a preset: only what differs from the defaults, as bound widgets write it."""
    return view_query(page, controls, preset_settings(controls, presets, name), 0, False)


__all__ = ["active_preset", "defaults", "presets_block", "preset_query", "render"]
