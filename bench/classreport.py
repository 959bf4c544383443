"""The pure half of `make bench-class`: from recorded actions and memory samples to the tables and goals.

Nothing here talks to a server or reads a clock, so tests hold it with hand-made records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SECTION = "## A class on one link"
MB = 1024  # kB per MB, for /proc's kB


@dataclass
class Action:
    """One thing a simulated student did and waited for."""

    phase: str
    student: int
    page: str  # "home" for the home page
    kind: str  # open (HTTP) | connect (websocket) | home | first_load | rerun
    t: float  # seconds since the run began, when it was sent
    latency: float | None = None  # send -> script_finished (or the HTTP / connect time)
    errors: list[str] = field(default_factory=list)  # what went wrong that the student saw
    dropped: str = ""  # the websocket failed: connect refused, closed, reset
    control: str = ""  # for a rerun: the URL key of the slider moved, and its new value


@dataclass(frozen=True)
class MemSample:
    t: float
    pss_kb: int
    rss_kb: int
    processes: int
    connected: int  # students with an open websocket


@dataclass
class Phase:
    name: str
    students: int
    start: float  # seconds since the run began
    end: float
    actions: list[Action]
    memory: list[MemSample]  # the samples taken from start to end


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile (0..100), linear between the two nearest ranks; None for no values."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


@dataclass(frozen=True)
class Spread:
    n: int
    p50: float | None
    p95: float | None
    max: float | None

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(len(values), percentile(values, 50), percentile(values, 95), max(values) if values else None)


@dataclass(frozen=True)
class Summary:
    phase: str
    students: int
    first_load: Spread
    rerun: Spread
    errors: int
    dropped: int
    pss_mb: tuple[float, float, float] | None  # start, peak, end
    rss_mb: tuple[float, float, float] | None
    messages: tuple[str, ...]  # distinct error and drop messages


def latencies(actions: list[Action], kind: str) -> list[float]:
    """Latencies of the actions of one kind that completed without a failure of their own."""
    return [a.latency for a in actions if a.kind == kind and a.latency is not None and not a.dropped
            and not any(e.startswith("timeout") for e in a.errors)]


def summarize(phase: Phase) -> Summary:
    acts = phase.actions
    mem = phase.memory

    def triple(key: str) -> tuple[float, float, float] | None:
        if not mem:
            return None
        values = [getattr(s, key) / MB for s in mem]
        return values[0], max(values), values[-1]

    messages = sorted({e for a in acts for e in a.errors} | {a.dropped for a in acts if a.dropped})
    return Summary(phase.name, phase.students, Spread.of(latencies(acts, "first_load")),
                   Spread.of(latencies(acts, "rerun")), sum(len(a.errors) for a in acts),
                   sum(1 for a in acts if a.dropped), triple("pss_kb"), triple("rss_kb"), tuple(messages))


# ----------------------------------------------------------------------------------------------
# Goals (issue 11)
# ----------------------------------------------------------------------------------------------

CLASS_SIZE = 30  # the goals for a class are stated for 30 students
GOAL_MEMORY_MB = 1024


@dataclass(frozen=True)
class Goal:
    text: str
    measured: str
    met: bool | None  # None: not measured in this run


def _class_phase(summaries: list[Summary]) -> Summary | None:
    """The class phase the class goals are judged on: the smallest class of at least 30 students."""
    classes = [s for s in summaries if s.phase == "class" and s.students >= CLASS_SIZE]
    return min(classes, key=lambda s: s.students) if classes else None


def _seconds(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f} s"


GOAL_REDRAW_S = 0.3  # one student alone, a real browser: from the key press to the redrawn page


def goals(summaries: list[Summary], redraw: float | None = None) -> list[Goal]:
    """The issue's goals against this run; redraw is the median browser redraw of a slider move (None: not run)."""
    out = []
    crowd = _class_phase(summaries)
    largest = max((s.students for s in summaries if s.phase == "class"), default=0)
    for text, attr, stat, limit in (
        ("rerun p50 ≤ 0.4 s, 30 students", "rerun", "p50", 0.4),
        ("rerun p95 ≤ 1.5 s, 30 students", "rerun", "p95", 1.5),
        ("first load p95 ≤ 2 s, 30 students", "first_load", "p95", 2.0),
    ):
        if crowd is None:
            note = f"no class of {CLASS_SIZE} in this run" + (f" (largest: {largest})" if largest else "")
            out.append(Goal(text, note, None))
            continue
        value = getattr(getattr(crowd, attr), stat)
        out.append(Goal(text, f"{_seconds(value)} ({crowd.students} students)",
                        None if value is None else value <= limit))
    alone = next((s for s in summaries if s.phase == "one student"), None)
    value = alone.rerun.p50 if alone else None
    out.append(Goal("one student: rerun p50 ≤ 0.15 s", _seconds(value), None if value is None else value <= 0.15))
    out.append(Goal("one student, real browser: slider move redrawn ≤ 0.3 s median",
                    "–" if redraw is None else f"{redraw:.2f} s", None if redraw is None else redraw <= GOAL_REDRAW_S))
    bad = [s for s in summaries if s.errors or s.dropped]
    errors = sum(s.errors for s in summaries)
    dropped = sum(s.dropped for s in summaries)
    out.append(Goal("0 errors, 0 dropped connections", f"{errors} errors, {dropped} dropped"
                    + (f" ({', '.join(sorted({s.phase for s in bad}))})" if bad else ""), not bad))
    peaks = [s.pss_mb[1] for s in summaries if s.pss_mb]
    peak = max(peaks) if peaks else None
    out.append(Goal("all processes ≤ 1 GB (peak PSS)", "–" if peak is None else f"{peak:.0f} MB",
                    None if peak is None else peak <= GOAL_MEMORY_MB))
    return out


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _spread(s: Spread) -> str:
    return f"{_num(s.p50)} / {_num(s.p95)} / {_num(s.max)}"


