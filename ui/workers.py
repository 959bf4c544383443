"""Experiments off the server's interpreter: a small pool of worker processes.

Every session of a Streamlit server is a thread of one Python process, so the GIL lets one of them run Python
at a time, and the experiments here are mostly Python (small tensors, many ops). A class of thirty on two cores
then waits on one. The pool runs core functions in processes of their own, started by a fork server that has
imported core once (its pages are shared copy-on-write, not copied), so the server's interpreter is left to
Streamlit and the cores to the experiments.

Each worker runs one job at a time. A worker that dies (a crash in native code, the memory limit) takes down only
the job it ran: a new worker takes its place and the job is tried once more, and a job that kills its process
twice is that session's error, never the server's nor another session's. A worker that has grown by RENEW_AFTER
bytes of its own is replaced too, so memory stays flat however long a class runs.

GRADIENT_LAB_WORKERS sets the number of worker processes (default: one per core);
0 runs everything in the server's own process, as AppTest and a notebook do.
"""

from __future__ import annotations

import heapq
import io
import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import context, forkserver, popen_forkserver, reduction, spawn, util
from typing import Any

_LOG = logging.getLogger(__name__)
TIMEOUT = 120.0  # seconds a session waits for one job before it gets a note instead
PRELOAD = ["core.worker_preload"]  # what the fork server imports and computes once, for every worker it forks


class WorkerFailed(RuntimeError):
    """A job's worker process died twice: the job, not the server, is what failed."""


RENEW_AFTER = 64 * 2**20  # bytes of its own a worker may gain over its start before a new one replaces it
SMALL_CONTAINER = 1.5 * 2**30  # bytes: below this memory limit, one worker (each takes about 0.25 GB)


