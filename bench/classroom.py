"""`make bench-class`: a class of simulated students against a fresh `streamlit run`, and the report.

What one student does is what a browser does when a student opens the shared link, at the level of
Streamlit's protocol (no browser): GET `/`, `/_stcore/health` and `/_stcore/host-config`; one websocket
to `/_stcore/stream`; a `rerun_script` for the home page; a `rerun_script` with the page_script_hash of a
concept page (from the server's `navigation` message), as a navigation link sends it; then slider moves,
each a `rerun_script` with the whole page's widget state, one slider changed, and the query string the
frontend writes for URL-bound widgets. The client keeps Streamlit's message cache as the browser does.

One action's latency is from sending its `rerun_script` to receiving the `script_finished` that ends the
run. Errors are what a student would see: an exception or error box, a page not found, a compile error,
a run that never finishes, an HTTP status other than 200; dropped connections are websockets that fail.

Memory is the sum over the server and every process below it (worker pools included), sampled every
second: PSS from /proc/PID/smaps_rollup (shared pages counted once) and the plain RSS sum.

Phases of one run: the cold start (one visitor opens every page once, as a teacher preparing the
projector), one student alone (every page, --moves slider moves each), then one class per --students
entry, then an optional soak. Exit status: 0 when the run completed, whatever the numbers; 2 when the
server died; 3 when the instrument itself failed; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import decimal
import os
import platform
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetStates
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench import procmem
from bench.classreport import (
    SECTION,
    Action,
    MemSample,
    Phase,
    Summary,
    goal_table,
    goals,
    phase_table,
    replace_section,
    soak_table,
    summarize,
    trend_mb_per_min,
)
from bench.redraw import summary as redraw_summary

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only: the server is bound here and nothing else is ever addressed
MAX_STUDENTS = 60
MAX_SOAK = 30 * 60  # seconds
CACHE_AGE = 2  # runs an unused cached message survives: Streamlit's global.maxCachedMessageAge
MAX_MESSAGES = 5000  # ForwardMsgs one run may send before we call it runaway
SOAK_EVERY = 30.0  # seconds between rows of the soak's memory table
FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
            ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
ALERT_ERROR = 1  # Alert.Format.ERROR
INT = 0  # Slider.DataType.INT and NumberInput.DataType.INT


class ServerDied(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# Values as the frontend writes them
# ----------------------------------------------------------------------------------------------

def decimals(step: float) -> int:
    """Digits after the point of a slider step, e.g. 0.05 -> 2, 1e-07 -> 7, 1 -> 0."""
    return max(0, -decimal.Decimal(repr(float(step))).normalize().as_tuple().exponent)


def js_number(x: float) -> str:
    """A number as JavaScript's String(x) writes it, the way a bound slider's value lands in the URL."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    if 1e-6 <= abs(x) < 1e21:  # JavaScript keeps plain notation down to 1e-6; Python's repr leaves it at 1e-4
        text = format(decimal.Decimal(repr(x)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, _, exp = repr(x).partition("e")
    return f"{mantissa}e{int(exp):+d}" if exp else mantissa


# ----------------------------------------------------------------------------------------------
# The server: started in its own process group, watched, stopped
# ----------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class Server:
    """`streamlit run streamlit_app.py` as `make run` starts it, on a port of our own, bound to loopback."""

    def __init__(self, port: int):
        self.port = port
        fd, self.log_path = tempfile.mkstemp(prefix=f"bench-class-{port}-", suffix=".log")
        self.log = os.fdopen(fd, "w")
        cmd = [str(ROOT / ".venv" / "bin" / "streamlit"), "run", "streamlit_app.py", "--server.port", str(port),
               "--server.headless", "true", "--server.address", HOST]
        env = {**os.environ, "PYTHONFAULTHANDLER": "1"}  # a crash leaves every thread's stack in the log
        print(f"starting: {' '.join(cmd)}  (log: {self.log_path})", flush=True)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)  # its own process group: we stop all of it
        self.pid = self.proc.pid

    def ended(self) -> str:
        """'' while the server runs; else how it ended."""
        code = self.proc.poll()
        return "" if code is None else how_it_ended(code)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ended():
                raise ServerDied(f"the server ended while starting: {self.ended()}\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                status, _ = asyncio.run(http_get(self.port, "/_stcore/health", 2.0))
                if status == 200:
                    return
            time.sleep(0.5)
        raise ServerDied(f"the server was not healthy within {timeout:.0f} s\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        text = Path(self.log_path).read_text(errors="replace").splitlines()
        return "\n".join("  | " + line for line in text[-lines:])

    def tracebacks(self) -> int:
        self.log.flush()
        return Path(self.log_path).read_text(errors="replace").count("Traceback")

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL to whatever is left of it after 10 s."""
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and self.group_alive():
                self.proc.poll()
                time.sleep(0.1)
            if not self.group_alive():
                break
        self.proc.poll()
        self.log.close()

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        return self.proc.poll() is None or any(
            _pgid(pid) == self.pid for pid in procmem.parent_map() if pid != self.pid)


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


class Sampler(threading.Thread):
    """Every second: the memory of the server's process family, and whether the server still runs."""

    def __init__(self, bench: Bench):
        super().__init__(daemon=True, name="bench-class-sampler")
        self.bench = bench
        self.samples: list[MemSample] = []
        self.stopping = threading.Event()

    def sample(self) -> MemSample | None:
        b = self.bench
        if b.death:
            return None
        ended = b.server.ended()
        if ended:
            b.death = f"the server died at t = {b.now():.0f} s, during the phase '{b.phase}': {ended}"
            print(f"\n!!! {b.death}", flush=True)
            return None
        m = procmem.measure(procmem.family(b.server.pid))
        if b.server.ended():  # it died while we read: a zombie has no memory to show
            return self.sample()  # once more: now it records the death
        if m.processes == 0:
            return None
        s = MemSample(round(b.now(), 2), m.pss_kb, m.rss_kb, m.processes, b.connected)
        self.samples.append(s)
        return s

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            self.sample()


# ----------------------------------------------------------------------------------------------
# The protocol
# ----------------------------------------------------------------------------------------------

async def http_get(port: int, path: str, timeout: float) -> tuple[int, int]:
    """(status, body bytes) of one GET over a fresh connection, as a browser without a cache sends it."""
    async def go() -> tuple[int, int]:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        parts = head.split(b" ", 2)
        return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), len(body)
    return await asyncio.wait_for(go(), timeout)


@dataclass
class Widget:
    kind: str  # slider | checkbox | number_input | selectbox
    proto: Any
    in_main: bool  # drawn by streamlit_app.py (the sidebar), not by the page

    def initial(self) -> Any:
        p = self.proto
        if self.kind == "slider":
            return list(p.value if p.set_value else p.default)
        if self.kind == "selectbox":
            return p.raw_value if p.set_value else (p.options[p.default] if p.options else None)
        return p.value if p.set_value else p.default


def widget_states(widgets: dict[str, Widget], values: dict[str, Any], main_only: bool = False) -> WidgetStates:
    """The widget states a browser sends back: every widget it shows whose value it knows."""
    states = WidgetStates()
    for wid, w in widgets.items():
        value = values.get(wid)
        if value is None or (main_only and not w.in_main):
            continue
        s = states.widgets.add()
        s.id = wid
        if w.kind == "slider":
            s.double_array_value.data.extend(float(v) for v in value)
        elif w.kind == "checkbox":
            s.bool_value = bool(value)
        elif w.kind == "selectbox":
            s.string_value = str(value)
        elif w.proto.data_type == INT:
            s.int_value = int(value)
        else:
            s.double_value = float(value)
    return states


class Student:
    """One browser tab: its websocket, message cache, query string and the widgets it shows."""

    def __init__(self, bench: Bench, phase: str, sid: int, rng: random.Random, link: dict[str, str]):
        self.bench, self.phase, self.sid, self.rng = bench, phase, sid, rng
        self.query = dict(link)  # the link's query string, then as the server and the widgets change it
        self.ws = None
        self.cache: dict[str, tuple[ForwardMsg, int]] = {}  # hash -> (message, run count when last used)
        self.runs = 0
        self.pages: dict[str, str] = {}  # url_pathname -> page_script_hash
        self.page_hash = ""
        self.main_hash = ""
        self.widgets: dict[str, Widget] = {}
        self.values: dict[str, Any] = {}

    def record(self, page: str, kind: str, t: float) -> Action:
        a = Action(self.phase, self.sid, page, kind, t)
        self.bench.actions.append(a)
        return a

    async def open(self) -> bool:
        """Open the link: the HTTP requests of a page load, the websocket, the home page's first run."""
        b = self.bench
        a = self.record("home", "open", b.now())
        start = time.perf_counter()
        try:
            for path in ("/", "/_stcore/health", "/_stcore/host-config"):
                status, _ = await http_get(b.port, path, b.timeout)
                if status != 200:
                    a.errors.append(f"HTTP {status} on {path}")
        except (OSError, TimeoutError) as exc:
            a.errors.append(f"HTTP {type(exc).__name__} {exc}".strip())
        a.latency = time.perf_counter() - start
        if a.errors:
            return False
        a = self.record("home", "connect", b.now())
        start = time.perf_counter()
        try:
            self.ws = await connect(f"ws://{HOST}:{b.port}/_stcore/stream", subprotocols=["streamlit"],
                                    origin=f"http://{HOST}:{b.port}", max_size=None, ping_interval=None,
                                    proxy=None, open_timeout=b.timeout)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            a.dropped = f"websocket connect failed: {type(exc).__name__} {exc}".strip()
            return False
        a.latency = time.perf_counter() - start
        b.connected += 1
        return await self.run_script(self.record("home", "home", b.now()))

    async def close(self) -> None:
        if self.ws is not None:
            ws, self.ws = self.ws, None
            self.bench.connected -= 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)

    async def run_script(self, action: Action, page_hash: str = "", states: WidgetStates | None = None) -> bool:
        """Send one rerun_script and read the server's messages until that run finishes."""
        b = self.bench
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = urlencode(self.query)
        cs.page_script_hash = page_hash
        if states is not None:
            cs.widget_states.CopyFrom(states)
        cs.cached_message_hashes.extend(self.cache)
        page_path = "" if action.page == "home" else action.page
        cs.context_info.url = f"http://{HOST}:{b.port}/{page_path}" + (f"?{cs.query_string}" if self.query else "")
        cs.context_info.locale, cs.context_info.timezone = "en-US", "UTC"
        drawn: dict[str, Widget] = {}
        start = time.perf_counter()
        try:
            await self.ws.send(msg.SerializeToString())
            for _ in range(MAX_MESSAGES):
                left = start + b.timeout - time.perf_counter()
                if left <= 0:
                    raise TimeoutError
                fm = ForwardMsg.FromString(await asyncio.wait_for(self.ws.recv(), left))
                if self.take(fm, action, drawn):
                    break
            else:
                action.errors.append(f"runaway: more than {MAX_MESSAGES} messages in one run")
                return False
        except TimeoutError:
            action.errors.append(f"timeout: no script_finished within {b.timeout:.0f} s")
            return False
        except (ConnectionClosed, OSError) as exc:
            action.dropped = f"websocket lost: {type(exc).__name__} {exc}".strip()
            return False
        action.latency = time.perf_counter() - start
        # What the browser shows now: the widgets this run drew, with the values it knows for them.
        self.widgets = drawn
        self.values = {wid: self.values.get(wid, w.initial()) for wid, w in drawn.items()}
        return True

    def take(self, fm: ForwardMsg, action: Action, drawn: dict[str, Widget]) -> bool:
        """Handle one ForwardMsg; True when it ends the run."""
        kind = fm.WhichOneof("type")
        body = fm
        if kind == "ref_hash":  # the server sent only the hash of a message we said we hold
            hit = self.cache.get(fm.ref_hash)
            if hit is None:
                action.errors.append("message cache: ref_hash the client does not hold")
                return False
            body = hit[0]
            self.cache[fm.ref_hash] = (body, self.runs)
            kind = body.WhichOneof("type")
        elif fm.metadata.cacheable and fm.hash:
            self.cache[fm.hash] = (fm, self.runs)
        if kind == "new_session":
            self.main_hash = body.new_session.main_script_hash
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in body.navigation.app_pages}
            self.page_hash = body.navigation.page_script_hash or self.page_hash
        elif kind == "page_info_changed":
            self.query = dict(parse_qsl(body.page_info_changed.query_string, keep_blank_values=True))
        elif kind == "page_not_found":
            action.errors.append(f"page not found: {body.page_not_found.page_name!r}")
        elif kind == "session_event" and body.session_event.HasField("script_compilation_exception"):
            action.errors.append(f"compile error: {body.session_event.script_compilation_exception.message}")
        elif kind == "delta" and body.delta.WhichOneof("type") == "new_element":
            el = body.delta.new_element
            et = el.WhichOneof("type")
            if et == "exception" and not el.exception.is_warning:
                action.errors.append(f"exception: {el.exception.type}: {el.exception.message}"[:300])
            elif et == "alert" and el.alert.format == ALERT_ERROR:
                action.errors.append(f"error box: {el.alert.body}"[:300])
            elif et in ("slider", "checkbox", "number_input", "selectbox"):
                w = getattr(el, et)
                drawn[w.id] = Widget(et, w, fm.metadata.active_script_hash == self.main_hash)
        elif kind == "script_finished":
            self.runs += 1
            self.cache = {h: v for h, v in self.cache.items() if self.runs - v[1] <= CACHE_AGE}
            if body.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                action.errors.append("script finished with a compile error")
            return body.script_finished in FINISHED
        return False

    async def visit(self, page: str) -> bool:
        """Follow the navigation's link to a concept page: the first load."""
        b = self.bench
        target = self.pages.get(page)
        action = self.record(page, "first_load", b.now())
        if target is None:
            action.errors.append(f"page not found: {page!r} is not in the navigation")
            return False
        # The page being left takes its URL-bound values with it; the sidebar's stay.
        for w in self.widgets.values():
            if not w.in_main and w.proto.query_param_key:
                self.query.pop(w.proto.query_param_key, None)
        ok = await self.run_script(action, target, widget_states(self.widgets, self.values, main_only=True))
        self.page_hash = target
        return ok

    async def move(self, page: str) -> bool:
        """Drag one of the page's sliders to a new place on its track, and wait for the rerun."""
        sliders = [(wid, w) for wid, w in self.widgets.items() if w.kind == "slider" and not w.in_main
                   and not w.proto.disabled and len(w.proto.default) == 1]
        if not sliders:
            return True
        wid, w = self.rng.choice(sliders)
        p = w.proto
        is_int = p.data_type == INT
        step = p.step or (1.0 if is_int else (p.max - p.min) / 100)
        positions = max(1, round((p.max - p.min) / step))
        current = self.values[wid][0]
        value = current
        for _ in range(20):  # a new place: same-value drags send nothing in a browser
            value = round(p.min + step * self.rng.randint(0, positions), decimals(step))
            if value != current:
                break
        self.values[wid] = [float(value)]
        if p.query_param_key:
            if value == p.default[0]:
                self.query.pop(p.query_param_key, None)
            else:
                self.query[p.query_param_key] = js_number(value)
        action = self.record(page, "rerun", self.bench.now())
        action.control = f"{p.query_param_key or wid}={js_number(value)}"
        return await self.run_script(action, self.page_hash, widget_states(self.widgets, self.values))

    async def think(self) -> None:
        lo, hi = self.bench.think
        await asyncio.sleep(self.rng.uniform(lo, hi))


