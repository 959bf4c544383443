"""Every reading of the accumulation page, over the whole control space and several seeds (Hypothesis): no
exception, every sentence filled with finite numbers, and each branch the one its numbers call for, recomputed."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import core.accumulation as core
import core.accumulation_clipping as cl
from content import words
from core.controls import defaults, preset_settings
from core.readings import problems
from tests.strategies import SEEDS, check_readout, settings_of

W = words("accumulation")
SETTINGS = settings_of(core.CONTROLS)
EVERY, NEVER = core.ZERO_GRAD_RUNS


def keys(readout) -> list[str]:
    return [r.key.removeprefix("experiments.").removesuffix(".reading") for r in readout.readings]


@given(SETTINGS)
def test_zero_grad_readings_read_a_divergence_as_one(s):
    readout = core.READINGS["zero_grad"](s)
    check_readout("accumulation", readout)
    runs = core.zero_grad_runs(s["lr"], seed=s["seed"])
    x = np.linspace(-1, 1, 6)
    lams = 2 * np.array([np.mean(x**2), 1.0])  # the MSE's Hessian in (w, b), closed form
    factor = np.abs(1 - s["lr"] * lams).max()
    k = keys(readout)
    for name, tag in ((EVERY, "zeroed"), (NEVER, "never")):
        loss = runs[runs.run == name].loss.to_numpy()
        bad = ~np.isfinite(loss)
        if bad.any():
            (r,) = [r for r in readout.readings if r.key == f"experiments.zero_grad_nonfinite_{tag}.reading"]
            assert r.tone == "warning" and r.values["at"] == int(np.argmax(bad))
            assert not any(key.startswith(f"zero_grad_{tag}_") for key in k)
        elif name == EVERY:
            state = "diverged" if factor > 1 + 1e-6 else "settles" if loss[-1] < 1e-3 * loss[0] else "slow"
            if abs(factor - 1) > 1e-6:
                assert f"zero_grad_zeroed_{state}" in k
        else:
            assert f"zero_grad_never_{'diverged' if loss.max() > 1e4 * loss[0] else 'oscillates'}" in k


@settings(max_examples=len(SEEDS))
@given(st.sampled_from(SEEDS))
def test_set_to_none_recipe_and_memory_readings(seed):
    s = {**defaults(core.CONTROLS), "seed": seed}
    for name in ("set_to_none", "recipe", "memory", "batchnorm"):
        check_readout("accumulation", core.READINGS[name](s))
    assert keys(core.READINGS["batchnorm"](s))[-1] == "batchnorm_one_raises_trains_trains"


@given(SETTINGS)
def test_memory_reading_follows_k(s):
    readout = core.READINGS["memory"](s)
    check_readout("accumulation", readout)
    assert keys(readout)[-1] == ("memory_one" if s["memory_k"] == "1" else "memory_split")


@settings(max_examples=8)
@given(SETTINGS)
def test_normalization_readings(s):
    readout = core.READINGS["normalization"](s)
    check_readout("accumulation", readout)
    k, n = s["micro_batches"], s["normalization"]
    k_case = "one" if k == 1 else "even" if core.BATCH_SIZE % k == 0 else "uneven"
    assert f"normalization_{k_case}" in keys(readout)
    curves = core.training_curves(k, n, seed=s["seed"])
    wide = curves.pivot(index="step", columns="run", values="loss")
    last = keys(readout)[-1]
    if not np.isfinite(wide.to_numpy()).all():
        assert last == "training_nonfinite" and n == "none"
    elif wide.to_numpy().max() > 1e6:
        assert last == "training_diverged" and n == "none"
    else:
        gap = ((wide["accumulated"] - wide["one batch"]).abs() / wide["one batch"]).max()
        assert last == ("training_same" if gap < 1e-4 else "training_apart_none" if n == "none"
                        else "training_apart_uneven")
        if last == "training_apart_uneven":  # only uneven splits bend divide_by_steps; global_count never parts
            assert n == "divide_by_steps" and k_case == "uneven"


@settings(max_examples=8)
@given(SETTINGS)
def test_token_readings(s):
    readout = core.READINGS["tokens"](s)
    check_readout("accumulation", readout)
    _, _, targets = core.token_problem(s["spread"], seed=s["seed"])
    counts = [int((t != core.PAD).sum()) for t in targets.tensor_split(s["micro_batches"])]
    case = "one" if s["micro_batches"] == 1 else "equal" if min(counts) == max(counts) else "unequal"
    assert keys(readout)[-1] == f"tokens_{case}"
    assert readout.readings[0].values["min_tokens"] == min(counts)


@settings(max_examples=8)
@given(SETTINGS)
def test_clip_schedule_readings(s):
    readout = core.READINGS["clip_schedule"](s)
    check_readout("accumulation", readout)
    k = s["micro_batches"]
    if k == 1:
        assert keys(readout) == ["clip_schedule_one"]
        return
    runs = cl.clip_accumulation_runs(k, s["max_norm"], seed=s["seed"])
    loss = runs.pivot(index="step", columns="run", values="loss")
    gap = ((loss["clip each micro-batch"] - loss["one batch"]).abs() / loss["one batch"]).max()
    first = runs[runs.step == 0].set_index("run").grad_norm
    differs = gap > 1e-4 or abs(first["clip each micro-batch"] - first["clip once per step"]) > 1e-4 * first.max()
    assert ("clip_schedule_each_differs" in keys(readout)) == bool(differs) or gap < 1e-3
    lr = runs[runs.run == "scheduler per micro-batch"].lr.to_numpy()
    (sched,) = [r for r in readout.readings if r.key.endswith("clip_schedule_scheduler.reading")]
    assert sched.values["zero_at"] == int((lr > 0).sum()) == math.ceil(cl.CLIP_STEPS / k)


@settings(max_examples=6)
@given(SETTINGS)
def test_misconception_evidence_fills_and_refutes_its_claim(s):
    (reading,) = core.READINGS["misconceptions"](s).readings
    v = reading.values
    for item in W["misconceptions"]:
        text = item["evidence"].format(**v)
        assert not problems(text, v), text
    assert v["none4"] > 1 and v["tokens4"] > 1e-3 and v["bn4"] > 1e-3 and v["div5"] > 1e-3  # not the same
    assert v["glob_max"] < 1e-5  # the rule that is exact
    assert v["applied10"] != v["own10"]  # .grad held more than this step's gradient
    assert v["total_64"] > v["fixed"] and v["act_64"] < v["act_full"]
    assert v["momentum"] > 0 and v["adam"] > 0


@settings(max_examples=len(SEEDS))
@given(st.sampled_from(SEEDS))
def test_every_predict_why_fills_and_the_answer_is_four_times(seed):
    (reading,) = core.READINGS["predict"]({**defaults(core.CONTROLS), "seed": seed}).readings
    assert len(W["predict.why"]) == len(W["predict.options"])
    for template in W["predict.why"]:
        text = template.format(**reading.values)
        assert not problems(text, reading.values), text
    acc, full = core.accumulated_and_full(4, "none", seed=seed)
    assert reading.values["ratio"] == (acc.norm() / full.norm()).item()
    assert abs(reading.values["ratio"] - 4) < 1e-5 and reading.values["cosine"] > 1 - 1e-6


def test_every_reading_key_of_the_words_is_one_a_reader_can_choose():
    produced = set()
    grid = [preset_settings(core.CONTROLS, core.PRESETS, p) for p in (None, *core.PRESETS)]
    grid += [{**defaults(core.CONTROLS), **extra} for extra in (
        {"lr": 1.0}, {"lr": 2.0}, {"lr": 3.0}, {"lr": 0.01}, {"micro_batches": 1, "memory_k": "1", "spread": 0},
        {"micro_batches": 24, "normalization": "none"}, {"micro_batches": 5}, {"max_norm": 3.0})]
    for s in grid:
        for name, reader in core.READINGS.items():
            if name not in ("misconceptions", "predict"):
                produced |= set(keys(reader({**s, "seed": 0})))
    written = {k for k, v in W["experiments"].items() if "reading" in v}
    assert written - produced <= {"batchnorm_one_raises_raises_raises", "batchnorm_one_trains_trains_trains",
                                  "training_diverged", "tokens_equal"}, written - produced
