"""What lets one server carry a class: each piece checked against what it replaces.

- core.altair_speed: every figure's spec, built with the one shared converter, the faster deep copy and a layer's
  hash from its data's values, and as a worker builds it (without Altair's per-object checks), equals Altair's own.
- ui.gate: at most PLACES scripts draw at once; a script that waits for a computation gives its place up.
- ui.cache.readout: a readout kept by the settings its reader read equals the reader called directly, at every
  setting of every page (Hypothesis), and moving a control the reader does not read is a hit.
"""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core import altair_speed, export, worker
from core.figures import registry, spec
from core.readings import direct
from core.registry import PAGES
from tests.strategies import settings_of
from ui import cache, gate

FIGURES = [(info.name, name) for info in PAGES for name in registry(info.name)]


@pytest.mark.parametrize(("page", "name"), FIGURES)
def test_a_spec_built_with_the_shared_converter_equals_altairs_own(page, name):
    settings_ = export.settings_for(page, None)
    altair_speed.uninstall()
    try:
        _, theirs = spec(page, name, settings_)
    finally:
        altair_speed.install()
    _, ours = spec(page, name, settings_)
    assert _json(ours) == _json(theirs)


@pytest.mark.parametrize(("page", "name"), FIGURES)
def test_a_spec_built_as_a_worker_builds_it_equals_altairs_own(page, name):
    figure = registry(page)[name]
    settings_ = export.settings_for(page, None)
    data, view = figure.data(**figure.arguments(settings_)), dict(figure.view(settings_))
    altair_speed.uninstall()
    try:
        theirs = [worker.chart_spec(page, name, data, view, present=present) for present in (False, True)]
    finally:
        altair_speed.install()
    altair_speed.unchecked()
    try:
        ours = [worker.chart_spec(page, name, data, view, present=present) for present in (False, True)]
    finally:
        altair_speed.checked()
    assert _json(ours) == _json(theirs)


def _json(spec: object) -> str:
    """The spec as it is sent: equal dicts may still differ here (1 == 1.0, but "1" != "1.0")."""
    return json.dumps(spec, sort_keys=True)


def _frames():
    """DataFrames of every column kind a figure may hold, missing and non-finite values included."""
    specials = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1e308])
    floats = st.one_of(specials, st.floats(allow_nan=True, allow_infinity=True, width=64))
    texts = st.one_of(st.none(), st.text(max_size=4))

    @st.composite
    def frame(draw):
        n = draw(st.integers(0, 6))
        columns = {
            "f": draw(st.lists(floats, min_size=n, max_size=n)),
            "i": draw(st.lists(st.integers(-2**40, 2**40), min_size=n, max_size=n)),
            "b": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
            "o": np.array(draw(st.lists(texts, min_size=n, max_size=n)) + [None], dtype=object)[:n],
            "s": pd.array(draw(st.lists(texts, min_size=n, max_size=n)), dtype="str"),
            "c": pd.Categorical(draw(st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n))),
            "f32": np.array(draw(st.lists(st.floats(-1e6, 1e6, width=32), min_size=n, max_size=n)), dtype=np.float32),
            "u8": np.array(draw(st.lists(st.integers(0, 255), min_size=n, max_size=n)), dtype=np.uint8),
        }
        keep = draw(st.lists(st.sampled_from(sorted(columns)), unique=True))
        return pd.DataFrame({k: columns[k] for k in keep}, index=draw(st.sampled_from([None, list(range(10, 10 + n))])))

    return frame()


@settings(max_examples=300, deadline=None)
@given(_frames())
@example(pd.DataFrame({"f": [1.0, math.inf, -math.inf, math.nan, -0.0], "i": [1, 2, 3, 4, 5],
                       "o": ["a", None, "b", math.nan, "c"], "c": pd.Categorical(["x", None, "y", "x", "y"])}))
def test_a_frames_rows_are_written_as_altair_writes_them(frame):
    ours, theirs = altair_speed.to_values(frame), altair_speed._original_to_values(frame)
    assert repr(ours) == repr(theirs)  # the same values of the same Python types: NaN and infinities as None
    assert _json(ours) == _json(theirs)


