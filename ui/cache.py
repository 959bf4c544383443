"""Bounded caching of core experiments: a hosted demo runs for weeks (DESIGN rule 7).

Each core function gets its own st.cache_data wrapper, made once, so one page's sweeps never evict
another page's results and every cache stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

MAX_ENTRIES = 32  # per function; a few hundred KB each at most
SPEC_ENTRIES = 512  # figure specs: every figure of every page shares core.figures.spec; ~50 KB each
_wrapped: dict[Callable, Callable] = {}


def run(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs), cached by its arguments; core functions are deterministic given their seed."""
    return cached(fn)(*args, **kwargs)


def cached(fn: Callable, max_entries: int = MAX_ENTRIES) -> Callable:
    """fn wrapped once in a bounded st.cache_data (the first call's bound stays)."""
    if fn not in _wrapped:
        _wrapped[fn] = st.cache_data(fn, max_entries=max_entries, show_spinner=False)
    return _wrapped[fn]
