"""Draw one row of a page's control table (core/controls.py) as a widget bound to the URL.

The URL key is the widget key, f"{page}_{control.key}", so every state of every page is a link
(DESIGN rule 6). Streamlit drops a URL value the widget cannot take and falls back to the default;
we say so on the page, so a reader who followed a mistyped link knows what they are looking at.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import streamlit as st

from content import Words, words
from core.controls import Control, defaults, preset_settings

APP = words("app")


def render(page: str, control: Control, page_words: Words) -> Any:
    key = f"{page}_{control.key}"
    label = page_words[f"controls.{control.key}.label"]
    common = {"key": key, "bind": "query-params", "help": page_words.get(f"controls.{control.key}.help")}
    raw = st.query_params.get(key)
    if control.kind == "select":
        value = st.selectbox(label, control.options, index=control.options.index(control.default), **common)
    elif control.kind == "toggle":
        value = st.toggle(label, value=bool(control.default), **common)
    elif control.kind == "log10":
        value = st.slider(label, int(control.lo), int(control.hi), int(control.default), format="1e%d", **common)
    elif control.kind == "int":
        value = st.slider(label, int(control.lo), int(control.hi), int(control.default), step=int(control.step or 1),
                          **common)
    else:
        value = st.slider(label, float(control.lo), float(control.hi), float(control.default),
                          step=float(control.step) if control.step else None, **common)
    if raw is not None and not control.accepts(raw):
        st.info(APP("controls.ignored", key=key, raw=raw, default=control.default), icon=":material/link_off:")
    return value


def presets_block(page: str, controls: tuple[Control, ...], presets: dict[str, dict], page_words: Words) -> None:
    """The page's named settings as pills (choosing one sets every control) and as links (each a URL)."""
    key = f"{page}_preset"

    def apply() -> None:
        chosen = st.session_state.get(key)
        if chosen is None:
            return
        for name, value in preset_settings(controls, presets, chosen).items():
            st.session_state[f"{page}_{name}"] = value  # bound widgets take it, and write it to the URL
        st.session_state[key] = None  # a preset is an action, not a state: the controls now hold it

    st.pills(APP["presets.label"], list(presets), format_func=lambda p: page_words[f"presets.{p}"], key=key,
             on_change=apply, help=APP["presets.help"])
    links = " · ".join(f"[{page_words[f'presets.{p}']}](?{preset_query(page, controls, presets, p)})" for p in presets)
    st.caption(f"{APP['presets.links']} {links}")


def preset_query(page: str, controls: tuple[Control, ...], presets: dict[str, dict], name: str) -> str:
    """The URL query of a preset: only what differs from the defaults, as bound widgets write it."""
    base = defaults(controls)
    values = preset_settings(controls, presets, name)
    return urlencode({f"{page}_{k}": str(v).lower() if isinstance(v, bool) else v
                      for k, v in values.items() if v != base[k]})