def memory_limit() -> float | None:
    """The container's memory limit (cgroup v2 or v1), or None when there is none."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = open(path, encoding="ascii").read().strip()  # noqa: SIM115
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 2**60:
            return float(raw)
    return None


def configured_workers() -> int:
    """GRADIENT_LAB_WORKERS, else one worker per core, and one alone in a container of less than 1.5 GB."""
    raw = os.environ.get("GRADIENT_LAB_WORKERS")
    if raw is not None:
        try:
            return max(0, int(raw))
        except ValueError:
            _LOG.warning("GRADIENT_LAB_WORKERS=%r is not a number; using the default", raw)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = memory_limit()
    return 1 if limit is not None and limit < SMALL_CONTAINER else max(1, cores)


class _Popen(popen_forkserver.Popen):
    """The fork server's Popen, without the instruction to run the parent's __main__ again in the child.

    multiprocessing makes a new process import the parent's main script. Under `streamlit run`, the __main__
    of a running session is the app's own script (Streamlit sets it so for the script's run), and running it in
    a worker would start the app there. A worker needs core alone, which the fork server has imported. The rest
    is popen_forkserver.Popen._launch as it is.
    """

    def _launch(self, process_obj):
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


def _start() -> Callable[[], None]:
    """What a worker runs once as it starts, before its first job: core.worker.start, sent by reference (the worker
    has core.worker from the fork server; a function of this module would make it import Streamlit)."""
    from core import worker

    return worker.start


class _Process(context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):
        return _Popen(process_obj)


class _Context(context.ForkServerContext):
    Process = _Process


_asked = threading.local()


def asked_at(moment: float | None = None) -> float:
    """When the script run this thread works for began (set it with a moment; read it without): the order in which
    the pool serves jobs. A thread that never set it is asking now."""
    if moment is not None:
        _asked.moment = moment
    return getattr(_asked, "moment", None) or time.monotonic()


class _Ticket:
    """A request waiting for a place: the place it is handed, and the event that says it has been."""

    def __init__(self) -> None:
        self.place, self.ready = -1, threading.Event()


class Turns:
    """Places in the pool (one per worker process) handed out oldest request first: a job belongs to the script run
    that asked for it, and the run that began first is served first, its follow-up jobs (a chart spec after its
    data) included.

    An executor's own queue serves jobs in the order they arrive, so under a class every rerun's jobs wait behind
    every job asked for meanwhile, twice for a chart (its data, then its spec), and all reruns finish late together.
    Here one job at a time holds each place, and the others wait in order of their run's start.
    """

    def __init__(self, places: int):
        self._free: list[int] = list(range(places))
        self._waiting: list[tuple[float, int, _Ticket]] = []
        self._lock, self._count = threading.Lock(), itertools.count()

    def take(self, moment: float) -> int:
        with self._lock:
            if self._free and not self._waiting:
                return self._free.pop()
            ticket = _Ticket()
            heapq.heappush(self._waiting, (moment, next(self._count), ticket))
        ticket.ready.wait()
        return ticket.place

    def give_back(self, place: int) -> None:
        with self._lock:
            if self._waiting:
                ticket = heapq.heappop(self._waiting)[2]  # the place passes straight to the oldest request
                ticket.place = place
                ticket.ready.set()
            else:
                self._free.append(place)


class _Worker:
    """One worker process (an executor of one), started at once, and the memory of its own it started with."""

    def __init__(self, mp_context: _Context):
        self.executor = ProcessPoolExecutor(1, mp_context=mp_context, initializer=_start())
        self.executor.submit(int)  # the process forks now, while the job that made it goes on, not at its first job
        self.start: int | None = None

    def run(self, fn: Callable, args: tuple, kwargs: dict, renew_after: int) -> tuple[Any, bool]:
        """(fn(*args, **kwargs), whether this worker has outgrown its start by more than renew_after bytes)."""
        from core import worker  # imported by the server already (ui.figure_spec sends its chart_spec)

        value, own = self.executor.submit(worker.job, fn, args, kwargs).result(timeout=TIMEOUT)
        if own is None:
            return value, False
        if self.start is None:
            self.start = own
        return value, own - self.start > renew_after

    def stop(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)  # an idle process exits now, a busy one after its job


class Pool:
    """Worker processes, one job at a time each. A worker is replaced by a new one, forked from the fork server,
    when it dies, when a job outlasts TIMEOUT, and when it has grown by more than `renew_after` bytes of its own.

    What a worker gains as a class goes on is its core caches (bounded lru_caches, most of the growth: 34 MB of its
    own at the start, 78 MB after every page once at the defaults, 141 MB after six seeds of every page) and the
    shared pages it wrote to (copy-on-write). A new worker starts again from the fork server's pages, which hold
    every page's defaults, so a class that runs for hours keeps each worker within about its start plus
    `renew_after`.
    """

    def __init__(self, workers: int, renew_after: int = RENEW_AFTER):
        self.workers, self.renew_after = workers, renew_after
        self._places: list[_Worker | None] = [None] * workers  # each is used by the one thread holding its turn
        self._turns = Turns(workers)
        self._lock = threading.Lock()
        self.renewed = 0  # workers replaced because they grew

    @staticmethod
    def _context() -> _Context:
        # read by the fork server's C library when it starts, so by every worker forked from it: fewer malloc
        # arenas, less memory held in free lists between jobs; and every block of 256 KB or more (a tensor of a
        # sweep) mapped on its own and unmapped when freed, not kept in the heap until the next trim. Measured
        # in one process over every figure at every preset and 3 seeds: 492 against 592 MB at the end, same time.
        os.environ.setdefault("MALLOC_ARENA_MAX", "2")
        os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(256 * 2**10))
        mp_context = _Context()
        mp_context.set_forkserver_preload(PRELOAD)
        return mp_context

    def _worker(self, place: int) -> _Worker:
        with self._lock:
            worker = self._places[place]
            if worker is None:
                worker = self._places[place] = _Worker(self._context())
            return worker

    def _replace(self, place: int) -> None:
        with self._lock:
            worker, self._places[place] = self._places[place], None
        if worker is not None:
            worker.stop()

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """fn(*args, **kwargs) in a worker; its exception is raised here.

        When a worker dies, only the job it ran fails: its place gets a new worker, and the job is tried once more
        there, so a job that kills its process twice is that session's error (WorkerFailed), and no other
        session's job is touched.
        """
        place = self._turns.take(asked_at())
        try:
            return self._call(place, fn, args, kwargs)
        finally:
            self._turns.give_back(place)

    def _call(self, place: int, fn: Callable, args: tuple, kwargs: dict) -> Any:
        name = getattr(fn, "__qualname__", fn)
        for attempt in (1, 2):
            try:
                value, outgrown = self._worker(place).run(fn, args, kwargs, self.renew_after)
            except BrokenProcessPool:
                _LOG.warning("a worker process died while %s ran (attempt %d)", name, attempt)
                self._replace(place)
                continue
            except TimeoutError:
                self._replace(place)  # the job goes on in the old process, which exits when it is done
                raise
            if outgrown:
                _LOG.info("a worker process outgrew its start by %d MB: replaced", self.renew_after >> 20)
                self._replace(place)
                self._worker(place)  # the new one forks now, not at the next job
                self.renewed += 1
            return value
        raise WorkerFailed(f"{name} stopped its worker process twice")

    def shutdown(self) -> None:
        with self._lock:
            running, self._places = [w for w in self._places if w is not None], [None] * self.workers
        for worker in running:
            worker.executor.shutdown(wait=True, cancel_futures=True)


_pool: Pool | None = None
_pool_lock = threading.Lock()


def pool() -> Pool | None:
    """The process's pool, or None when GRADIENT_LAB_WORKERS=0."""
    global _pool
    with _pool_lock:
        if _pool is None and configured_workers() > 0:
            _pool = Pool(configured_workers())
        return _pool


def portable(fn: Callable) -> Callable | None:
    """fn as a worker can find it (by module and name), or None when it has no such name.

    A function passes to a worker by reference. One wrapped under another name (an lru_cache of a core
    function, kept in a charts module) is sent as the function it wraps; a lambda cannot be sent at all.
    """
    target: Any = fn
    while target is not None:
        module = sys.modules.get(getattr(target, "__module__", None) or "")
        found: Any = module
        for part in getattr(target, "__qualname__", "<lambda>").split("."):
            found = getattr(found, part, None)
        if found is target:
            return target
        target = getattr(target, "__wrapped__", None)
    return None


def compute(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs), in a worker process when there is a pool (here, for what cannot be sent)."""
    workers, target = pool(), portable(fn)
    if workers is None or target is None:
        return fn(*args, **kwargs)
    return workers.call(target, *args, **kwargs)
