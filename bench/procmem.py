"""Memory of a process and all its descendants, read from /proc (Linux only).

PSS (proportional set size) charges each page shared by k processes 1/k to each of them, so the PSS
sum over a server and its worker processes counts shared libraries and copy-on-write pages once: it
is what the processes together cost the machine. The RSS sum counts every shared page again in each
process, so it overstates a family of forked workers; both are reported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Memory:
    pss_kb: int
    rss_kb: int
    processes: int


def parse_stat_ppid(stat: str) -> int:
    """The parent pid from the text of /proc/PID/stat (the command name may hold spaces and parentheses)."""
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int, parent_of: dict[int, int]) -> list[int]:
    """root and every process below it, given each pid's parent pid; root first."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parent_of.items():
        children.setdefault(ppid, []).append(pid)
    found, todo, seen = [], [root], set()
    while todo:  # bounded: every pid is visited at most once
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        found.append(pid)
        todo.extend(sorted(children.get(pid, ()), reverse=True))
    return found


def parse_rollup(text: str) -> tuple[int, int]:
    """(Pss, Rss) in kB from the text of /proc/PID/smaps_rollup; (0, 0) for an empty one (a zombie)."""
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Pss", "Rss"):
            values[name] = int(rest.split()[0])
    return values.get("Pss", 0), values.get("Rss", 0)


def parent_map() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    out[int(entry)] = parse_stat_ppid(fh.read())
            except (OSError, ValueError, IndexError):
                pass  # the process ended while we looked
    return out


def family(root: int) -> list[int]:
    """The pids of root and all its descendants, now."""
    return descendants(root, parent_map())


def measure(pids: Iterable[int]) -> Memory:
    pss = rss = count = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                p, r = parse_rollup(fh.read())
        except OSError:
            continue
        pss, rss, count = pss + p, rss + r, count + 1
    return Memory(pss, rss, count)
