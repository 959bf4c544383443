"""One bounded cache of core results, shared by every session of the server (DESIGN rule 7).

A class opens the same link: thirty sessions ask for the same experiments at the same settings within seconds.
Each result is computed once (a second session asking while the first computes waits for that computation
instead of starting its own) and kept while it is used.

An entry is kept pickled, and a hit unpickles it (tens of microseconds for a chart spec): a DataFrame or a spec
held as objects takes 10 to 20 KB more than its pickled bytes (its index, blocks and column labels, its dicts),
so a class's 4096 entries took about 80 MB held as objects, and take about 27 MB as bytes. The sessions that
wait for a computation get the object it made.

The cache is bounded twice, by entries and by the bytes it holds, least recently used first, so a demo that runs
for weeks holds at most MAX_BYTES. A miss is computed by ui.workers, in a worker process.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ui import gate, workers

MAX_ENTRIES = 4096
MAX_BYTES = 48 * 2**20  # results, chart specs and readouts, pickled: a few KB each, 100 KB for the largest
ENTRY_OVERHEAD = 256  # bytes an entry takes beyond its pickled value: its key and its place in the order
UNPICKLABLE = 64 * 2**10  # bytes counted for a value that cannot be pickled, and is kept as it is


class SharedCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: OrderedDict[Hashable, tuple[Any, int, bool]] = OrderedDict()  # (kept, size, pickled)
        self._pending: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        self.bytes = self.hits = self.misses = 0

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value at key, made by make() once however many sessions ask at the same time."""
        with self._lock:
            found = self._hit(key)
            if found is None:
                pending = self._pending.get(key)
                if pending is None:
                    self.misses += 1
                    mine = self._pending[key] = Future()
        if found is not None:
            return _unpack(found)
        if pending is not None:
            with gate.waiting():
                return pending.result()  # its maker's exception, if it failed, is this session's too
        try:
            with gate.waiting():
                value = make()
        except BaseException as error:
            with self._lock:
                del self._pending[key]
            mine.set_exception(error)
            raise
        self._store(key, value)
        with self._lock:
            del self._pending[key]
        mine.set_result(value)
        return value

    def peek(self, key: Hashable) -> Any:
        """The value at key if it is kept (None if not), counted as a use; never computes."""
        with self._lock:
            found = self._hit(key)
        return None if found is None else _unpack(found)

    def _hit(self, key: Hashable) -> tuple[Any, int, bool] | None:
        """The entry at key, counted as a use (the caller holds the lock)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return entry

    def _store(self, key: Hashable, value: Any) -> None:
        try:
            kept, pickled = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), True
            size = ENTRY_OVERHEAD + len(kept)
        except Exception:  # noqa: BLE001 - an unpicklable value is kept as it is, counted at a nominal size
            kept, pickled, size = value, False, UNPICKLABLE
        with self._lock:
            self._entries[key] = (kept, size, pickled)
            self.bytes += size
            while self._entries and (len(self._entries) > self.max_entries or self.bytes > self.max_bytes):
                _, (_, dropped, _) = self._entries.popitem(last=False)
                self.bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


def _unpack(entry: tuple[Any, int, bool]) -> Any:
    kept, _, pickled = entry
    return pickle.loads(kept) if pickled else kept


CACHE = SharedCache()


def key_of(fn: Callable, args: tuple, kwargs: dict) -> Hashable:
    key = (fn.__module__, fn.__qualname__, args, tuple(sorted(kwargs.items())))
    try:
        hash(key)
    except TypeError:  # a list or dict among the arguments: its printed form is as exact, for plain values
        key = (fn.__module__, fn.__qualname__, repr(args), repr(sorted(kwargs.items())))
    return key


def run(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs), shared and bounded; core functions are deterministic given their seed."""
    return CACHE.get(key_of(fn, args, kwargs), lambda: workers.compute(fn, *args, **kwargs))


def memo(key: Hashable, make: Callable[[], Any]) -> Any:
    """A value of the app's own (a chart spec ready to send, say) in the same shared, bounded cache."""
    return CACHE.get(key, make)


# Threads that only wait: each hands one computation to a worker process and waits for it (ui.Page.prefetch).
_BACKGROUND = ThreadPoolExecutor(max_workers=16, thread_name_prefix="gradient-lab-prefetch")


def background(fn: Callable, *args: Any) -> Future:
    """fn(*args) started now, on a waiting thread, in the asking run's turn; the cache computes nothing twice."""
    moment = workers.asked_at()

    def in_turn() -> Any:
        workers.asked_at(moment)
        return fn(*args)

    return _BACKGROUND.submit(in_turn)


class _Reads(dict):
    """The settings a reader gets, noting every key it reads; a look at the whole dict counts as reading it all."""

    def __init__(self, settings: dict):
        super().__init__(settings)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(key)  # type: ignore[arg-type]
        return super().__contains__(key)

    def _everything(self) -> None:
        self.read.update(super().keys())

    def keys(self):
        self._everything()
        return super().keys()

    def items(self):
        self._everything()
        return super().items()

    def values(self):
        self._everything()
        return super().values()

    def __iter__(self):
        self._everything()
        return super().__iter__()

    def copy(self) -> dict:
        self._everything()
        return dict(super().items())

    def __eq__(self, other: object) -> bool:
        self._everything()
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._everything()
        return super().__repr__()


_READ_SETS: dict[tuple, list[tuple[str, ...]]] = {}  # (page, reader) -> the sets of keys its runs read
_READ_SETS_LOCK = threading.Lock()
MAX_READ_SETS = 8  # per reader: a reader reads the same keys at almost every setting


def readout(page: str, key: str, reader: Callable, settings: dict, read: set[str] | None = None) -> Any:
    """reader(settings, run), shared and bounded like a core result, and keyed by only the settings it reads.

    A reader is a pure function of the settings it reads and of core results that are themselves pure functions
    of those, so two runs that read the same keys with the same values say the same thing. Each run notes which
    keys it read; a later call whose values agree on one of the noted sets is a hit, whatever the other controls
    say. A slider that moves one experiment leaves every other experiment's readout cached: its pandas work runs
    once per setting for the whole class, not once per session and rerun. `read`, if given, receives the keys
    this answer depends on: the page reruns the readout when one of them moves, and only then.
    """
    with _READ_SETS_LOCK:
        known = list(_READ_SETS.get((page, key), ()))
    for keys in known:
        if all(k in settings for k in keys):
            found = CACHE.peek(("readout", page, key, tuple((k, settings[k]) for k in keys)))
            if found is not None:
                if read is not None:
                    read.update(keys)
                return found
    reads = _Reads(settings)
    value = reader(reads, run)
    keys = tuple(sorted(reads.read))
    if read is not None:
        read.update(keys)
    with _READ_SETS_LOCK:
        sets = _READ_SETS.setdefault((page, key), [])
        if keys not in sets:
            sets.insert(0, keys)
            del sets[MAX_READ_SETS:]
    return CACHE.get(("readout", page, key, tuple((k, settings[k]) for k in keys)), lambda: value)
