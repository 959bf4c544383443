"""The reduction page's readings over the whole control space: sound sentences whose branch fits their numbers."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import settings as hsettings

import core.reduction as core
from content import words
from core import reduction_elements as elements
from core.export import settings_for
from core.readings import evidence, placeholders, problems
from core.reduction_readings import READINGS
from tests.strategies import check_readout, diverged, settings_of

PAGE = "reduction"
SETTINGS = settings_of(core.CONTROLS)


def keys(readout) -> list[str]:
    return [r.key.rsplit(".", 1)[1] for r in readout.readings]



@hsettings(max_examples=10)
@given(SETTINGS)
def test_norms_reading(settings):
    readout = READINGS["norms"](settings)
    check_readout(PAGE, readout)
    v = readout.readings[0].values
    assert abs(v["ratio"] / settings["batch_size"] - 1) < 1e-4  # "B up to float32 rounding"
    assert v["hi_large"] - v["lo_large"] < v["hi_small"] - v["lo_small"]  # "its band narrows"
    assert v["sum_large"] > v["sum_small"]  # "the sum's gradient grows with B"


@hsettings(max_examples=8)
@given(SETTINGS)
def test_training_reading(settings):
    readout = READINGS["training"](settings)
    check_readout(PAGE, readout)
    b, lr, steps = settings["batch_size"], settings["lr"], settings["steps"]
    runs = core.train_runs(b, lr=lr, steps=steps, seed=settings["seed"])
    broke = {r for r, g in runs.curves.groupby("run") if diverged(g.loss)}
    found = keys(readout)
    assert ("reading_mean_diverged" in found) == ("SGD, mean, lr" in broke)
    if "SGD, mean, lr" not in broke:
        assert ("reading_sum_diverged" in found) == (b > 1 and "SGD, sum, lr" in broke)
        assert ("reading_lr_b_same" in found) == (np.isfinite(runs.sgd_gap) and runs.sgd_gap <= 1e-4
                                                  and "SGD, sum, lr / B" not in broke)
    assert ("reading_adam_diverged" in found) == bool(broke & {"Adam, mean, lr", "Adam, sum, lr"})
    best = elements.best_lr(elements.lr_by_batch(seed=settings["seed"]))
    assert ("reading_best_lr" in found) == (len(set(best.values())) > 1)
    assert ("reading_sum_survived" in found) <= ("SGD, sum, lr" not in broke)


@hsettings(max_examples=6)
@given(SETTINGS)
def test_the_training_words_read_the_runs_the_figure_drew(settings):
    # The readings take step_ratio, the gaps and the diverged runs from the training figure's own data (they ride in
    # its attrs, through the page's pickled cache too), so the page trains the five runs once; they are train_runs'
    # numbers, exactly.
    import pickle

    from core.charts.reduction import FIGURES, training_runs

    figure = FIGURES["training"]
    ours = training_runs(pickle.loads(pickle.dumps(figure.data(**figure.arguments(settings)))))
    theirs = core.train_runs(settings["batch_size"], lr=settings["lr"], steps=settings["steps"], seed=settings["seed"])
    assert ours.curves.equals(theirs.curves)
    assert (ours.step_ratio, ours.diverged) == (theirs.step_ratio, theirs.diverged)
    np.testing.assert_array_equal([ours.sgd_gap, ours.adam_gap], [theirs.sgd_gap, theirs.adam_gap])


@hsettings(max_examples=10)
@given(SETTINGS)
def test_epoch_and_d2l_readings(settings):
    n, eb = settings["n_examples"], settings["epoch_batch"]
    epoch = READINGS["epoch"](settings)
    check_readout(PAGE, epoch)
    expected = "single" if n <= eb else "even" if n % eb == 0 else "short"
    assert keys(epoch) == [f"reading_{expected}"]
    d2l = READINGS["d2l"](settings)
    check_readout(PAGE, d2l)
    routes = core.d2l_routes(n, eb, lr=settings["lr"], seed=settings["seed"])
    assert (keys(d2l) == ["reading_diverged"]) == routes.diverged
    if keys(d2l) == ["reading"]:
        assert max(routes.gap_d2l, routes.gap_none_mean) <= 1e-4


@hsettings(max_examples=10)
@given(SETTINGS)
def test_per_sample_class_weights_and_elements_readings(settings):
    per_sample = READINGS["per_sample"](settings)
    check_readout(PAGE, per_sample)
    v = per_sample.readings[1].values
    assert v["mean_norm"] >= v["batch_norm"] * (1 - 1e-6)  # the norm of a mean never exceeds the mean of norms
    assert per_sample.readings[0].key.endswith("faster") == (v["speedup"] > 1)
    weights = READINGS["class_weights"](settings)
    check_readout(PAGE, weights)
    assert keys(weights) == ["reading" if settings["class_weight"] != 1 else "reading_plain"]
    shapes = READINGS["elements"](settings)
    check_readout(PAGE, shapes)
    v = shapes.readings[0].values
    assert abs(v["ratio"] / (settings["batch_size"] * settings["outputs"]) - 1) < 1e-4
    assert keys(shapes)[1] == ("reading_ignore" if settings["ignored"] else "reading_none")


@hsettings(max_examples=6)
@given(SETTINGS)
def test_misconception_evidence_refutes_or_says_where(settings):
    readout = READINGS["misconceptions"](settings)
    check_readout(PAGE, readout)
    w = words(PAGE)
    texts = evidence(readout, w)
    for item in w["misconceptions"]:
        assert not problems(item["evidence"].format(**texts))
    for r in readout.readings:
        if r.key.endswith("_elsewhere"):
            assert "](/reduction?" in w(r.key, **r.values)
        if r.key == "evidence.faster_here":
            assert r.values["sgd_gap"] <= 1e-4
        if r.key == "evidence.divides_weights":
            assert r.values["weight_sum"] != r.values["n"]
        if r.key == "evidence.same_lr_here":
            assert r.values["best_small"] != r.values["best_large"]


@hsettings(max_examples=10)
@given(SETTINGS)
def test_every_why_of_the_predict_block_fills(settings):
    w = words(PAGE)
    (reading,) = READINGS["predict"](settings).readings
    why = w["predict.why"]
    assert len(why) == len(w["predict.options"])
    for template in why:
        assert placeholders(template) <= set(reading.values)
        assert not problems(template.format(**reading.values), reading.values)
    assert abs(reading.values["ratio"] - 32) < 1e-3 and reading.values["first_gap"] < 1e-5


def test_every_reading_key_exists_at_the_defaults_and_presets():
    for preset in (None, *core.PRESETS):
        for key, reader in READINGS.items():
            if key != "predict":
                check_readout(PAGE, reader(settings_for(PAGE, preset)))