def test_frames_of_other_kinds_go_to_altairs_own_rows():
    frame = pd.DataFrame({"t": pd.to_datetime(["2026-01-01", None]), "mixed": [1, "a"]})
    assert repr(altair_speed.to_values(frame)) == repr(altair_speed._original_to_values(frame))
    with pytest.raises(ValueError, match="column name"):
        altair_speed.to_values(pd.DataFrame({0: [1.0]}).rename(columns={0: 5}))


def test_the_fast_deep_copy_shares_and_copies_what_altairs_does():
    import altair as alt
    from altair.utils.schemapi import SchemaBase

    line = alt.Chart().mark_line().encode(x=alt.X("a:Q", axis=alt.Axis(title="a")), y="b:Q", tooltip=["a:Q"])
    chart = (line + line.mark_point()).properties(title="t", width=100)

    def nodes(obj):  # every SchemaBase, list and dict inside obj, in a fixed order
        yield obj
        inner = [*obj._args, *obj._kwds.values()] if isinstance(obj, SchemaBase) else (
            obj if isinstance(obj, list) else list(obj.values()) if isinstance(obj, dict) else [])
        for child in inner:
            if isinstance(child, SchemaBase | list | dict):
                yield from nodes(child)

    for by_ref in (set(), {"data"}):
        ours, theirs = altair_speed._deep_copy(chart, by_ref), altair_speed._original_deep_copy(chart, by_ref)
        assert ours.to_dict() == theirs.to_dict() == chart.to_dict()
        pairs = list(zip(nodes(chart), nodes(ours), nodes(theirs), strict=True))
        assert [type(o) for _, o, _ in pairs] == [type(t) for _, _, t in pairs]
        assert [o is c for c, o, _ in pairs] == [t is c for c, _, t in pairs]  # new objects exactly where Altair's


def test_a_layers_hash_follows_its_datas_values_where_altairs_followed_its_text():
    import altair as alt

    def named(frame):
        return alt.Chart(frame).mark_line().encode(x="a:Q", y="b:Q")._compute_hash()

    base = pd.DataFrame({"a": np.arange(200.0), "b": np.arange(200.0) ** 2})
    middle = base.copy()
    middle.loc[100, "b"] = -1.0  # a row pandas leaves out of the frame's text
    assert altair_speed._original_compute_hash(alt.Chart(base).mark_line().encode(x="a:Q", y="b:Q")) == \
        altair_speed._original_compute_hash(alt.Chart(middle).mark_line().encode(x="a:Q", y="b:Q"))
    assert named(base) == named(base.copy()) != named(middle)  # stable, and told apart by any value
    assert named(base) != named(base.rename(columns={"b": "c"})) != named(base.astype({"a": "float32"}))
    assert named(base).startswith("view_") and len(named(base)) == len("view_") + 16


def test_the_converter_is_made_once_and_shared():
    import altair as alt

    alt.Chart().encode(x="a:Q")
    made = dict(altair_speed._converters)
    alt.Chart().encode(x="b:Q", y="c:Q", tooltip=["a:N"])
    assert made and altair_speed._converters == made  # the same objects: nothing was made again


