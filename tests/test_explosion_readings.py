"""Every reading of the explosion page, over the whole control space and several seeds (Hypothesis): no exception,
every sentence filled with finite numbers, and each branch the one its numbers call for, recomputed here."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import core.explosion as ex
import core.explosion_residual as res
import core.explosion_training as tr
from content import words
from core.controls import defaults, preset_settings
from core.readings import problems
from tests.strategies import SEEDS, check_readout, settings_of

W = words("explosion")
SETTINGS = settings_of(ex.CONTROLS)


def keys(readout) -> list[str]:
    return [r.key.removeprefix("experiments.").removesuffix(".reading") for r in readout.readings]


def crosses(ratios: list[float]) -> bool:
    logs = np.log(ratios)
    return bool(np.any(logs == 0) or np.any(logs[:-1] * logs[1:] < 0))


@settings(max_examples=8)
@given(SETTINGS)
def test_depth_readings(s):
    readout = ex.READINGS["depth"](s)
    check_readout("explosion", readout)
    layers = ex.layer_gradient_norms(s["depth"], activation=s["activation"], init_gain=s["init_gain"], seed=s["seed"])
    signal = layers.activation_grad_norm.iloc[0] / layers.activation_grad_norm.iloc[-1]
    weight = layers.weight_grad_norm.iloc[0] / layers.weight_grad_norm.iloc[-1]
    level = lambda r: 0.1 < r < 10  # noqa: E731
    case = "both" if level(signal) and level(weight) else "cancel" if level(weight) else "spread"
    k = keys(readout)
    assert f"depth_{case}" in k
    assert ("depth_linear" in k) == (s["activation"] == "linear")
    (first,) = [r for r in readout.readings if r.key == "experiments.depth.reading"]
    assert math.isclose(first.values["signal"], signal, rel_tol=1e-12)
    sweep = ex.gain_sweep(s["depth"], seed=s["seed"])
    for name in ("linear", "relu", "tanh"):
        line = sweep[(sweep.activation == name) & (sweep.quantity == "signal")].sort_values("init_gain")
        cross = crosses(line.ratio.tolist())
        assert f"depth_sweep_{name}_{'cross' if cross else 'never'}" in k
        if cross:
            (reading,) = [r for r in readout.readings if r.key == f"experiments.depth_sweep_{name}_cross.reading"]
            assert 0.25 <= reading.values["gain"] <= 3.0
    sigmoid = sweep[sweep.activation == "sigmoid"].ratio.max()
    assert f"depth_sweep_sigmoid_{'below' if sigmoid < 1 else 'reaches'}" in k


@settings(max_examples=6)
@given(SETTINGS)
def test_time_readings(s):
    readout = ex.READINGS["time"](s)
    check_readout("explosion", readout)
    rnn = ex.rnn_gradient_norms(s["seq_len"], s["spectral_radius"], nonlinearity=s["nonlinearity"], seed=s["seed"])
    sigma = s["spectral_radius"]  # W = rho * an orthogonal matrix: every singular value is rho
    pascanu = "vanish" if sigma < 1 - 1e-9 else "grew" if rnn[-1] > 1 else "fell"
    if abs(sigma - 1) > 1e-9:
        assert f"time_pascanu_{pascanu}" in keys(readout)
    assert f"time_{s['nonlinearity']}" in keys(readout)


@given(SETTINGS)
def test_clipping_readings_read_a_divergence_as_one(s):
    readout = ex.READINGS["clipping"](s)
    texts = check_readout("explosion", readout)
    assert not any("nan" in t.split() or "inf" in t.split() for t in texts)
    runs = ex.clipping_runs(s["threshold"], lr=s["lr"], steps=s["steps"], seed=s["seed"])
    k = keys(readout)
    for mode in ex.CLIPS:
        run = runs[runs.clipping == mode]
        bad = ~(np.isfinite(run.loss.to_numpy()) & np.isfinite(run.grad_norm.to_numpy()))
        if bad.any():
            (reading,) = [r for r in readout.readings if r.key == f"experiments.clipping_blew_{mode}.reading"]
            assert reading.tone == "warning" and reading.values["step"] == int(run.step.to_numpy()[bad][0])
            assert f"clipping_ended_{mode}" not in k
        else:
            (reading,) = [r for r in readout.readings if r.key == f"experiments.clipping_ended_{mode}.reading"]
            assert math.isclose(reading.values["loss"], run.loss.iloc[-1], rel_tol=1e-12)
    norm = runs[runs.clipping == "norm"]
    finite = np.isfinite(norm.loss).all() and np.isfinite(norm.grad_norm).all()
    worse = bool(finite and norm.loss.iloc[-1] > norm.loss.iloc[0])
    assert ("clipping_worse" in k) == (worse and "clipping_ended_norm" in k)


@given(SETTINGS)
def test_direction_reading_names_the_clip_that_acted(s):
    readout = ex.READINGS["direction"](s)
    check_readout("explosion", readout)
    n0, thr = math.hypot(s["g_x"], s["g_y"]), s["threshold"]
    case = "none" if n0 <= thr else "norm_only" if max(abs(s["g_x"]), abs(s["g_y"])) <= thr else "both"
    assert keys(readout) == [f"direction_{case}"]
    assert math.isclose(readout.readings[0].values["factor"], min(1, thr / (n0 + 1e-6)), rel_tol=1e-12)


@settings(max_examples=len(SEEDS))
@given(st.sampled_from(SEEDS))
def test_survival_readings(seed):
    s = {**defaults(ex.CONTROLS), "seed": seed}
    readout = ex.READINGS["survival"](s)
    check_readout("explosion", readout)
    p = tr.poisoned_step(seed)
    k = keys(readout)
    assert ("survival_batch_finite" in k) == math.isfinite(p["batch_loss"])
    curves = tr.surviving_runs(seed=seed).curves
    none = curves[curves.guard == "none"]
    bad = none.step[~np.isfinite(none.loss)]
    assert ("survival_nan" in k) == bool(len(bad))
    if len(bad):
        assert readout.readings[0].tone == "warning" and readout.readings[0].values["at"] == bad.iloc[0]


@settings(max_examples=8)
@given(SETTINGS)
def test_residual_readings(s):
    readout = ex.READINGS["residual"](s)
    check_readout("explosion", readout)
    df = res.residual_comparison(s["depth"], activation=s["activation"], init_gain=s["init_gain"], seed=s["seed"])
    spread = {n: d.signal.iloc[0] / d.signal.iloc[-1] for n, d in df.groupby("net")}
    plain, resid = spread["plain"], spread["residual + LayerNorm"]
    plain_case = "level" if 0.1 < plain < 10 else "exploded" if plain > 1 else "vanished"
    res_case = ("level" if 0.1 < resid < 10 else "milder" if abs(math.log(resid)) < abs(math.log(plain))
                else "no_better")
    assert keys(readout) == [f"residual_plain_{plain_case}", f"residual_{res_case}"]


@settings(max_examples=6)
@given(SETTINGS)
def test_misconception_evidence_fills_and_refutes_its_claim(s):
    (reading,) = ex.READINGS["misconceptions"](s).readings
    values = reading.values
    for item in W["misconceptions"]:
        text = item["evidence"].format(**values)
        assert not problems(text, values), (problems(text, values), text)
    assert values["g_tanh"] <= values["g_linear"] * (1 + 1e-9)  # saturation lowered the factor
    assert values["g_sigmoid"] <= values["g_linear"] * (1 + 1e-9)
    assert values["preset_signal"] > 1e5  # and still, at gain 3 and depth 50, tanh explodes
    assert values["f_max"] < 1 and values["f_max"] / values["f_min"] < 1 + 1e-9  # one factor, and it acted
    assert values["max_ratio"] <= 1 + 1e-9 and values["sig_after"] <= values["sig_before"]


@settings(max_examples=6)
@given(SETTINGS)
def test_every_predict_why_fills(s):
    (reading,) = ex.READINGS["predict"](s).readings
    assert reading.key == "predict.why"
    assert len(W["predict.why"]) == len(W["predict.options"])
    for template in W["predict.why"]:
        text = template.format(**reading.values)
        assert not problems(text, reading.values), text
    assert reading.values["g_tanh"] <= reading.values["g_linear"] * (1 + 1e-9)  # option 1 is wrong at every setting


def test_every_reading_key_of_the_words_is_one_a_reader_can_choose():
    """No orphan sentence: every experiments.*.reading key appears in some readout at the defaults, a preset or an
    extreme setting."""
    produced = set()
    grid = [preset_settings(ex.CONTROLS, ex.PRESETS, p) for p in (None, *ex.PRESETS)]
    grid += [{**defaults(ex.CONTROLS), **extra} for extra in (
        {"activation": "sigmoid", "depth": 2, "init_gain": 3.0}, {"activation": "relu", "init_gain": 0.25, "depth": 50},
        {"activation": "tanh", "init_gain": 1.5, "depth": 50}, {"spectral_radius": 0.5}, {"spectral_radius": 2.0,
        "seq_len": 300}, {"spectral_radius": 0.5, "seq_len": 300}, {"lr": 3.0, "threshold": 5.0, "steps": 200},
        {"lr": 0.05}, {"g_x": 0.1, "g_y": 0.1}, {"g_x": 0.3, "g_y": 0.2, "threshold": 0.3},
        {"activation": "linear", "init_gain": 1.0, "depth": 50}, {"activation": "linear", "init_gain": 3.0},
        {"activation": "tanh", "init_gain": 1.0, "depth": 2})]
    for s in grid:
        for name, reader in ex.READINGS.items():
            if name not in ("misconceptions", "predict"):
                produced |= set(keys(reader({**s, "seed": 0})))
    written = {k for k, v in W["experiments"].items() if "reading" in v}
    assert written - produced <= {"depth_underflow", "time_underflow", "time_overflow", "survival_batch_nonfinite",
                                  "clipping_blew_norm", "clipping_blew_value", "depth_sweep_linear_never",
                                  "depth_sweep_relu_never", "depth_sweep_tanh_never", "depth_sweep_sigmoid_reaches",
                                  "time_gated_above", "depth_overflow", "time_pascanu_fell", "residual_plain_level",
                                  "residual_no_better", "clipping_worse", "depth_both", "depth_spread_relu",
                                  "depth_spread_linear", "depth_spread_sigmoid", "depth_sweep_no_cancel"}, \
        written - produced
