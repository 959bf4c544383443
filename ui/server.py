"""What the server does once, for every session: free the interpreter of work it need not do, fill the cache
before a class arrives, and keep one session's failure that session's note.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import traceback
from typing import Any

import streamlit as st

from content import words
from core import figures, heap
from core.export import settings_for
from core.registry import PAGES

_LOG = logging.getLogger(__name__)
_started = threading.Event()
_once = threading.Lock()
MAX_NOTE = 400  # characters of an error message shown to the reader


def read_config_without_lock() -> None:
    """Make streamlit.config.get_option read the parsed options without taking the config's process-wide lock.

    Streamlit calls get_option for every message a script sends (the forward-message cache asks for its minimum
    size), and get_option takes one RLock shared by every session. Under 30 students, more than half of the
    scripts' samples (py-spy) were waiting on that lock: thirty threads take turns at one GIL, and whichever held
    the lock while waiting for its turn held up the others. Taking the lock out of that path did not shorten the
    class's reruns by itself (the gate, ui/gate.py, is what cut the queue), but it removes one place where every
    session waits for every other. Reading an option needs no lock once the options are parsed: the dict is
    replaced whole when it is parsed again, and a value is one attribute read. Until then, and for an unknown key,
    the original runs.
    """
    from streamlit import config

    original = getattr(config.get_option, "__wrapped__", config.get_option)
    if getattr(original, "__module__", None) != config.__name__:  # patched (AppTest patches it): leave it be
        return

    def get_option(key: str) -> Any:
        options = config._config_options
        option = options.get(key) if options else None
        return original(key) if option is None else option.value

    get_option.__wrapped__ = original  # type: ignore[attr-defined]
    get_option.__doc__ = original.__doc__
    config.get_option = get_option


def start() -> None:
    """Once per server process, at its first session: freeze the imported objects out of the garbage collector's
    reach and warm the cache in the background."""
    with _once:
        if _started.is_set():
            return
        _started.set()
    read_config_without_lock()
    # Everything imported so far (torch, pandas, Altair, Streamlit: hundreds of thousands of objects) lives as
    # long as the server. gc.freeze() moves it to a generation the collector never walks, so a collection costs
    # what the sessions made, not what the imports made. (.streamlit/config.toml also turns off the full
    # collection Streamlit forces after every run: runner.postScriptGC.)
    gc.collect()
    gc.freeze()
    heap.arrow_on_malloc()  # the charts' Arrow buffers too, not to mimalloc's pools
    heap.keep_trimmed()  # what the sessions' reruns freed goes back to the system, not to malloc's free lists
    if os.environ.get("GRADIENT_LAB_WARM", "1") != "0":  # the tests turn it off: they time nothing, clear caches
        threading.Thread(target=warm, name="gradient-lab-warm", daemon=True).start()


def warm() -> None:
    """Every page's figures and readings at its defaults and at every preset, computed one at a time, so the
    first wave of a class is served from the cache (and a worker is never kept from a live session for long)."""
    from ui import figure_spec
    from ui.cache import readout, run

    for info in PAGES:
        module = info.core
        for preset in (None, *getattr(module, "PRESETS", {})):
            settings = settings_for(info.name, preset)
            try:
                for name, figure in figures.registry(info.name).items():
                    run(figure.data, **figure.arguments(settings))
                    figure_spec(info.name, name, dict(figure.view(settings)))
                for key, reader in getattr(module, "READINGS", {}).items():
                    readout(info.name, key, reader, settings)
            except Exception:  # noqa: BLE001 - warming is a courtesy; the page will show the failure itself
                _LOG.warning("warming %s at preset %s failed:\n%s", info.name, preset, traceback.format_exc())
    _LOG.info("cache warmed for every page's defaults and presets")


def failure(error: BaseException) -> None:
    """One session's computation failed: say so on its page, in plain text, and keep serving everyone else."""
    _LOG.error("a page failed:\n%s", "".join(traceback.format_exception(error)))
    app = words("app")
    st.error(app["failure.note"], icon=":material/error:")
    message = f"{type(error).__name__}: {error}"
    st.text(message if len(message) <= MAX_NOTE else message[:MAX_NOTE] + " …")