def test_no_more_scripts_draw_at_once_than_the_gate_has_places():
    inside, most, lock = [0], [0], threading.Lock()

    def script() -> None:
        with gate.drawing():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.02)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=script) for _ in range(4 * gate.PLACES + 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == gate.PLACES


def test_a_script_waiting_for_a_computation_gives_its_place_up():
    """PLACES scripts wait for computations; one more script still draws, and each waiter gets a place back."""
    release = threading.Event()
    waiting = threading.Barrier(gate.PLACES + 1)
    drew, back = threading.Event(), []

    def waiter() -> None:
        with gate.drawing():
            with gate.waiting():
                waiting.wait(timeout=5)
                release.wait(timeout=5)
            back.append(gate._local.held)

    def drawer() -> None:
        with gate.drawing():
            drew.set()

    threads = [threading.Thread(target=waiter) for _ in range(gate.PLACES)]
    for t in threads:
        t.start()
    waiting.wait(timeout=5)  # every waiter has given its place up
    other = threading.Thread(target=drawer)
    other.start()
    assert drew.wait(timeout=5), "a script found no place while the others only waited"
    release.set()
    for t in [*threads, other]:
        t.join(timeout=5)
    assert back == [True] * gate.PLACES


def test_nested_drawing_holds_one_place():
    with gate.drawing(), gate.drawing():
        assert gate._gate._value == gate.PLACES - 1
    assert gate._gate._value == gate.PLACES


@pytest.mark.parametrize("info", PAGES, ids=lambda info: info.name)
@settings(max_examples=3)
@given(data=st.data())
def test_a_kept_readout_is_the_readers_own_at_every_setting(info, data):
    module = info.core
    drawn = data.draw(settings_of(module.CONTROLS))
    for key, reader in module.READINGS.items():
        kept = cache.readout(info.name, key, reader, dict(drawn))
        assert kept == reader(dict(drawn), direct), key
        # a second call at the same settings is a hit: an equal value, and the reader does not run again
        assert cache.readout(info.name, key, _must_not_run, dict(drawn)) == kept


def _must_not_run(settings_, run):
    raise AssertionError("a kept readout was read again")


def test_moving_a_control_the_reader_does_not_read_is_a_hit():
    calls = []

    def reader(settings_, run):
        calls.append(1)
        return ("lr", settings_["lr"], run(len, "abc"))

    first = cache.readout("test_page", "one", reader, {"lr": 0.1, "steps": 1, "seed": 0})
    again = cache.readout("test_page", "one", reader, {"lr": 0.1, "steps": 9, "seed": 4})
    other = cache.readout("test_page", "one", reader, {"lr": 0.2, "steps": 9, "seed": 4})
    assert again == first and len(calls) == 2  # the reader ran for the first and the third: the second was a hit
    assert other == ("lr", 0.2, 3)


def test_a_reader_that_looks_at_every_setting_is_keyed_by_all_of_them():
    def reader(settings_, run):
        return sorted(dict(settings_).items())

    a = cache.readout("test_page", "all", reader, {"lr": 0.1, "steps": 1})
    b = cache.readout("test_page", "all", reader, {"lr": 0.1, "steps": 2})
    assert a != b and b == [("lr", 0.1), ("steps", 2)]


def test_the_pool_serves_the_run_that_began_first():
    """With every place taken, waiting jobs get a place in the order their runs began, not in the order they asked."""
    from ui.workers import Turns

    turns, served, lock = Turns(1), [], threading.Lock()
    place = turns.take(0.0)  # the one place is busy
    waiting = []
    for moment in (3.0, 1.0, 2.0):  # they ask in this order; the run that began at 1.0 is the oldest
        def job(moment=moment):
            mine = turns.take(moment)
            with lock:
                served.append((moment, mine))
            turns.give_back(mine)
        t = threading.Thread(target=job)
        t.start()
        waiting.append(t)
        time.sleep(0.05)  # each is queued before the next asks
    turns.give_back(place)
    for t in waiting:
        t.join(timeout=5)
    assert served == [(1.0, place), (2.0, place), (3.0, place)]


def test_each_place_is_held_by_one_job_at_a_time():
    """A place is one worker process: two jobs never hold the same place at once, and every place is used."""
    from ui.workers import Turns

    turns, lock, holding, seen, clashes = Turns(3), threading.Lock(), set(), set(), []

    def job(moment: float) -> None:
        place = turns.take(moment)
        with lock:
            if place in holding:
                clashes.append(place)
            holding.add(place)
            seen.add(place)
        time.sleep(0.01)
        with lock:
            holding.discard(place)
        turns.give_back(place)

    threads = [threading.Thread(target=job, args=(i % 7,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert clashes == [] and seen == {0, 1, 2}


def test_a_background_job_keeps_the_turn_of_the_run_that_started_it():
    from ui import workers

    workers.asked_at(12.5)
    assert cache.background(workers.asked_at).result(timeout=5) == 12.5