def _mem(m: tuple[float, float, float] | None) -> str:
    return "–" if m is None else " / ".join(f"{x:.0f}" for x in m)


def phase_table(summaries: list[Summary]) -> list[str]:
    lines = [
        "| phase | students | first load p50 / p95 / max (s) | reruns | rerun p50 / p95 / max (s) | errors | dropped "
        "| PSS MB start / peak / end | RSS MB start / peak / end |",
        "| --- | ---: | --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for s in summaries:
        lines.append(f"| {s.phase} | {s.students} | {_spread(s.first_load)} | {s.rerun.n} | {_spread(s.rerun)} | "
                     f"{s.errors} | {s.dropped} | {_mem(s.pss_mb)} | {_mem(s.rss_mb)} |")
    return lines


def goal_table(items: list[Goal]) -> list[str]:
    lines = ["| goal | measured | |", "| --- | --- | --- |"]
    for g in items:
        verdict = "not measured" if g.met is None else "met" if g.met else "**not met**"
        lines.append(f"| {g.text} | {g.measured} | {verdict} |")
    return lines


def soak_rows(samples: list[MemSample], start: float, every: float) -> list[MemSample]:
    """One sample per `every` seconds from start (the first sample at or after each mark), and the last."""
    rows: list[MemSample] = []
    mark = start
    for s in samples:
        if s.t >= mark:
            rows.append(s)
            while mark <= s.t:
                mark += every
    if samples and (not rows or rows[-1] is not samples[-1]):
        rows.append(samples[-1])
    return rows


def trend_mb_per_min(samples: list[MemSample]) -> float | None:
    """Least-squares slope of PSS over the second half of the samples, MB per minute."""
    half = samples[len(samples) // 2:]
    if len(half) < 2:
        return None
    n = len(half)
    mt = sum(s.t for s in half) / n
    mp = sum(s.pss_kb for s in half) / n
    var = sum((s.t - mt) ** 2 for s in half)
    if var == 0:
        return None
    return sum((s.t - mt) * (s.pss_kb - mp) for s in half) / var / MB * 60


def soak_table(samples: list[MemSample], start: float, every: float) -> list[str]:
    lines = ["| t (s) | students connected | processes | PSS MB | RSS MB |", "| ---: | ---: | ---: | ---: | ---: |"]
    for s in soak_rows(samples, start, every):
        lines.append(f"| {s.t - start:.0f} | {s.connected} | {s.processes} | {s.pss_kb / MB:.0f} | "
                     f"{s.rss_kb / MB:.0f} |")
    return lines


def replace_section(document: str, section: str) -> str:
    """document with its section headed SECTION replaced by section (which starts with that heading).

    The section runs to the next level-2 heading or the end; everything else stays byte for byte. A
    document without the section gets it appended at the end.
    """
    if not section.startswith(SECTION + "\n"):
        raise ValueError(f"the section must start with {SECTION!r}")
    if not section.endswith("\n"):
        section += "\n"
    lines = document.splitlines(keepends=True)
    fence = False
    start = None
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.rstrip("\r\n") == SECTION:
            start = i
            break
    if start is None:
        if not document:
            return section
        gap = "\n" if document.endswith("\n") else "\n\n"
        return document + gap + section
    end = len(lines)
    fence = False
    for j in range(start + 1, len(lines)):
        if lines[j].startswith("```"):
            fence = not fence
        elif not fence and lines[j].startswith("## "):
            end = j
            break
    after = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" if after else "") + after