# ----------------------------------------------------------------------------------------------
# Phases
# ----------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace, server: Server):
        self.args, self.server, self.port = args, server, server.port
        self.timeout, self.think, self.moves = args.timeout, args.think, args.moves
        self.t0 = time.perf_counter()
        self.actions: list[Action] = []
        self.connected = 0
        self.phase = "start"
        self.death = ""
        self.next_seed = 1
        self.sampler = Sampler(self)

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def link(self) -> dict[str, str]:
        """The query string of the link a student opens: the shared one, or with a seed of their own."""
        if not self.args.seeds_own:
            return {}
        seed, self.next_seed = self.next_seed, self.next_seed % 9999 + 1
        return {"seed": str(seed)}

    async def student(self, phase: str, sid: int, plan: list[str], moves: int, delay: float,
                      until: float | None = None) -> None:
        """One student: arrive after delay, open the link, then for each page of the plan a first load and
        `moves` slider moves; with `until` (a time on self.now()), cycle through the plan until then."""
        await asyncio.sleep(delay)
        rng = random.Random(f"{phase}/{sid}")
        s = Student(self, phase, sid, rng, self.link())
        try:
            if self.death or not await s.open():
                return
            limit = len(plan) if until is None else 10_000  # a bound on a soak's cycles too
            for i in range(limit):
                if self.death or (until is not None and self.now() >= until):
                    break
                page = plan[i % len(plan)]
                await s.think()
                if not await s.visit(page):
                    break
                for _ in range(moves):
                    if self.death or (until is not None and self.now() >= until):
                        break
                    await s.think()
                    if not await s.move(page):
                        return
        finally:
            await s.close()

    async def phase_run(self, name: str, students: int, coros: list, cap: float) -> Phase:
        """Run the students of one phase, with memory from one sample before to one after they are done."""
        self.phase = name
        print(f"\n--- {name}: {students} student(s) ---", flush=True)
        start = self.now()
        first = await asyncio.to_thread(self.sampler.sample)
        tasks = [asyncio.create_task(c) for c in coros]
        deadline = time.monotonic() + cap
        cut = ""
        while tasks and not all(t.done() for t in tasks):  # bounded by the cap
            if self.death:
                cut = "the server died"
                break
            if time.monotonic() > deadline:
                cut = f"phase cut at its cap of {cap:.0f} s"
                break
            await asyncio.wait(tasks, timeout=0.25)
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        crashed = [r for r in results if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError)]
        if crashed:
            raise RuntimeError(f"a simulated student failed inside the instrument: {crashed[0]!r}") from crashed[0]
        if not self.death:
            await asyncio.sleep(self.args.settle)  # the server frees what the phase held
        last = await asyncio.to_thread(self.sampler.sample)
        end = self.now()
        memory = [s for s in self.sampler.samples if start <= s.t <= end]
        if first and memory and memory[0] is not first:
            memory.insert(0, first)
        if last and memory and memory[-1] is not last:
            memory.append(last)
        phase = Phase(name, students, start, end, [a for a in self.actions if a.phase == name and
                                                   start <= a.t <= end], memory)
        if cut:
            print(f"!!! {name}: {cut}", flush=True)
        return phase

    async def run(self, pages: list[str]) -> list[Phase]:
        a = self.args
        self.sampler.start()
        phases = []
        ramp_cap = a.ramp + 15 * 60
        phases.append(await self.phase_run("cold start", 1, [self.student("cold start", 0, pages, 0, 0.0)],
                                           ramp_cap))
        if not self.death:
            phases.append(await self.phase_run("one student", 1, [self.student("one student", 0, pages, a.moves, 0.0)],
                                               ramp_cap))
        for n in a.students:
            if self.death:
                break
            order = list(pages)
            random.Random(f"class/{n}").shuffle(order)
            coros = []
            for sid in range(n):
                rng = random.Random(f"class/{n}/{sid}")
                first = order[sid % len(order)]
                count = min(rng.randint(*a.visits), len(order))
                plan = [first] + rng.sample([p for p in order if p != first], count - 1)
                coros.append(self.student("class", sid, plan, a.moves, a.ramp * sid / n))
            phases.append(await self.phase_run("class", n, coros, ramp_cap))
        if a.soak and not self.death:
            n = a.soak_students
            start = self.now()
            until = start + a.ramp + a.soak
            coros = [self.student("soak", sid, pages[sid % len(pages):] + pages[:sid % len(pages)], a.moves,
                                  a.ramp * sid / n, until) for sid in range(n)]
            phases.append(await self.phase_run("soak", n, coros, a.ramp + a.soak + 5 * 60))
        self.sampler.stopping.set()
        return phases


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------

