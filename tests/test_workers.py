"""The worker processes (ui/workers.py) and the shared cache (ui/cache.py): same numbers, one computation per
key however many sessions ask, and a crash that is one job's error, never the server's."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from core import export
from core.figures import registry
from tests import workers_jobs
from ui import cache, workers

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pool():
    p = workers.Pool(1)
    yield p
    p.shutdown()


def test_a_figure_computed_in_a_worker_is_bit_identical_to_one_computed_here(pool):
    for page in ("loss_scaling", "explosion", "accumulation"):
        settings = export.settings_for(page, None, seed=5)
        for name, figure in registry(page).items():
            here = figure.data(**figure.arguments(settings))
            there = pool.call(figure.data, **figure.arguments(settings))
            pd.testing.assert_frame_equal(there, here, check_exact=True, obj=f"{page}/{name}")


def test_the_worker_is_another_process(pool):
    assert pool.call(workers_jobs.pid) != os.getpid()


def test_a_worker_builds_charts_without_altairs_per_object_checks_and_the_server_keeps_them(pool):
    assert pool.call(workers_jobs.altair_checks) is False  # core.worker.start, run as the worker started
    assert workers_jobs.altair_checks() is True


def test_a_worker_gives_freed_memory_back_and_starts_with_what_the_fork_server_computed():
    fresh = workers.Pool(1)
    try:
        # the first job of a new worker: torch's lazily imported modules (its first optimizer step imports mpmath)
        # are there already, made once in the fork server (core.worker_preload) and shared with every worker
        assert fresh.call(workers_jobs.imported, "mpmath") is True
        assert fresh.call(workers_jobs.trimming) is True
    finally:
        fresh.shutdown()
    assert workers_jobs.imported("core.worker_preload") is False  # the server never pays for the priming


def test_heap_trimming_runs_one_thread_per_process():
    from core import heap

    assert heap.trim() is True  # glibc: malloc_trim exists
    assert heap.keep_trimmed(60) and heap.keep_trimmed(60)
    assert sum(t.name == "gradient-lab-heap-trim" for t in threading.enumerate()) == 1


def test_the_server_gives_arrow_the_c_librarys_malloc():
    """In a process of its own: the pool is process-wide, and this one's other tests keep pyarrow's default."""
    code = ("import pyarrow as pa; before = pa.default_memory_pool().backend_name; from core import heap; "
            "assert heap.arrow_on_malloc(); print(before, pa.default_memory_pool().backend_name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    before, after = out.split()
    assert after == "system" and before != "system"  # trim() reaches what the charts' Arrow buffers freed


def test_an_exception_in_a_job_reaches_the_caller_and_the_worker_lives_on(pool):
    before = pool.call(workers_jobs.pid)
    with pytest.raises(ValueError, match="bad settings"):
        pool.call(workers_jobs.fail, "bad settings")
    assert pool.call(workers_jobs.pid) == before


def test_a_crashing_job_is_its_own_error_and_the_next_job_runs(pool):
    with pytest.raises(workers.WorkerFailed, match="crash"):
        pool.call(workers_jobs.crash)
    settings = export.settings_for("reduction", None)
    figure = registry("reduction")["norms"]
    assert len(pool.call(figure.data, **figure.arguments(settings))) > 0  # a new worker took over


def test_a_crash_does_not_fail_other_sessions_jobs_running_beside_it():
    p = workers.Pool(2)
    try:
        results, errors = [], []

        def other() -> None:
            try:
                for _ in range(5):
                    results.append(p.call(time.sleep, 0.05))
            except Exception as error:  # noqa: BLE001
                errors.append(error)

        thread = threading.Thread(target=other)
        thread.start()
        with pytest.raises(workers.WorkerFailed):
            p.call(workers_jobs.crash)
        thread.join()
        assert errors == [] and len(results) == 5  # the other session's jobs were retried on the new pool
    finally:
        p.shutdown()


def test_a_worker_that_grew_past_its_bound_is_replaced_by_a_new_one_and_one_that_did_not_is_kept():
    p = workers.Pool(1, renew_after=32 << 20)
    try:
        p.call(workers_jobs.measure_every_job)  # its memory as it started: the bound counts from here
        first = p.call(workers_jobs.pid)
        p.call(workers_jobs.hold, 8)
        assert p.call(workers_jobs.pid) == first and p.renewed == 0  # 8 MB more: within the bound
        p.call(workers_jobs.hold, 64)
        assert p.call(workers_jobs.pid) == first  # this job saw the growth and returned; then the worker went
        assert p.renewed == 1
        second = p.call(workers_jobs.pid)
        assert second != first
        assert p.call(workers_jobs.imported, "mpmath") is True  # forked from the fork server, primed as the first
    finally:
        p.shutdown()


def test_a_workers_own_memory_counts_what_it_wrote_and_not_what_it_shares():
    from core import heap

    before = heap.own_bytes()
    block = bytearray(b"x") * (32 << 20)  # 32 MB, every page written, no temporary beside it
    after = heap.own_bytes()
    assert before is not None and after is not None
    assert 30 << 20 <= after - before <= 40 << 20, (before, after)
    del block


def test_the_cache_makes_each_value_once_however_many_ask_at_once():
    shared = cache.SharedCache()
    calls = []

    def make():
        calls.append(1)
        time.sleep(0.2)
        return {"value": 42}

    got = []
    threads = [threading.Thread(target=lambda: got.append(shared.get("k", make))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(got) == 8 and all(g == {"value": 42} for g in got)
    assert shared.get("k", make) == {"value": 42} and len(calls) == 1  # a later hit: an equal copy, not made again


def test_a_failed_computation_is_not_cached_and_is_every_waiters_error():
    shared = cache.SharedCache()
    with pytest.raises(ValueError):
        shared.get("k", lambda: workers_jobs.fail("no"))
    assert len(shared) == 0
    assert shared.get("k", lambda: 7) == 7


def test_the_cache_stays_within_its_bounds():
    shared = cache.SharedCache(max_entries=10, max_bytes=50 * 2**20)
    for i in range(100):
        shared.get(i, lambda: b"x" * 4_000)
    assert len(shared) == 10 and shared.bytes <= 50 * 2**20
    assert 99 in shared._entries and 0 not in shared._entries  # least recently used go first
    by_bytes = cache.SharedCache(max_entries=1000, max_bytes=5 * (cache.ENTRY_OVERHEAD + 4_100))
    for i in range(100):
        by_bytes.get(i, lambda: b"x" * 4_000)
    assert len(by_bytes) == 5 and by_bytes.bytes <= by_bytes.max_bytes


@pytest.mark.parametrize("page", ["reduction", "multi_objective", "accuracy_vs_loss"])
def test_the_cache_counts_what_it_holds_and_holds_less_than_the_objects_would_take(page):
    """Independent of the cache's count: what storing each figure's data and its spec (as ui.figure_spec keeps it,
    data sets as Arrow bytes) allocates, traced, against what the same values take as objects (unpickled, traced).
    The count may be high by 10%, never low by more; each pickled entry takes at least 6 KB less than its objects
    (8 to 9 KB measured)."""
    import pickle
    import tracemalloc

    import ui

    settings = export.settings_for(page, None)
    values = []
    for name, figure in registry(page).items():
        data = figure.data(**figure.arguments(settings))
        values += [data, ui.figure_spec(page, name, dict(figure.view(settings)))]
    shared = cache.SharedCache()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, value in enumerate(values):
            shared.get(i, lambda value=value: value)
        held = tracemalloc.get_traced_memory()[0] - before
        before = tracemalloc.get_traced_memory()[0]
        copies = [pickle.loads(pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)) for v in values]
        as_objects = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0.9 * held <= shared.bytes <= 1.1 * held + 4096, (shared.bytes, held)
    assert as_objects - held >= 6 * 1024 * len(values), (held, as_objects, len(values))
    for i, (value, copy) in enumerate(zip(values, copies, strict=True)):  # a hit: an equal value, from the bytes
        got = shared.peek(i)
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got, value, check_exact=True)
        else:
            assert got == value == copy


def test_workers_setting():
    assert workers.configured_workers() >= 0
    os.environ["GRADIENT_LAB_WORKERS"] = "3"
    try:
        assert workers.configured_workers() == 3
    finally:
        os.environ["GRADIENT_LAB_WORKERS"] = "0"


def test_every_figures_data_function_can_be_sent_to_a_worker():
    from core.registry import PAGES

    for info in PAGES:
        for name, figure in registry(info.name).items():
            assert workers.portable(figure.data) is not None, f"{info.name}/{name}: not reachable by its name"


def test_a_function_wrapped_under_another_name_is_sent_as_the_function_it_wraps(pool):
    import core.charts.reduction as charts
    import core.reduction as reduction

    assert workers.portable(charts.norm_sweep) is reduction.norm_sweep
    assert workers.portable(lambda: 1) is None  # a lambda runs in the server's own process instead
    assert workers.compute(lambda: 1) == 1


def test_a_small_container_gets_one_worker(monkeypatch):
    monkeypatch.delenv("GRADIENT_LAB_WORKERS", raising=False)
    monkeypatch.setattr(workers, "memory_limit", lambda: 1.0 * 2**30)
    assert workers.configured_workers() == 1
    monkeypatch.setattr(workers, "memory_limit", lambda: None)
    assert workers.configured_workers() == max(1, len(os.sched_getaffinity(0)))
