"""DESIGN rule 12: many sessions at once in one server process.

Sessions are threads of one process. Every figure's data function of every page runs from 8 threads at once,
each with a seed of its own, and must give exactly what the same call gives alone; and core never touches the
process-global state another thread could see: the global RNG, the profiler, forward-mode AD levels, flags.
"""

from __future__ import annotations

import random
import threading

import pandas as pd
import pytest
import torch

from core import clear_caches, export
from core.figures import registry
from core.registry import PAGES

THREADS = 8
JOBS = [(info.name, name) for info in PAGES for name in registry(info.name)]


def compute(page: str, name: str, seed: int) -> pd.DataFrame:
    figure = registry(page)[name]
    return figure.data(**figure.arguments(export.settings_for(page, None, seed)))


def test_every_figure_from_eight_threads_at_once_is_bit_identical_to_alone():
    seeds = list(range(100, 100 + THREADS))
    clear_caches()
    alone = {(page, name, seed): compute(page, name, seed) for seed in seeds for page, name in JOBS}
    clear_caches()  # the threads compute everything again, nothing comes from a cache the sequential run filled
    together: dict = {}
    failures: list[str] = []
    start = threading.Barrier(THREADS)

    def session(seed: int) -> None:
        order = JOBS[:]
        random.Random(seed).shuffle(order)  # each session walks the pages in its own order
        start.wait()
        for page, name in order:
            try:
                together[page, name, seed] = compute(page, name, seed)
            except Exception as error:  # noqa: BLE001 - every failure is reported, with where it happened
                failures.append(f"{page}/{name} seed {seed}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=session, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert together.keys() == alone.keys()
    for key, frame in alone.items():
        pd.testing.assert_frame_equal(together[key], frame, check_exact=True, obj="/".join(map(str, key)))


@pytest.mark.parametrize(("page", "name"), JOBS, ids=[f"{p}/{n}" for p, n in JOBS])
def test_no_figure_draws_from_or_moves_the_global_rng(page, name):
    clear_caches()
    before = torch.random.get_rng_state()
    compute(page, name, 3)
    assert torch.equal(torch.random.get_rng_state(), before), "drew from torch's global RNG: use a torch.Generator"


@pytest.mark.parametrize(("page", "name"), JOBS, ids=[f"{p}/{n}" for p, n in JOBS])
def test_no_figure_leaves_a_global_flag_changed(page, name):
    flags = lambda: (torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled(),  # noqa: E731
                     torch.is_anomaly_enabled(), torch.are_deterministic_algorithms_enabled(),
                     torch.is_autocast_enabled("cpu"), torch.autograd.profiler._is_profiler_enabled)
    before = flags()
    clear_caches()
    compute(page, name, 3)
    assert flags() == before


def test_core_uses_no_process_wide_profiler_or_unguarded_forward_mode():
    import ast

    from tests.helpers import ROOT

    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [getattr(node, "module", None) or ""] + [alias.name for alias in node.names]
                assert not any(n.startswith("torch.profiler") for n in names), (path, "one profiler per process")
            if isinstance(node, ast.Call):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                assert called not in ("detect_anomaly", "set_detect_anomaly"), (path, "anomaly mode is global")
                assert called not in ("profile",) or not isinstance(node.func, ast.Name), (path, "a profiler")
                if called in ("jacfwd", "jvp", "dual_level", "make_dual"):  # forward AD: one registry per process
                    fn = next((f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                               and f.lineno <= node.lineno <= f.end_lineno), None)
                    assert fn is not None and fn.name == "jacobian_forward", (path, node.lineno)
