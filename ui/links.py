"""The page's address: what a shared link set, corrected before any widget reads it, and every change said so.

Streamlit seeds a bound widget from the URL it was opened with and silently drops what the widget cannot take
(and resets an out-of-range number to the default). Before the widgets are drawn, each value of the link is
read here by core.controls.parse_link: clamped, rounded, read as a truthy spelling; the corrected value is
what the widget then seeds from, and every change becomes one line of a note at the top of the page. A value
from a link is data, never markup: the note shows it as plain text, shortened.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import streamlit as st

from content import DEFAULT_LANG, LANGS, language_of, words
from core.controls import Control, LinkValue, parse_link, query_value

APP = words("app")
SEED = Control("seed", "int", 0, lo=0, hi=9999)
PRESENT = Control("present", "toggle", False)
LANG = Control("lang", "select", DEFAULT_LANG, options=tuple(LANGS))
NOTES = "_gradient_lab_link_notes"  # session_state: page -> the notes its link produced


def _params():
    """Streamlit's own query-parameter store for this session (the values bound widgets seed from)."""
    from streamlit.runtime.state.session_state_proxy import get_session_state

    return get_session_state().query_params()


def initial_values(key: str) -> list[str]:
    """Every value the opening URL gave key, in order (several when a link repeats it)."""
    with _params() as qp:
        initial = getattr(qp, "_initial_query_params", None)
        if initial is None:
            return qp.get_all(key)
        values = initial.get(key, [])
        return list(values) if isinstance(values, list) else [values]


def raw_param(key: str) -> str | None:
    """A query parameter as the address holds it, also the ones st.query_params hides (embed, embed_options)."""
    with _params() as qp:
        store = getattr(qp, "_query_params", None)
        value = store.get(key) if store is not None else qp.get(key)
    if isinstance(value, list):
        return value[-1] if value else None
    return value


def _seed_with(key: str, value: Any) -> None:
    """Make the bound widget seed from value (None: its default), as if the link had said it."""
    with _params() as qp:
        initial = getattr(qp, "_initial_query_params", None)
        if initial is None:
            return
        if value is None:
            initial.pop(key, None)
        else:
            initial[key] = [query_value(value)]


def correct(prefix: str, controls: tuple[Control, ...], scope: str) -> None:
    """Read and correct every control's value in the opening link, before its widget is drawn; note each change.

    scope names where the notes belong ("app" for the seed and the mode, else the page's name).
    """
    notes = st.session_state.setdefault(NOTES, {})
    found = []
    for control in controls:
        key = f"{prefix}{control.key}"
        values = initial_values(key)
        if not values:
            continue
        link = parse_link(control, values)
        if control is LANG and link.value is None:  # a language the app does not have: English, said so
            link = LinkValue(DEFAULT_LANG, link.problem, link.raw, DEFAULT_LANG)
        if link.problem or (link.value is not None and [query_value(link.value)] != values):
            _seed_with(key, link.value)
        if link.problem:
            found.append(note(key, link, control))
    if found:
        notes[scope] = found


def note(key: str, link: LinkValue, control: Control) -> str:
    """One line of the note, every value from the link made plain text."""
    default = query_value(control.default)
    return APP(f"links.{link.problem}", key=key, raw=plain(link.raw), used=link.used or default,
               lo=query_value(control.lo) if control.lo is not None else "",
               hi=query_value(control.hi) if control.hi is not None else "")


def plain(text: str) -> str:
    """A link's value on one line; the note shows it as escaped HTML text, never as Markdown."""
    return " ".join(text.split()) if text.strip() else repr(text)


def notes(*scopes: str) -> list[str]:
    stored = st.session_state.get(NOTES, {})
    return [line for scope in scopes for line in stored.get(scope, [])]


def browser_language() -> str:
    """The language the reader's browser asks for (st.context.locale), where the app has it; else English."""
    return language_of(getattr(st.context, "locale", None)) or DEFAULT_LANG


def language() -> str:
    """The reader's language: the session's (chosen in the sidebar), else the link's `lang`, else the browser's.

    A `lang` the app does not have is English (correct() has noted it).
    """
    if LANG.key in st.session_state:
        return st.session_state[LANG.key]
    values = initial_values(LANG.key)
    if values:
        return parse_link(LANG, values).value or DEFAULT_LANG
    return browser_language()


LANG_CHOICE = "lang_choice"  # the sidebar's language control; the session's language itself is under "lang"


def keep_language(lang: str) -> None:
    """Hold the session's language, and say it in the address when it is not the browser's own (so a link made from
    the address bar carries the reader's choice, and a link without one speaks each reader's language).

    The control is not bound to the address: a bound select box writes its shown label ("中文") into the URL, and
    the address must say `lang=zh` in every language.
    """
    st.session_state[LANG.key] = lang
    wanted = None if lang == browser_language() else lang
    if st.query_params.get(LANG.key) != wanted:
        if wanted is None:
            del st.query_params[LANG.key]
        else:
            st.query_params[LANG.key] = wanted


def choose_language() -> None:
    """The sidebar's language control moved: the session speaks its choice from this run on."""
    st.session_state[LANG.key] = st.session_state[LANG_CHOICE]


def carried_language() -> dict[str, str]:
    """`lang` for a link made from this view, when the reader chose it (it differs from the browser's)."""
    lang = st.session_state.get(LANG.key) or language()
    return {} if lang == browser_language() else {LANG.key: lang}


def link_value(prefix: str, control: Control) -> Any:
    """A control's value without its widget: its session value, else the link's, else the default."""
    key = f"{prefix}{control.key}"
    if key in st.session_state:
        return st.session_state[key]
    link = parse_link(control, initial_values(key))
    return control.default if link.value is None else link.value


def view_query(page: str, controls: tuple[Control, ...], values: dict[str, Any], seed: int, present: bool,
               extra: dict[str, str] | None = None) -> str:
    """The query of a view: every control that differs from its default, the seed and the mode (and extra)."""
    query = {f"{page}_{c.key}": query_value(values[c.key]) for c in controls
             if c.key in values and values[c.key] != c.default}
    if seed != SEED.default:
        query["seed"] = str(seed)
    if present:
        query["present"] = "true"
    query.update(extra or {})
    return urlencode(query)
