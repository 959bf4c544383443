"""How long a slider move takes to be redrawn in a real browser, one student alone.

    .venv/bin/python -m bench.redraw [--moves 8] [--pages loss_scaling,reduction]

Starts `streamlit run` on a free loopback port, opens each concept page in Debian's Chromium (headless,
through Playwright), and for each move focuses a slider, presses an arrow key and times, inside the page, from
the key going down until the app reports its run finished (the stApp element's data-test-script-state goes from
"running" back to "notRunning") and the browser has painted the next frame. Prints median and max per page and
over all; `make bench-class` runs it after its classes and puts its table and goal in docs/performance.md. A
timing, so never a test.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from core.registry import PAGES

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("GRADIENT_LAB_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]
RUN_STATE = '[data-testid="stApp"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    log = tempfile.NamedTemporaryFile(prefix="redraw-server-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen([str(ROOT / ".venv/bin/streamlit"), "run", "streamlit_app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"the server did not answer within 90 s; its log: {log.name}")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def wait_idle(page, timeout: float = 120.0) -> None:
    page.wait_for_function(f"document.querySelector('{RUN_STATE}')?.dataset.testScriptState === 'notRunning'",
                           timeout=timeout * 1000)


# Installed before each key press: resolves with the milliseconds from the key going down until the run it starts
# has finished (the stApp element's data-test-script-state back at "notRunning" after "running") and the browser
# has painted the next frame, all timed inside the page; null if no run followed within the time allowed.
PROBE = """(allowed) => { window.__glRedraw = new Promise(resolve => {
  let start = null, ran = false;
  document.addEventListener('keydown', () => { start ??= performance.now(); }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const state = document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState;
    if (start === null) return;
    if (state === 'running') ran = true;
    else if (ran && state === 'notRunning') {
      observer.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - start)));
    }
  });
  observer.observe(document, {subtree: true, attributes: true, attributeFilter: ['data-test-script-state']});
  setTimeout(() => { observer.disconnect(); resolve(null); }, allowed);
}); }"""


def measure(port: int, pages: list[str], moves: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for name in pages:
            page.goto(f"http://127.0.0.1:{port}/{name}")
            sliders = page.locator('[data-testid="stSlider"] input[type="range"]')
            sliders.first.wait_for(state="attached", timeout=120_000)
            wait_idle(page)
            count = sliders.count()
            times[name] = []
            for i in range(moves):
                slider = sliders.nth((i * 7) % count)
                slider.scroll_into_view_if_needed()
                slider.focus()
                page.evaluate(PROBE, 30_000)
                slider.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
                took = page.evaluate("() => window.__glRedraw")
                if took is not None:  # a slider already at its end: nothing moved, nothing to time
                    times[name].append(took / 1000)
                wait_idle(page)
        browser.close()
    return times


def summary(times: dict[str, list[float]]) -> str:
    every = [t for ts in times.values() for t in ts]
    rows = [f"| {name} | {len(ts)} | {statistics.median(ts) * 1000:.0f} | {max(ts) * 1000:.0f} |"
            for name, ts in times.items()]
    rows.append(f"| all pages | {len(every)} | {statistics.median(every) * 1000:.0f} | {max(every) * 1000:.0f} |")
    return "\n".join(["| page | moves | median (ms) | max (ms) |", "| --- | ---: | ---: | ---: |", *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redraw", description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=8, help="slider moves per page (default 8)")
    parser.add_argument("--pages", default=",".join(p.name for p in PAGES), help="comma-separated concept pages")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", file=sys.stderr)
        return 3
    port = free_port()
    proc = start_server(port)
    try:
        names = [n for n in args.pages.split(",") if n]
        measure(port, names, 1)  # a first visit of every page: the cold start is not what this measures
        print(summary(measure(port, names, args.moves)))
    finally:
        stop(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
