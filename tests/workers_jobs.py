"""Jobs for tests/test_workers.py, importable by a worker process (a test module's functions are not)."""

from __future__ import annotations

import os
import signal


def crash() -> None:
    """Die as native code dies: the worker process ends on SIGSEGV."""
    os.kill(os.getpid(), signal.SIGSEGV)


def fail(message: str) -> None:
    raise ValueError(message)


def pid() -> int:
    return os.getpid()


def altair_checks() -> bool:
    """Whether Altair checks each schema object as it is made, in this process."""
    from altair.utils import schemapi

    return schemapi.DEBUG_MODE


def trimming() -> bool:
    """Whether this process's heap-trimming thread (core.heap.keep_trimmed) runs."""
    import threading

    return any(t.name == "gradient-lab-heap-trim" and t.is_alive() for t in threading.enumerate())


def imported(module: str) -> bool:
    import sys

    return module in sys.modules


_held: list[bytearray] = []


def hold(megabytes: int) -> None:
    """Keep megabytes of written memory in this worker, as a growing cache would."""
    _held.append(bytearray(b"x") * (megabytes << 20))


def measure_every_job() -> None:
    """Make this worker read its own memory before every job (core.worker.job), not every few seconds."""
    from core import worker

    worker.MEASURE_EVERY = 0.0
