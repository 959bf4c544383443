"""The multi-objective page's words at every setting: each reader's branch against the numbers, recomputed here.

Hypothesis draws every control over its whole range and the seed among 0, 1, 7, 123 (tests/strategies.py);
each property recomputes what decides the branch by an independent route (float64 NumPy, a closed form, or
the raw runs) and checks that the reading says the same.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import Phase, given, settings

import core.multi_objective as core
from content import words
from core import multi_objective_balance as balance
from core.controls import defaults
from core.readings import figure_data, placeholders, problems
from tests.strategies import SEEDS, check_readout, settings_of

W = words("multi_objective")
SETTINGS = settings_of(core.CONTROLS)
# Each example runs real experiments (a second or more): a failure is reported as found, without shrinking.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
DEFAULTS = {**defaults(core.CONTROLS), "seed": 0}


def keys(readout) -> list[str]:
    return [r.key for r in readout.readings]


def slope(series: pd.Series) -> float:
    """Rise per step over the last tenth of a run, in float64 NumPy."""
    v = series.to_numpy(dtype=np.float64)
    tail = max(len(v) // 10, 2)
    return (v[-1] - v[-tail]) / (tail - 1)


# --- The corrected claim: a tanh-bounded maximised term still has no maximiser -----------------------------------

@pytest.mark.parametrize("x", [0.0, 1.0, 5.0, 8.5, 9.0, 20.0])
def test_the_push_on_a_tanh_bounded_term_is_positive_at_every_finite_value(x):
    # d/dx tanh(x) = sech^2(x) = 4 / (e^x + e^-x)^2 > 0: no finite x maximises tanh. Against math, rel 1e-12.
    exact, _ = core.tanh_push(1.0, x)
    assert exact > 0
    assert exact == pytest.approx(4 / (math.exp(x) + math.exp(-x)) ** 2, rel=1e-12)


def test_float32_autograd_rounds_the_push_to_exactly_zero_past_about_nine():
    # The run is float32: tanh(x) rounds to 1 from about 9.01 on and autograd's 1 - tanh^2 gives exactly 0; below,
    # it is positive. Checked through autograd itself, beside tanh_push's float32 number.
    for x, zero in ((8.9, False), (9.1, True), (12.0, True)):
        t = torch.tensor(x, dtype=torch.float32, requires_grad=True)
        torch.tanh(t).backward()
        assert (t.grad.item() == 0.0) is zero
        assert (core.tanh_push(1.0, x)[1] == 0.0) is zero
        assert core.tanh_push(1.0, x)[0] > 0  # in exact arithmetic it never stops


@pytest.mark.parametrize("seed", SEEDS)
def test_the_tanh_bounded_loss2_still_climbs_at_the_default_alpha(seed):
    # Every seed: the bounded loop ends well above its start, and the objective is still above its infimum -alpha.
    run = core.seed_example("bounded", steps=core.SEED_STEPS, alpha=1.0, seed=seed)
    assert run.loss2.iloc[-1] > run.loss2.iloc[0] + 4
    objective = run.loss1.iloc[-1] - np.tanh(np.float64(run.loss2.iloc[-1]))
    assert objective > -1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_a_target_is_a_maximiser_that_the_loop_reaches(seed):
    # -(loss2 - 3)^2 is maximised at loss2 = 3: with a large alpha the loop sits there (|gap| < 0.01) and stops moving.
    run = core.seed_example("target", steps=core.SEED_STEPS, alpha=1e3, seed=seed)
    assert abs(run.loss2.iloc[-1] - core.LOSS2_TARGET) < 1e-2
    assert abs(slope(run.loss2)) < 1e-4


def test_the_words_no_longer_say_tanh_levels_off_or_has_a_ceiling():
    text = " ".join([W["short_answer"], *W["takeaways"], W["experiments.seed.intro"],
                     *(m["evidence"] for m in W["misconceptions"])]).lower()
    assert "ceiling" not in text and "levels off" not in text
    assert "no maximiser" in text


# --- Every reader, at every setting --------------------------------------------------------------------------------

@settings(max_examples=8, phases=NO_SHRINK)
@given(SETTINGS)
def test_seed_reading_branches_agree_with_the_runs(s):
    readout = core.READINGS["seed"](s)
    check_readout("multi_objective", readout)
    alpha = 10.0 ** s["max_alpha_exp"]
    frame = figure_data("multi_objective", "seed_loss1", s)  # the page's own runs; the slopes are recomputed here
    runs = {v: g.sort_values("step") for v, g in frame.groupby("variant")}
    k = keys(readout)
    rising = bool(slope(runs["maximize"].loss2) > 0)
    assert ("experiments.seed_maximize_rising.reading" in k) is rising
    end = runs["bounded"].loss2.iloc[-1]
    t = torch.tensor(end, dtype=torch.float32, requires_grad=True)
    torch.tanh(t).backward()  # autograd's own push at the end, in the run's float32: 0 once tanh rounds to 1
    assert ("experiments.seed_bounded_zero.reading" in k) is (t.grad.item() == 0.0)
    target = runs["target"].loss2
    settled = bool(abs(target.iloc[-1] - core.LOSS2_TARGET) < 0.1 and abs(slope(target)) < 1e-3)
    assert ("experiments.seed_target_settled.reading" in k) is settled
    values = readout.readings[0].values
    assert values["gap"] == 0.0 and values["stack"] and values["plain"]
    bounded = next(r for r in readout.readings if "bounded" in r.key).values
    assert bounded["push"] == pytest.approx(4 * alpha / (math.exp(end) + math.exp(-end)) ** 2, rel=1e-9)
    assert bounded["push"] > 0


@settings(max_examples=10, phases=NO_SHRINK)
@given(SETTINGS)
def test_tradeoff_reading_calls_a_divergence_exactly_where_the_closed_form_puts_it(s):
    readout = core.READINGS["tradeoff"](s)
    check_readout("multi_objective", readout)
    alpha, scale = 10.0 ** s["alpha_exp"], 10.0 ** s["scale_exp"]
    x, _ = core.ridge_problem(s["seed"])
    xn = x.numpy()
    # SGD on loss1 + alpha*scale*loss2: Hessian 2 X^T X / n + 2 alpha scale I; stable iff lr * its top eigenvalue < 2
    top = 2 * np.linalg.eigvalsh(xn.T @ xn / len(xn))[-1] + 2 * alpha * scale
    stable = bool(core.SGD_LR * top < 2)
    k = keys(readout)
    assert ("experiments.tradeoff_sgd_stable.reading" in k) is stable
    assert ("experiments.tradeoff_sgd_diverged.reading" in k) is (not stable)
    warned = [r for r in readout.readings if r.tone == "warning"]
    sweep_top = [2 * np.linalg.eigvalsh(xn.T @ xn / len(xn))[-1] + 2 * a * scale for a in core.SWEEP_ALPHAS]
    assert bool(warned) is any(core.SGD_LR * t >= 2 for t in sweep_top)


@settings(max_examples=10, phases=NO_SHRINK)
@given(SETTINGS)
def test_conflict_and_balance_readings_read_a_divergence_as_one(s):
    conflict, bal = core.READINGS["conflict"](s), core.READINGS["balance"](s)
    check_readout("multi_objective", conflict)
    check_readout("multi_objective", bal)
    runs = balance.balance_run(mismatch=10.0 ** s["mismatch_exp"], alpha=10.0 ** s["task_alpha_exp"],
                               optimizer=s["optimizer"], seed=s["seed"], methods=("fixed",))
    bad = ~np.isfinite(runs.loss1.to_numpy())
    state = next(r for r in conflict.readings if r.key.startswith("experiments.conflict_")
                 and "start" not in r.key)
    assert (state.key == "experiments.conflict_diverged.reading") is bool(bad.any())
    if bad.any():
        assert state.tone == "warning" and state.values["step"] == int(runs.step[bad].iloc[0])
        assert s["optimizer"] == "sgd"  # Adam's steps are bounded by its learning rate: it never diverges here
    else:
        cos = runs.cosine.iloc[-1]
        assert (state.key == "experiments.conflict_open.reading") is bool(not cos < 0)
    start = runs.cosine.iloc[0]
    assert ("experiments.conflict_start_agree.reading" in keys(conflict)) is bool(start > 0)
    for r in bal.readings:
        if r.key == "experiments.balance_uncertainty_settled_noisy.reading":
            assert r.values["loss2"] > r.values["loss1"]


@settings(max_examples=6, phases=NO_SHRINK)
@given(SETTINGS)
def test_every_misconception_is_refuted_by_the_numbers_it_prints(s):
    values = core.READINGS["misconceptions"](s).readings[0].values
    for item in W["misconceptions"]:
        assert placeholders(item["evidence"]) <= set(values)
        assert not problems(item["evidence"].format(**values), values)
    # 1: adding the copied loss2 changed nothing; 2: the unbounded sum still climbs, and tanh still pushes;
    # 3: after dividing by the starting losses, the gradients are still unequal (task 1's the larger)
    assert values["requires_grad"] is False and values["gap"] == 0.0
    assert values["slope"] > 0 and values["push"] > 0
    assert values["ratio"] > 1


@settings(max_examples=4, phases=NO_SHRINK)
@given(SETTINGS)
def test_every_why_of_the_predict_block_fills(s):
    why, options = W["predict.why"], W["predict.options"]
    assert len(why) == len(options)
    readout = core.READINGS["predict"](s)
    values = readout.readings[0].values
    assert readout.readings[0].key == "predict.why"
    for sentence in why:
        assert placeholders(sentence) <= set(values)
        assert not problems(sentence.format(**values), values)
    assert why[W["predict.answer"]].startswith("Right") and sum(w.startswith("Right") for w in why) == 1


def test_every_reader_has_its_experiment_and_the_page_shows_them_all():
    experiments = set(W["experiments"])
    for key in core.READINGS:
        assert key in experiments or key in ("misconceptions", "predict")
    page = Path("pages/multi_objective.py").read_text(encoding="utf-8")
    for key in set(core.READINGS) - {"misconceptions", "predict"}:
        assert f'page.readout("{key}")' in page


def test_adam_ignores_a_factor_on_the_whole_loss_only_well_above_its_eps():
    # The words' limit, measured: at x 1e-3 (the page's factor) Adam's 100-step run moves < 1e-5; once the scaled
    # gradients (order 1 here) come down to eps = 1e-8, it no longer cancels (> 1e-3 at 1e-8, > 0.1 at 1e-9).
    gap = {f: core.train_tradeoff([1.0, 1.0], optimizer="adam", overall=[f, 1.0], steps=100)[["loss1", "loss2"]]
           .diff().abs().iloc[1].max() for f in (1e-3, 1e-8, 1e-9)}
    assert gap[1e-3] < 1e-5 and gap[1e-8] > 1e-3 and gap[1e-9] > 0.1
    assert "eps (1e-8)" in " ".join(W["takeaways"])
