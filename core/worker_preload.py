"""What the workers' fork server imports (ui.workers.PRELOAD): core.worker, then every page's figures computed once
at their defaults, before the first worker is forked.

An experiment's first run imports and initialises what torch loads lazily (its first backward and optimizer
step import sympy and mpmath, a profiler import brings cProfile and more): about 75 MB that no later run adds to.
Made in each worker, that is 75 MB per worker; made here, every worker shares one copy with the fork server,
copy-on-write. The results stay in core's lru caches, shared the same way.

The server imports core.worker but never this module, so it pays for none of it.
"""

from __future__ import annotations

import gc
import logging
import traceback

import core.worker  # noqa: F401 - what every job needs, imported before anything is computed
from core import figures, heap
from core.export import settings_for
from core.registry import PAGES

_LOG = logging.getLogger(__name__)


def prime() -> None:
    for info in PAGES:
        settings = settings_for(info.name, None)
        for name, figure in figures.registry(info.name).items():
            try:
                figure.data(**figure.arguments(settings))
            except Exception:  # noqa: BLE001 - a fork server that raised here would leave the pool without workers
                _LOG.warning("priming %s.%s failed:\n%s", info.name, name, traceback.format_exc())


prime()
# As core.worker does for the imports: out of the collector's reach, so no worker's collection writes to (and so
# copies) these shared pages.
gc.collect()
gc.freeze()
heap.trim()  # the runs' temporaries, freed: not copied into every worker