def machine_line(load: str) -> str:
    return (f"{platform.machine()}, {os.cpu_count()} cores (load average {load} at the start), "
            f"Python {platform.python_version()}, torch {metadata.version('torch')}, "
            f"streamlit {metadata.version('streamlit')}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def report(args: argparse.Namespace, phases: list[Phase], summaries: list[Summary], machine: str,
           death: str, tracebacks: int, redraw: dict[str, list[float]] | None = None) -> str:
    think = f"{args.think[0]:g}–{args.think[1]:g} s"
    own = "each student with a seed of their own (`?seed=N` in the link)" if args.seeds_own \
        else "all on the shared link (one seed)"
    visits = f"{args.visits[0]}" if args.visits[0] == args.visits[1] else f"{args.visits[0]} or {args.visits[1]}"
    lines = [
        SECTION,
        "",
        f"Measured by `make bench-class` (bench/classroom.py) on {machine}. A fresh `streamlit run streamlit_app.py`"
        " (as `make run`, on a free loopback port), and simulated students speaking Streamlit's protocol (no "
        f"browser): pages {', '.join(args.pages)}; {own}; think time {think}; a class arrives over {args.ramp:g} s, "
        f"each student visits {visits} page(s) with {args.moves} slider moves each.",
        "",
        "- first load: from following a page's link to the end of that page's run; rerun: from a slider move to "
        "the end of the run it causes (the full widget state sent, as a browser does);",
        "- cold start: one visitor opens every page once before anyone else (a teacher preparing the projector); "
        "one student: alone, every page;",
        "- errors: exception or error boxes, pages not found, runs that never finished "
        f"(timeout {args.timeout:g} s), HTTP statuses other than 200; dropped: websockets that failed;",
        "- memory: the server and every process below it, sampled every second; PSS counts shared pages once "
        "(what they cost together), RSS counts them in every process.",
        "",
        *phase_table(summaries),
        "",
    ]
    if death:
        lines += [f"**The server died**: {death}. The numbers above stop there.", ""]
    if tracebacks:
        lines += [f"The server's log holds {tracebacks} traceback(s).", ""]
    problems = sorted({m for s in summaries for m in s.messages})
    if problems:
        lines += ["What the students saw go wrong (distinct messages, at most 8):", ""]
        lines += [f"- {m.replace('|', '/')}" for m in problems[:8]] + [""]
    every = [t for times in (redraw or {}).values() for t in times]
    lines += ["### Goals (issue 11)", "",
              *goal_table(goals(summaries, statistics.median(every) if every else None)), ""]
    if every:
        lines += ["### One student in a real browser", "",
                  "bench/redraw.py, after the classes, on a server of its own: Chromium (headless) at 1280x900 opens "
                  "each page once, then on each page focuses a slider, presses an arrow key and times, inside the "
                  "page, from the key going down until the run it starts has finished and the browser has painted "
                  "the next frame.", "",
                  redraw_summary(redraw), ""]
    soak = next((p for p in phases if p.name == "soak"), None)
    if soak:
        trend = trend_mb_per_min(soak.memory)
        lines += [f"### Soak: {soak.students} students cycling through every page for {args.soak:g} s", "",
                  f"Memory every {SOAK_EVERY:.0f} s from the soak's start (t = 0), the last row at its end; "
                  f"PSS trend over the second half: {'–' if trend is None else f'{trend:+.1f} MB/min'}.", "",
                  *soak_table(soak.memory, soak.start, SOAK_EVERY), ""]
    lines += [
        "### The instrument", "",
        "`make bench-class` measures a default class (30 students, every page); `make bench-class ARGS=\"...\"` "
        "takes the options of `python -m bench.classroom --help`: `--students 10,30` (one class each), "
        "`--seeds-own`, `--soak 300` (20 students cycling through every page, memory every 30 s), `--pages`, "
        "`--moves`, `--visits`, `--think`, `--ramp`, `--port`, `--browser-moves`, `--no-write`, `--out`. It exits 0 "
        "when the run "
        "completed, goals met or not; 2 when the server died (said above the goals); 3 when the instrument failed.",
        "",
        "What it does not see: the browser's own work in a class (fetching the JavaScript bundle, drawing the "
        "charts with Vega), so a first load here is the page's run, not its paint (one student in Chromium, above, "
        "is the browser's side); only sliders are moved (selects, toggles "
        "and presets are sent back as they stand); every student runs in one client process on the same machine "
        "as the server (its own CPU is printed, about 0.02 cores for 5 students); other work on the machine slows "
        "the server too, hence the load average above; memory counts the server and its descendants, sampled "
        "once a second, so a spike shorter than that can be missed. The cold start warms the caches at the "
        "shared seed; with `--seeds-own` the class finds nothing warm.",
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def registered_pages() -> list[str]:
    from core.registry import PAGES  # here, not at the top: core imports torch, and the tests need not

    return [p.name for p in PAGES]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _pair(text: str) -> tuple[float, float]:
    parts = [float(x) for x in text.split(",")]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise ValueError(text)
    return parts[0], parts[1]


def parse_args(argv: list[str] | None = None, known_pages: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.classroom", description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", default="30", help="class sizes, comma-separated; one class phase each, in "
                   f"order (default 30; at most {MAX_STUDENTS})")
    p.add_argument("--seeds-own", action="store_true", help="every student opens the link with a seed of their own "
                   "(?seed=N binds the sidebar's seed), so no two students share a cached experiment")
    p.add_argument("--soak", type=float, default=0, metavar="SECONDS", help="after the classes, a soak: "
                   "--soak-students cycling through every page for this long, memory recorded over time "
                   f"(default 0, off; at most {MAX_SOAK})")
    p.add_argument("--soak-students", type=int, default=20, help="students of the soak (default 20)")
    p.add_argument("--pages", help="concept pages, comma-separated (default: every registered page)")
    p.add_argument("--moves", type=int, default=5, help="slider moves per page visited (default 5)")
    p.add_argument("--visits", default="1,2", metavar="MIN,MAX",
                   help="pages each student of a class visits, uniform from MIN to MAX (default 1,2)")
    p.add_argument("--think", default="1,3", metavar="MIN,MAX",
                   help="seconds a student waits before each action, uniform (default 1,3)")
    p.add_argument("--ramp", type=float, default=10.0, help="seconds over which a class arrives (default 10)")
    p.add_argument("--port", type=int, default=0, help="port for the server (default: a free one)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds one run may take before it counts as an error (default 120)")
    p.add_argument("--settle", type=float, default=3.0,
                   help="idle seconds after each phase, before its last memory sample (default 3)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md",
                   help="the Markdown file whose section '## A class on one link' is replaced (default "
                   "docs/performance.md)")
    p.add_argument("--no-write", action="store_true", help="print the report only; write no file")
    p.add_argument("--browser-moves", type=int, default=8, help="after the classes, slider moves per page in a real "
                   "browser, one student alone (bench/redraw.py; needs Chromium); 0: none (default 8)")
    args = p.parse_args(argv)
    try:
        args.students = _ints(args.students)
        args.think = _pair(args.think)
        visits = _pair(args.visits)
    except ValueError:
        p.error("--students takes integers (10,30); --think and --visits take MIN,MAX")
    args.visits = (int(visits[0]), int(visits[1]))
    if not args.students or any(not 1 <= n <= MAX_STUDENTS for n in args.students):
        p.error(f"--students: each class between 1 and {MAX_STUDENTS}")
    if not 0 <= args.think[0] <= args.think[1] <= 60:
        p.error("--think: 0 <= MIN <= MAX <= 60")
    if not 1 <= args.visits[0] <= args.visits[1] <= 20:
        p.error("--visits: 1 <= MIN <= MAX <= 20")
    if not 0 <= args.moves <= 100:
        p.error("--moves: 0..100")
    if not 0 <= args.ramp <= 600:
        p.error("--ramp: 0..600 seconds")
    if not 0 <= args.soak <= MAX_SOAK:
        p.error(f"--soak: 0..{MAX_SOAK} seconds")
    if not 1 <= args.soak_students <= MAX_STUDENTS:
        p.error(f"--soak-students: 1..{MAX_STUDENTS}")
    if not 1 <= args.timeout <= 900:
        p.error("--timeout: 1..900 seconds")
    if not 0 <= args.settle <= 60:
        p.error("--settle: 0..60 seconds")
    if args.port and not 1024 <= args.port <= 65535:
        p.error("--port: 1024..65535")
    known = known_pages if known_pages is not None else registered_pages()
    args.pages = [x.strip() for x in args.pages.split(",") if x.strip()] if args.pages else list(known)
    unknown = [x for x in args.pages if x not in known]
    if unknown or not args.pages:
        p.error(f"--pages: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}")
    return args


def print_details(phases: list[Phase]) -> None:
    for ph in phases:
        homes = [a.latency for a in ph.actions if a.kind == "home" and a.latency is not None]
        by_page: dict[str, list[float]] = {}
        for a in ph.actions:
            if a.kind == "rerun" and a.latency is not None:
                by_page.setdefault(a.page, []).append(a.latency)
        per_page = ", ".join(f"{k} {sorted(v)[len(v) // 2]:.2f} s ({len(v)})" for k, v in sorted(by_page.items()))
        print(f"{ph.name} ({ph.students}): home page max {max(homes, default=0):.2f} s; rerun median by page: "
              f"{per_page or '-'}")
        slow = sorted((a for a in ph.actions if a.kind in ("first_load", "rerun") and a.latency is not None),
                      key=lambda a: -a.latency)[:3]
        if slow:
            print("  slowest: " + "; ".join(f"{a.latency:.2f} s {a.kind} {a.page} {a.control}".rstrip() for a in slow))


def browser_redraw(pages: list[str], moves: int) -> dict[str, list[float]] | None:
    """bench/redraw.py's timings on a server of its own (None when there is no Chromium)."""
    from bench import redraw

    if not Path(redraw.CHROMIUM).exists():
        print(f"no Chromium at {redraw.CHROMIUM}: the browser redraw is not measured", file=sys.stderr)
        return None
    port = free_port()
    proc = redraw.start_server(port)
    try:
        redraw.measure(port, pages, 1)  # a first visit of every page: the cold start is not what this measures
        return redraw.measure(port, pages, moves)
    finally:
        redraw.stop(proc)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    port = args.port or free_port()
    if port_open(port):
        print(f"port {port} is taken; choose another with --port", file=sys.stderr)
        return 3
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    machine = machine_line(load)

    def on_signal(signum, frame):  # noqa: ARG001 - Ctrl-C or a `kill` of the benchmark stops the server too
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    server = Server(port)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    phases: list[Phase] = []
    death = ""
    try:
        server.wait_healthy(180)
        print(f"server pid {server.pid} healthy on http://{HOST}:{port}/", flush=True)
        bench = Bench(args, server)
        phases = asyncio.run(bench.run(args.pages))
        death = bench.death or (f"the server died after the last phase: {server.ended()}" if server.ended() else "")
        tracebacks = server.tracebacks()
    except ServerDied as exc:
        print(f"\n!!! {exc}", file=sys.stderr)
        server.stop()
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the server is stopped, nothing written", file=sys.stderr)
        server.stop()
        return 130
    except Exception as exc:
        print(f"\n!!! the instrument failed: {type(exc).__name__}: {exc}\nnothing written; server log: "
              f"{server.log_path}", file=sys.stderr)
        server.stop()
        raise SystemExit(3) from exc
    if death:
        print(f"server log (last lines):\n{server.log_tail()}", flush=True)
    server.stop()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - t0
    cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime

    redraw = None
    if args.browser_moves and not death:
        try:
            redraw = browser_redraw(args.pages, args.browser_moves)
        except Exception as exc:  # noqa: BLE001 - the class numbers stand without it; said, not hidden
            print(f"the browser measurement failed ({type(exc).__name__}: {exc}); its goal is not measured",
                  file=sys.stderr)
    summaries = [summarize(p) for p in phases]
    text = report(args, phases, summaries, machine, death, tracebacks, redraw)
    print()
    print_details(phases)
    print(f"instrument: {cpu:.0f} s of CPU in {wall:.0f} s ({cpu / wall:.2f} cores); server log {server.log_path}")
    print()
    print(text)
    if not args.no_write:
        old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        args.out.write_text(replace_section(old, text), encoding="utf-8")
        print(f"wrote the section '{SECTION[3:]}' of {args.out}")
    if death:
        print(f"!!! NOT A VALID MEASUREMENT: {death}", file=sys.stderr)
        return 2
    if not death and not tracebacks:
        with contextlib.suppress(OSError):
            os.unlink(server.log_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
