"""How many sessions' scripts draw at once: a few, while the rest wait their turn in line.

Every session's script is a thread of the server's one interpreter. Thirty of them drawing at once share one GIL
in 5 ms slices, so each takes thirty times as long as it would alone, and a lock that one of them holds while it
waits for its slice (Streamlit's config lock, the media file manager's) stops the others too. A script that
draws holds a place at this gate; a script that waits for a computation (ui.cache, ui.workers) gives its place
up meanwhile, so a run that only needs cached results is never held up by runs whose experiments compute.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

PLACES = max(1, int(os.environ.get("GRADIENT_LAB_DRAWING", "2")))  # scripts drawing at once
_gate = threading.BoundedSemaphore(PLACES)
_local = threading.local()


@contextlib.contextmanager
def drawing() -> Iterator[None]:
    """Hold a place for a whole script run; a run inside a run (st.navigation's page) holds the same place."""
    if getattr(_local, "held", False):
        yield
        return
    _gate.acquire()
    _local.held = True
    try:
        yield
    finally:
        if _local.held:
            _local.held = False
            _gate.release()


@contextlib.contextmanager
def waiting() -> Iterator[None]:
    """Give the place up while this thread waits for a computation, and take one again after it."""
    if not getattr(_local, "held", False):
        yield
        return
    _local.held = False
    _gate.release()
    try:
        yield
    finally:
        _gate.acquire()
        _local.held = True
