"""Experiments off the server's interpreter: a small pool of worker processes.

Every session of a Streamlit server is a thread of one Python process, so the GIL lets one of them run Python
at a time, and the experiments here are mostly Python (small tensors, many ops). A class of thirty on two cores
then waits on one. The pool runs core functions in processes of their own, started by a fork server that has
imported core once (its pages are shared copy-on-write, not copied), so the server's interpreter is left to
Streamlit and the cores to the experiments.

A worker that dies (a crash in native code, the memory limit) takes down only the jobs it held: the pool is
replaced, each of those jobs is tried once more on the new one, and a job that kills a worker twice is that
session's error, never the server's.

GRADIENT_LAB_WORKERS sets the number of worker processes (default: one fewer than the cores, at least one);
0 runs everything in the server's own process, as AppTest and a notebook do.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

_LOG = logging.getLogger(__name__)
TIMEOUT = 120.0  # seconds a session waits for one job before it gets a note instead
# What the fork server imports once, for every worker it forks. "__main__" (streamlit's own command, under
# `streamlit run`) is among them so that a worker finds it already there instead of running it again.
PRELOAD = ["__main__", "core.worker"]


class WorkerFailed(RuntimeError):
    """A job's worker process died twice: the job, not the server, is what failed."""


def configured_workers() -> int:
    raw = os.environ.get("GRADIENT_LAB_WORKERS")
    if raw is not None:
        try:
            return max(0, int(raw))
        except ValueError:
            _LOG.warning("GRADIENT_LAB_WORKERS=%r is not a number; using the default", raw)
    return max(1, (os.cpu_count() or 2) - 1)


class Pool:
    """A ProcessPoolExecutor that is made on first use and made anew when one of its workers dies."""

    def __init__(self, workers: int):
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(PRELOAD)
                self._executor = ProcessPoolExecutor(self.workers, mp_context=context)
            return self._executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:  # the first session to notice replaces it; the others reuse the new one
                self._executor = None
                broken.shutdown(wait=False, cancel_futures=True)

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> Future:
        return self._get().submit(fn, *args, **kwargs)

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """fn(*args, **kwargs) in a worker; its exception is raised here, a dead worker is retried once."""
        for attempt in (1, 2):
            executor = self._get()
            try:
                return executor.submit(fn, *args, **kwargs).result(timeout=TIMEOUT)
            except BrokenProcessPool:
                _LOG.warning("a worker process died running %s (attempt %d)", getattr(fn, "__qualname__", fn), attempt)
                self._replace(executor)
        raise WorkerFailed(f"{getattr(fn, '__qualname__', fn)} stopped its worker process twice")

    def shutdown(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None


_pool: Pool | None = None
_pool_lock = threading.Lock()


def pool() -> Pool | None:
    """The process's pool, or None when GRADIENT_LAB_WORKERS=0."""
    global _pool
    with _pool_lock:
        if _pool is None and configured_workers() > 0:
            _pool = Pool(configured_workers())
        return _pool


def compute(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs), in a worker process when there is a pool."""
    workers = pool()
    if workers is None:
        return fn(*args, **kwargs)
    return workers.call(fn, *args, **kwargs)
