"""`make bench`: how long each page takes, cold and on a rerun after a control change, beside a floor page.

Every number is a median over repeats, measured with AppTest in this process (the same script runner
Streamlit uses, minus the browser). Cold: caches cleared, the page's first run. Rerun: one control moved
to a value not seen before (so its cached experiments really recompute), for every control of the page.
The budget is a rerun within 250 ms median at default settings on a 2-core machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

import core
from core.registry import PAGES

ROOT = Path(__file__).resolve().parent.parent
BUDGET_MS = 250.0
logging.getLogger("streamlit").setLevel(logging.ERROR)
os.environ.setdefault("GRADIENT_LAB_WARM", "0")  # a cold run must be cold
os.environ.setdefault("GRADIENT_LAB_WORKERS", "0")  # the script's own cost here (bench-class: the pool)


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def fresh_values(control, count: int) -> list:
    """count values for a control, none its default, spread over its range (selects and toggles cycle)."""
    if control.kind in ("select", "toggle"):
        others = [v for v in control.extremes if v != control.default] or list(control.extremes)
        return [others[i % len(others)] for i in range(count)]
    lo, hi = control.lo, control.hi
    integer = control.kind in ("int", "log10")
    candidates = []
    for i in range(1, 4 * count + 2):
        v = lo + (hi - lo) * i / (4 * count + 2)
        v = int(round(v)) if integer else round(v, 6)
        if v != control.default and v not in candidates:
            candidates.append(v)
    return candidates[:count] or [hi]


def widget(at: AppTest, key: str):
    for kind in ("slider", "selectbox", "toggle", "number_input"):
        for w in at.get(kind):
            if getattr(w, "key", None) == key:
                return w
    raise KeyError(key)


def open_app(path: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    at.run()
    at.switch_page(path)
    return at


def clear_caches() -> None:
    """The app's shared cache, Streamlit's and every functools cache in core/, so a cold run computes everything."""
    from ui.cache import CACHE

    CACHE.clear()
    st.cache_data.clear()
    core.clear_caches()


def measure_page(info, repeats: int) -> dict:
    colds = []
    for _ in range(repeats):
        clear_caches()
        at = open_app(info.path)
        colds.append(timed(at.run))
        assert not at.exception, [e.value for e in at.exception]
    reruns: dict[str, list[float]] = {}
    for control in info.core.CONTROLS:
        key = f"{info.name}_{control.key}"
        values = fresh_values(control, repeats)
        times = []
        for value in values:
            at.run()  # back at the state left by the previous value; caches warm for it
            times.append(timed(lambda v=value, k=key: widget(at, k).set_value(v).run()))
            assert not at.exception, [e.value for e in at.exception]
            widget(at, key).set_value(control.default).run()
        reruns[control.key] = times
    per_control = {k: statistics.median(v) for k, v in reruns.items()}
    all_reruns = [t for v in reruns.values() for t in v]
    return {"cold": statistics.median(colds), "rerun": statistics.median(all_reruns),
            "worst_control": max(per_control, key=per_control.get), "worst": max(per_control.values())}


def measure_floor(repeats: int) -> dict:
    at = AppTest.from_file(str(ROOT / "bench" / "floor_page.py"), default_timeout=60)
    colds = [timed(lambda: AppTest.from_file(str(ROOT / "bench" / "floor_page.py")).run()) for _ in range(repeats)]
    at.run()
    reruns = [timed(lambda v=v: at.slider[0].set_value(v).run()) for v in range(20, 20 + 4 * repeats, 4)]
    return {"cold": statistics.median(colds), "rerun": statistics.median(reruns)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the Markdown report here (else print it)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pages", nargs="*", help="page names (default: every registered page)")
    parser.add_argument("--skip-figures", action="store_true", help="do not time the figure export")
    args = parser.parse_args()
    os.chdir(ROOT)
    chosen = [p for p in PAGES if not args.pages or p.name in args.pages]
    floor = measure_floor(args.repeats)
    rows = [(p.name, measure_page(p, args.repeats)) for p in chosen]
    lines = [
        "# Performance",
        "",
        f"Measured by `make bench` ({Path(__file__).name}) on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__}, streamlit {st.__version__}; "
        f"median of {args.repeats} repeats, in milliseconds. Budget: a rerun after a control change within "
        f"{BUDGET_MS:.0f} ms median at default settings.",
        "",
        "- cold: every cache cleared (Streamlit's and the functools caches in core/), the page's first run;",
        "- rerun: one control moved to a value not seen before, so what depends on it recomputes; median over "
        "every control of the page and every repeat; worst: the control with the slowest median;",
        "- floor: a page with one slider and one Altair chart, measured in the same run; ratio: rerun / floor rerun.",
        "",
        "| page | cold | rerun | worst control (median) | floor rerun | ratio | within budget |",
        "| --- | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for name, r in rows:
        ok = "yes" if r["rerun"] <= BUDGET_MS else "**no**"
        lines.append(f"| {name} | {r['cold']:.0f} | {r['rerun']:.0f} | {r['worst_control']} ({r['worst']:.0f}) | "
                     f"{floor['rerun']:.0f} | {r['rerun'] / floor['rerun']:.1f} | {ok} |")
    lines.append(f"| floor page | {floor['cold']:.0f} | {floor['rerun']:.0f} | slider | {floor['rerun']:.0f} | 1.0 | "
                 f"{'yes' if floor['rerun'] <= BUDGET_MS else '**no**'} |")
    if not args.skip_figures:
        lines += ["", *measure_figures()]
    report = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    print(report)


def measure_figures() -> list[str]:
    """`make figures` as a teacher runs it: a fresh process exporting every figure of every page and preset."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "core.export", "--out", out], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        files = sum(1 for _ in Path(out).rglob("*.*"))
    figures = files // 4  # png, svg, csv and json per figure
    return [
        "## Figure export",
        "",
        f"`make figures` (`python -m core.export`, a fresh process): {figures} figures, every page at its defaults "
        f"and every preset, each as PNG, SVG, CSV and JSON ({files} files), in {seconds:.0f} s. "
        f"Budget: 120 s. {'Within budget.' if seconds <= 120 else '**Over budget.**'}",
    ]


if __name__ == "__main__":
    main()
