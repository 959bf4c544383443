"""The accuracy-vs-loss page's words at every setting: each reader's branch against numbers recomputed here.

Hypothesis draws every control over its whole range and the seed among 0, 1, 7, 123 (tests/strategies.py). Each
property recomputes what decides a branch by its own route (plain Python over the raw curves and counts, or a
closed form) and checks that the reading says the same; check_readout fails on nan, inf or a missing value.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import Phase, given, settings

import core.accuracy_vs_loss as core
import core.accuracy_vs_loss_counting as counting
import core.accuracy_vs_loss_smoothing as sm
from content import words
from core.controls import defaults
from core.readings import placeholders, problems
from tests.strategies import check_readout, settings_of

W = words("accuracy_vs_loss")
SETTINGS = settings_of(core.CONTROLS)
DEFAULTS = {**defaults(core.CONTROLS), "seed": 0}
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)  # each example trains real networks: report, do not shrink


def keys(readout) -> list[str]:
    return [r.key for r in readout.readings]


def has(readout, key: str) -> bool:
    return f"experiments.{key}.reading" in keys(readout)


@settings(max_examples=20)
@given(SETTINGS)
def test_one_and_scenario_readings(s):
    one, scenario = core.READINGS["one"](s), core.READINGS["scenario"](s)
    check_readout("accuracy_vs_loss", one)
    check_readout("accuracy_vs_loss", scenario)
    p = s["p_true"]
    assert has(one, "one_zero") is (p == 0.0)  # -log 0 is the only infinite loss
    assert one.metrics["verdict"] == W["verdict.right" if p > 0.5 else "verdict.wrong"]
    n_wrong = math.floor(s["n_examples"] * s["wrong_share"] + 0.5)
    infinite = n_wrong > 0 and s["wrong_conf"] == 1.0
    assert has(scenario, "scenario_inf") is infinite
    acc = 1 - n_wrong / s["n_examples"]
    assert scenario.metrics["accuracy"] == f"{acc:.1%}"


@settings(max_examples=6, phases=NO_SHRINK)
@given(SETTINGS)
def test_overfit_reading_tells_the_story_of_the_curves(s):
    readout = core.READINGS["overfit"](s)
    check_readout("accuracy_vs_loss", readout)
    curves = core.overfit_curves(label_noise=s["label_noise"], epochs=s["epochs"], train_size=s["train_size"],
                                 seed=s["seed"])
    val = {int(r.epoch): r for r in curves[curves.split == "validation"].itertuples()}
    best = min(val, key=lambda e: (val[e].loss, e))
    last = max(val)
    turned = val[last].loss > 1.02 * val[best].loss
    change = val[last].accuracy - val[best].accuracy
    dearer = val[last].loss_from_wrong > val[best].loss_from_wrong
    story = ("no_turn" if not turned else "fell" if change < -0.005 else "other" if not dearer
             else "rose" if change > 0.005 else "level")
    assert has(readout, f"overfit_{story}")
    if story in ("rose", "level"):  # the loss went up while accuracy did not go down
        assert val[last].loss > val[best].loss and val[last].accuracy >= val[best].accuracy - 0.005
    train = curves[(curves.split == "train") & (curves.epoch == last)].iloc[0]
    flipped = core.flipped_in_training(s["label_noise"], s["train_size"], s["seed"])
    assert has(readout, "overfit_memorised") is bool(train.accuracy == 1.0 and flipped > 0)


@settings(max_examples=6, phases=NO_SHRINK)
@given(SETTINGS)
def test_calibration_bins_and_bookkeeping_readings(s):
    cal, bins, books = (core.READINGS[k](s) for k in ("calibration", "bins", "bookkeeping"))
    for readout in (cal, bins, books):
        check_readout("accuracy_vs_loss", readout)
    t = core.calibrate(label_noise=s["label_noise"], epochs=s["epochs"], train_size=s["train_size"], seed=s["seed"])
    assert has(cal, "calibration_over") is (t.temperature > 1)
    # bins: the order of the two models, counted here from the raw ECE table
    df = sm.ece_by_bins(label_noise=s["label_noise"], epochs=s["epochs"], train_size=s["train_size"], seed=s["seed"])
    trained = df[df.model == "as trained"].ece.tolist()
    scaled = df[df.model == "temperature-scaled"].ece.tolist()
    ahead = sum(a > b for a, b in zip(trained, scaled))
    assert has(bins, "bins_order_holds") is (ahead in (0, len(trained)))
    assert min(trained) == pytest.approx(trained[0], abs=1e-12)  # one bin is the smallest ECE, as the words say
    # bookkeeping: which case the words name, from the loader's arithmetic
    n, b = min(s["eval_examples"], core.N_TEST), s["batch_size"]
    kind = "single" if n <= b else "even" if n % b == 0 else "short"
    assert has(books, f"bookkeeping_{kind}")


@settings(max_examples=10)
@given(SETTINGS)
def test_imbalance_and_smoothing_readings(s):
    imb, smooth = core.READINGS["imbalance"](s), core.READINGS["smoothing"](s)
    check_readout("accuracy_vs_loss", imb)
    check_readout("accuracy_vs_loss", smooth)
    n_major = math.floor(counting.N_TEST * s["majority_share"] + 0.5)
    assert has(imb, "imbalance_single") is (n_major == counting.N_TEST)
    row = sm.smoothing_sweep(seed=s["seed"]).set_index("smoothing").loc[round(s["smoothing"], 2)]
    assert has(smooth, "smoothing_over") is bool(row.test_confidence > row.test_accuracy)
    values = smooth.readings[0].values
    eps, k = s["smoothing"], core.CLASSES
    top = 1 - eps + eps / k
    floor = -top * math.log(top) - ((k - 1) * (eps / k) * math.log(eps / k) if eps else 0.0)
    assert values["floor"] == pytest.approx(floor, abs=1e-12) and values["train"] >= floor - 1e-6


@settings(max_examples=5, phases=NO_SHRINK)
@given(SETTINGS)
def test_every_misconception_refutes_its_claim_or_says_where_it_shows(s):
    values = core.READINGS["misconceptions"](s).readings[0].values
    for item in W["misconceptions"]:
        assert placeholders(item["evidence"]) <= set(values)
        assert not problems(item["evidence"].format(**values), values)
    shows = values["loss_end"] > values["loss_turn"] * 1.02 and values["acc_end"] >= values["acc_turn"] - 0.005
    if not values["overfit_note"]:
        assert shows
    if not values["imbalance_note"]:
        assert values["maj_acc"] >= 0.95
    if not values["books_note"]:
        assert f"{values['acc_counted']:.2%}" != f"{values['acc_averaged']:.2%}"
    assert values["b_ce"] < values["a_ce"] and values["b_acc"] < values["a_acc"]  # lower loss, lower accuracy


def test_the_notes_name_settings_that_do_show_the_effect():
    shown = core.READINGS["misconceptions"](DEFAULTS).readings[0].values
    assert shown["overfit_note"] == "" and shown["books_note"] == ""  # the defaults show both (every seed: below)
    for seed in (1, 7, 123):
        t = core.loss_turn(core.overfit_curves(label_noise=0.2, epochs=40, train_size=64, seed=seed))
        assert t["story"] == "rose"
    rare = core.READINGS["misconceptions"]({**DEFAULTS, **core.PRESETS["rare_minority"]}).readings[0].values
    assert rare["imbalance_note"] == "" and rare["maj_acc"] >= 0.95
    books = core.READINGS["bookkeeping"]({**DEFAULTS, "batch_size": 99, "eval_examples": 100})
    assert books.metrics["acc_counted"] != books.metrics["acc_averaged"]


@settings(max_examples=4, phases=NO_SHRINK)
@given(SETTINGS)
def test_every_why_of_the_predict_block_fills(s):
    why = W["predict.why"]
    assert len(why) == len(W["predict.options"])
    reading = core.READINGS["predict"](s).readings[0]
    assert reading.key == "predict.why"
    for sentence in why:
        assert placeholders(sentence) <= set(reading.values)
        assert not problems(sentence.format(**reading.values), reading.values)
    assert why[W["predict.answer"]].startswith("Right") and sum(w.startswith("Right") for w in why) == 1


def test_the_page_shows_every_reader():
    page = Path("pages/accuracy_vs_loss.py").read_text(encoding="utf-8")
    for key in set(core.READINGS) - {"misconceptions", "predict"}:
        assert f'page.readout("{key}")' in page and key in W["experiments"]
