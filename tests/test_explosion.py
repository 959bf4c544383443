"""The facts of core/explosion.py against independent computations: closed forms, float64 recomputations
in numpy, and second PyTorch routes. Every tolerance is stated beside its assertion."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import core.explosion as ex
import core.explosion_summary as sm
import core.explosion_training as tr
from core.controls import defaults
from tests.helpers import ROOT

D = defaults(ex.CONTROLS)


# --- Depth -------------------------------------------------------------------------------------------

def test_linear_net_signal_is_the_product_of_the_weight_matrices_recomputed_in_numpy():
    depth, gain = 12, 1.7
    df = ex.layer_gradient_norms(depth, activation="linear", init_gain=gain, seed=3)
    model, x, y = ex.depth_problem(depth, activation="linear", init_gain=gain, seed=3)
    ws = [layer.weight.detach().numpy() for layer in model[0::2]]
    x, y = x.numpy(), y.numpy()
    hs = [x]
    for w in ws:
        hs.append(hs[-1] @ w.T)
    delta = 2 * (hs[-1] - y) / y.size  # dL/dh_depth for the mean squared error
    signals, weight_grads = [], []
    for w, h_in in zip(reversed(ws), reversed(hs[:-1])):
        weight_grads.append(np.linalg.norm(delta.T @ h_in))
        delta = delta @ w
        signals.append(np.linalg.norm(delta))
    # float64 both ways, a dozen products: agreement to 1e-10 relative
    np.testing.assert_allclose(df.activation_grad_norm, signals[::-1], rtol=1e-10)
    np.testing.assert_allclose(df.weight_grad_norm, weight_grads[::-1], rtol=1e-10)


def test_linear_net_signal_scales_like_gain_to_the_depth():
    # When the output dwarfs the target, the net at gain c*g is c times the net at gain g in every layer, so the
    # first-to-last signal ratio multiplies by exactly c^(depth - 1); |y| / |h_depth| < 1e-5 bounds the rest.
    depth = 20
    ratios = {g: ex.spread(ex.layer_gradient_norms(depth, activation="linear", init_gain=g), "activation_grad_norm")
              for g in (2.0, 3.0)}
    assert ratios[3.0] / ratios[2.0] == pytest.approx(1.5 ** (depth - 1), rel=1e-4)


def test_linear_net_signal_grows_by_the_gain_per_layer_on_average():
    # With gain < 1 the output gradient is the target's, independent of the weights, and E||dW|| = gain ||d||
    # per layer up to a 1/width correction. Per-seed std of the per-layer log excess is ~0.006 (measured);
    # the mean of 16 seeds must be within 0.01 of zero (over 6 standard errors).
    depth, gain = 20, 0.6
    excess = [math.log(ex.spread(ex.layer_gradient_norms(depth, activation="linear", init_gain=gain, seed=s),
                                 "activation_grad_norm")) / (depth - 1) - math.log(gain) for s in range(16)]
    assert abs(np.mean(excess)) < 0.01


def test_linear_weight_gradients_stay_level_while_the_signal_explodes():
    df = ex.layer_gradient_norms(30, activation="linear", init_gain=2.0)
    assert ex.spread(df, "activation_grad_norm") > 2.0**29 / 10  # gain^(depth-1), within a factor 10
    assert 0.1 < ex.spread(df, "weight_grad_norm") < 10  # within one order of magnitude
    # the forward activations grow by the same factor: input norm at the last layer / at the first
    assert df.input_norm.iloc[-1] / df.input_norm.iloc[0] > 2.0**29 / 10


@pytest.mark.parametrize("depth", [20, 50])
@pytest.mark.parametrize(("activation", "gain"), [("relu", ex.HE_GAIN), ("tanh", ex.XAVIER_GAIN)])
def test_he_for_relu_and_xavier_for_tanh_keep_both_within_a_factor_ten(activation, gain, depth):
    for seed in range(3):
        df = ex.layer_gradient_norms(depth, activation=activation, init_gain=gain, seed=seed)
        for column in ("activation_grad_norm", "weight_grad_norm"):
            assert 0.1 < ex.spread(df, column) < 10, (seed, column)


def test_init_rules_are_the_libraries_own():
    w = torch.empty(ex.WIDTH, ex.WIDTH)
    g = torch.Generator().manual_seed(0)
    # xavier_normal_'s std is sqrt(2 / (fan_in + fan_out)); ours is gain / sqrt(fan_in): draw both, compare std
    xavier = nn.init.xavier_normal_(w.clone(), generator=g).std().item()
    ours = nn.init.normal_(w.clone(), 0, ex.XAVIER_GAIN / math.sqrt(ex.WIDTH), generator=g).std().item()
    assert xavier == pytest.approx(ours, rel=0.05)  # 4096 draws: std of a std estimate ~1.1%
    assert abs(ex.HE_GAIN - math.sqrt(2)) < 1e-12
    assert abs(ex.XAVIER_GAIN - 1.0) < 1e-12


def test_sigmoid_vanishes_and_tanh_at_large_gain_spreads_the_weight_gradients():
    sigmoid = ex.layer_gradient_norms(20, activation="sigmoid", init_gain=1.0)
    assert ex.spread(sigmoid, "weight_grad_norm") < 1e-6
    tanh = ex.layer_gradient_norms(20, activation="tanh", init_gain=3.0)
    assert ex.spread(tanh, "weight_grad_norm") > 100


def test_activation_derivatives_respect_their_bounds_and_saturation_only_lowers_the_growth():
    for gain in (1.5, 3.0):
        both = ex.activation_comparison(20, init_gain=gain)
        assert both[both.activation == "tanh"].max_derivative.max() <= 1.0
        assert both[both.activation == "sigmoid"].max_derivative.max() <= 0.25
        assert (both[both.activation == "linear"].max_derivative == 1.0).all()
        growth = {a: ex.spread(d, "activation_grad_norm") for a, d in both.groupby("activation")}
        assert growth["tanh"] < growth["linear"] and growth["sigmoid"] < growth["linear"]


def test_gain_sweep_matches_one_net_at_a_time():
    # a second route: every gain stacked in one batched net against layer_gradient_norms one gain at a time
    depth, gains = 9, (0.5, 1.25, 2.75)
    sweep = ex.gain_sweep(depth, gains=gains, seed=4)
    for activation in ex.ACTIVATIONS:
        for gain in gains:
            ref = ex.layer_gradient_norms(depth, activation=activation, init_gain=gain, seed=4)
            got = sweep[(sweep.activation == activation) & (sweep.init_gain == gain)].set_index("quantity").ratio
            assert got["signal"] == pytest.approx(ex.spread(ref, "activation_grad_norm"), rel=1e-9)
            assert got["weight gradient"] == pytest.approx(ex.spread(ref, "weight_grad_norm"), rel=1e-9)


@pytest.mark.parametrize(("activation", "gain", "depth"), [("linear", 1.5, 20), ("tanh", 3.0, 7), ("sigmoid", 1.0, 4)])
def test_single_sample_gradients_are_one_backward_per_sample(activation, gain, depth):
    # a second route: a literal backward() on each sample alone, against the rows of the batch's backward pass
    df = ex.single_sample_gradients(depth, activation=activation, init_gain=gain, seed=2)
    model, x, y = ex.depth_problem(depth, activation=activation, init_gain=gain, seed=2)
    for i in range(ex.BATCH):
        alone = ex.backward_norms(model, x[i:i + 1], y[i:i + 1])
        rows = df[df.run == f"sample {i}"]
        np.testing.assert_allclose(rows.activation_grad_norm, alone.activation_grad_norm, rtol=1e-10)
        np.testing.assert_allclose(rows.weight_grad_norm, alone.weight_grad_norm, rtol=1e-10)
    batch = ex.layer_gradient_norms(depth, activation=activation, init_gain=gain, seed=2)
    np.testing.assert_allclose(df[df.run == "batch"].weight_grad_norm, batch.weight_grad_norm, rtol=0)


def test_single_sample_gradients_are_noisier_not_exponentially_larger():
    df = ex.single_sample_gradients(20, activation="linear", init_gain=1.5)
    batch, samples = df[df.run == "batch"], df[df.run != "batch"]
    # the batch gradient is the mean of the per-sample ones, so its norm is at most their mean norm (exactly)
    mean_norm = samples.groupby("layer").weight_grad_norm.mean().to_numpy()
    assert (batch.weight_grad_norm.to_numpy() <= mean_norm * (1 + 1e-12)).all()
    s = sm.single_sample_summary(df)
    assert s["ratio_mean"] >= 1 and s["samples"] == ex.BATCH
    # the per-layer growth is the same kind for every sample: within 10% of the batch's at 20 layers
    assert s["within"] and s["p_batch"] / 1.1 < s["p_lo"] and s["p_hi"] < s["p_batch"] * 1.1


def test_clip_grad_norm_is_one_factor_for_every_layer():
    df = ex.clip_each_layer(15, 0.25, activation="tanh", init_gain=2.0)
    total = df.total.iloc[0]
    expected = min(1.0, 0.25 / (total + 1e-6))  # the documented formula of clip_grad_norm_
    np.testing.assert_allclose(df.factor, expected, rtol=1e-12)
    model, x, y = ex.depth_problem(15, activation="tanh", init_gain=2.0)
    nn.MSELoss()(model(x), y).backward()
    by_hand = math.sqrt(sum((p.grad.double() ** 2).sum().item() for p in model.parameters()))
    assert total == pytest.approx(by_hand, rel=1e-12)


def test_numbers_past_float32_are_finite_in_float64_at_the_extremes():
    df = ex.layer_gradient_norms(50, activation="linear", init_gain=3.0)
    assert np.isfinite(df.select_dtypes("number").to_numpy()).all()
    assert df.activation_grad_norm.max() > ex.FLOAT32_MAX


# --- Time --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rho", [0.5, 0.95, 1.0, 1.3, 2.0])
def test_linear_rnn_is_exactly_rho_to_the_t(rho):
    norms = ex.rnn_gradient_norms(ex.SEQ_MAX, rho, nonlinearity="linear")
    closed = rho ** np.arange(1, ex.SEQ_MAX + 1)
    np.testing.assert_allclose(norms, closed, rtol=1e-9)  # 300 float64 products of an orthogonal matrix


@pytest.mark.parametrize("rho", [0.5, 1.1, 2.0])
def test_tanh_rnn_is_at_most_rho_to_the_t(rho):
    norms = np.array(ex.rnn_gradient_norms(ex.SEQ_MAX, rho, nonlinearity="tanh"))
    assert (norms <= rho ** np.arange(1, ex.SEQ_MAX + 1) * (1 + 1e-9)).all()


def test_tanh_recurrence_is_nn_rnn_and_its_jacobian_matches_a_second_route():
    rho, steps = 1.2, 25
    w, u, x, _ = ex.recurrent_problem(rho)
    rnn = nn.RNN(ex.INPUTS, ex.HIDDEN, nonlinearity="tanh", bias=False, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(w)
        rnn.weight_ih_l0.copy_(u)

    def states(h0):  # (H,) -> (T, H) through the library's nn.RNN
        return rnn(x[:steps], h0[None])[0]

    jac = torch.autograd.functional.jacobian(states, torch.zeros(ex.HIDDEN, dtype=torch.float64))  # reverse mode
    expected = torch.linalg.matrix_norm(jac, ord=2).tolist()
    np.testing.assert_allclose(ex.rnn_gradient_norms(steps, rho, nonlinearity="tanh"), expected, rtol=1e-10)


def _unrolled_gated_norms(cell: str, forget_bias: float, seed: int = 0) -> list[float]:
    """The second route: jacfwd through nn.LSTM / nn.GRU run over the whole sequence at once."""
    _, _, x, gen = ex.recurrent_problem(1.0, seed=seed)
    h = ex.HIDDEN
    net = (nn.LSTM if cell == "lstm" else nn.GRU)(ex.INPUTS, h, dtype=torch.float64)
    with torch.no_grad():
        for p in net.parameters():
            nn.init.uniform_(p, -1 / math.sqrt(h), 1 / math.sqrt(h), generator=gen)
        if cell == "lstm":
            net.bias_hh_l0[h:2 * h] += forget_bias

    def states(s0):  # (S,) -> (T, H)
        return net(x, (s0[None, :h], s0[None, h:]))[0] if cell == "lstm" else net(x, s0[None])[0]

    size = 2 * h if cell == "lstm" else h
    jac = ex.jacobian_forward(states, torch.zeros(size, dtype=torch.float64))  # (T, H, S)
    return torch.linalg.matrix_norm(jac.detach(), ord=2).tolist()


@pytest.mark.parametrize(("cell", "forget_bias"), [("lstm", 0.0), ("lstm", 1.0), ("gru", 0.0)])
def test_chained_one_step_jacobians_equal_jacfwd_through_the_whole_sequence(cell, forget_bias):
    # Both routes form the same float64 products; below 1e-300 a norm is at the edge of float64 and may be 0 in one.
    np.testing.assert_allclose(ex.gated_trajectory_norms(cell, ex.HIDDEN, forget_bias, 0),
                               _unrolled_gated_norms(cell, forget_bias), rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("nonlinearity", ex.NONLINEARITIES)
def test_rnn_chain_equals_jacfwd_through_the_unrolled_loop(nonlinearity):
    rho, steps = 1.1, 120
    phi = torch.tanh if nonlinearity == "tanh" else (lambda z: z)
    w, u, x, _ = ex.recurrent_problem(rho)

    def states(h0):  # (H,) -> (T, H): the loop unrolled, differentiated end to end
        h, out = h0, []
        for x_t in x[:steps]:
            h = phi(w @ h + u @ x_t)
            out.append(h)
        return torch.stack(out)

    jac = ex.jacobian_forward(states, torch.zeros(ex.HIDDEN, dtype=torch.float64))  # (T, H, H)
    np.testing.assert_allclose(ex.rnn_gradient_norms(steps, rho, nonlinearity=nonlinearity),
                               torch.linalg.matrix_norm(jac, ord=2).tolist(), rtol=1e-10)


def test_a_shorter_sequence_is_the_start_of_a_longer_one():
    # The one-step Jacobians are one batched call over the sequence, whose rounding may differ in the last bit.
    np.testing.assert_allclose(ex.rnn_gradient_norms(40, 1.1, nonlinearity="tanh"),
                               ex.rnn_gradient_norms(90, 1.1, nonlinearity="tanh")[:40], rtol=1e-14)
    assert ex.gated_gradient_norms(40, "gru") == ex.gated_gradient_norms(90, "gru")[:40]


def test_pascanu_condition_reads_the_largest_singular_value():
    for rho in (0.7, 0.95, 1.05, 1.6):
        cond = ex.pascanu_condition(rho, "tanh")
        assert cond["sigma_max"] == pytest.approx(rho, rel=1e-12)
        assert cond["vanishing_guaranteed"] == (rho < 1.0)


def test_time_comparison_holds_every_model_and_its_bound():
    df = ex.time_comparison(50, 1.1, nonlinearity="tanh")
    assert set(df.model) == {"bound ρ^t", "RNN, tanh", "LSTM", "LSTM, forget bias +1", "GRU"}
    assert (df.groupby("model").t.max() == 50).all()
    bound = df[df.model == "bound ρ^t"].norm.to_numpy()
    np.testing.assert_allclose(bound, 1.1 ** np.arange(1, 51), rtol=1e-12)


# --- Clipping and training ----------------------------------------------------------------------------

@pytest.mark.parametrize("threshold", [0.05, 0.25, 2.0])
def test_norm_clipping_never_exceeds_the_threshold_and_no_mode_enlarges(threshold):
    runs = ex.clipping_runs(threshold, lr=1.0, steps=40)
    finite = runs[np.isfinite(runs.clipped_grad_norm)]
    norm = finite[finite.clipping == "norm"]
    assert (norm.clipped_grad_norm <= threshold * (1 + 1e-6)).all()  # float32 norms: 1e-6 relative
    assert (finite.clipped_grad_norm <= finite.grad_norm * (1 + 1e-6)).all()
    none = finite[finite.clipping == "none"]
    np.testing.assert_array_equal(none.clipped_grad_norm, none.grad_norm)


def test_value_clipping_bounds_each_entry_and_the_norm_by_threshold_times_sqrt_p():
    model, x, y = tr.reference_problem(0)
    params = list(model.parameters())
    nn.MSELoss()(model(x), y).backward()
    before, after = tr.clip_gradients(params, "value", 0.01)
    entries = torch.cat([p.grad.flatten() for p in params])
    assert entries.abs().max().item() <= 0.01
    assert after <= 0.01 * math.sqrt(entries.numel()) * (1 + 1e-6)
    model, x, y = tr.reference_problem(0)
    nn.MSELoss()(model(x), y).backward()
    by_hand = math.sqrt(sum((p.grad.double() ** 2).sum().item() for p in model.parameters()))
    assert before == pytest.approx(by_hand, rel=1e-6)  # float32 norm against a float64 sum of squares


def test_at_the_default_settings_the_unclipped_run_blows_up_and_norm_clipping_holds():
    runs = ex.clipping_runs(D["threshold"], lr=D["lr"], steps=D["steps"])
    found = ex.blowups(runs)
    assert set(found) == {"none"}
    step = found["none"]
    none = runs[runs.clipping == "none"]
    assert none.step.max() == step and not np.isfinite(none.iloc[-1][["loss", "grad_norm"]].astype(float)).all()
    norm = runs[runs.clipping == "norm"]
    assert norm.loss.iloc[-1] < norm.loss.iloc[0]


def test_norm_clipping_keeps_the_direction_value_clipping_turns_it():
    for g_x, g_y, t in [(0.9, 0.3, 0.25), (-1.5, 0.4, 0.5), (2.0, -2.0, 0.1), (0.1, 0.05, 1.0)]:
        df = ex.clip_2d(g_x, g_y, t).set_index("vector")
        norm, value = df.loc["clip_grad_norm_"], df.loc["clip_grad_value_"]
        length = math.hypot(g_x, g_y)
        k = min(1.0, t / (length + 1e-6))  # clip_grad_norm_'s documented factor
        assert (norm.x, norm.y) == (pytest.approx(g_x * k, rel=1e-12), pytest.approx(g_y * k, rel=1e-12))
        assert norm.turn == pytest.approx(0.0, abs=1e-9)
        clamped = (max(-t, min(t, g_x)), max(-t, min(t, g_y)))
        assert (value.x, value.y) == (pytest.approx(clamped[0]), pytest.approx(clamped[1]))
        turn = abs(math.degrees(math.atan2(clamped[1], clamped[0]) - math.atan2(g_y, g_x)))
        assert value.turn == pytest.approx(min(turn, 360 - turn), abs=1e-9)
    assert ex.clip_2d(0.9, 0.3, 0.25).set_index("vector").turn["clip_grad_value_"] > 20  # turned, measurably


def test_a_poisoned_step_ruins_the_unguarded_run_and_is_skipped_by_the_guards():
    s = ex.surviving_runs()
    curves = s.curves.set_index(["guard", "step"]).loss.unstack("guard")
    p = tr.POISON_STEP
    assert np.isfinite(curves.loc[: p - 1, "none"]).all() and np.isnan(curves.loc[p:, "none"]).all()
    for guard in ("skip", "grad_scaler"):
        assert np.isfinite(curves[guard]).all()
        skipped = s.curves[(s.curves.guard == guard) & s.curves.skipped].step.tolist()
        assert skipped == [p]
    # a power-of-two scale is exact in float32: GradScaler's run is the plain skipping run, to rounding
    np.testing.assert_allclose(curves["grad_scaler"], curves["skip"], rtol=1e-6)
    assert s.error_step == p and "non-finite" in s.error


# --- The numbers the words quote -------------------------------------------------------------------------

def test_depth_summary_reads_the_frame():
    df = ex.layer_gradient_norms(20, activation="linear", init_gain=1.5)
    d = sm.depth_summary(df, 1.5)
    assert d["signal"] == df.activation_grad_norm.iloc[0] / df.activation_grad_norm.iloc[-1]
    assert d["per_layer"] == pytest.approx(d["signal"] ** (1 / 19), rel=1e-12)
    assert d["closed"] == pytest.approx(1.5**19, rel=1e-12)
    assert d["case"] == "cancel" and d["range"] == "fits"
    # the linear net's activations follow gain^(depth - 1) closely, the signal within a factor of 4 (stated on page)
    assert 0.5 < d["forward_vs_closed"] < 2 and 0.25 < d["signal_vs_closed"] < 4
    assert sm.depth_summary(ex.layer_gradient_norms(50, activation="linear", init_gain=3.0), 3.0)["range"] == "overflow"
    assert sm.depth_summary(ex.layer_gradient_norms(20, activation="sigmoid", init_gain=1.0), 1.0)["case"] == "spread"
    he = ex.layer_gradient_norms(20, activation="relu", init_gain=ex.HE_GAIN)
    assert sm.depth_summary(he, ex.HE_GAIN)["case"] == "both"


def test_level_gain_finds_a_closed_form_crossing():
    # ratio = (g / 1.3)^5 crosses 1 at exactly 1.3; interpolating log ratio linearly in g is exact up to curvature
    gains = np.linspace(0.25, 3.0, 12)
    sweep = pd.DataFrame({"activation": "relu", "quantity": "signal", "init_gain": gains,
                          "ratio": (gains / 1.3) ** 5})
    assert sm.level_gain(sweep, "relu") == pytest.approx(1.3, abs=0.02)
    assert sm.level_gain(sweep.assign(ratio=0.5), "relu") is None


def test_sweep_summary_at_the_defaults():
    s = sm.sweep_summary(ex.gain_sweep(D["depth"]))
    assert abs(s["relu_cross"] - ex.HE_GAIN) < 0.1  # He's rule, measured: within 0.1 at 20 layers
    assert abs(s["linear_cross"] - 1.0) < 0.1
    assert s["tanh_cross"] > ex.XAVIER_GAIN  # tanh' < 1 away from zero moves the crossing up
    assert s["cancel"] == "cancel" and s["sigmoid"] == "below"


def test_time_summary_picks_pascanus_sentence():
    cases = [(0.8, "tanh", "vanish"), (1.1, "linear", "grew"), (1.5, "tanh", "fell"), (2.0, "tanh", "grew")]
    for rho, nl, case in cases:
        df = ex.time_comparison(300 if rho == 2.0 else 100, rho, nonlinearity=nl)
        t = sm.time_summary(df, rho, nl, ex.pascanu_condition(rho, nl)["sigma_max"])
        assert t["pascanu"] == case, (rho, nl)
        assert t["rnn"] <= t["bound"] * (1 + 1e-9)
    assert t["gated_case"] == "below" and t["lstm_fb"] > t["lstm"]  # a forget bias of +1 forgets more slowly


def test_clipping_summary_counts_and_caps():
    runs = ex.clipping_runs(D["threshold"], lr=D["lr"], steps=D["steps"])
    c = sm.clipping_summary(runs, D["threshold"], tr.N_PARAMETERS)
    assert c["blown"]["none"] is not None and c["blown"]["norm"] is None
    norm = runs[runs.clipping == "norm"]
    assert c["norm_clipped"] == int((norm.grad_norm > D["threshold"]).sum())
    assert c["norm_max_after"] <= D["threshold"] * (1 + 1e-6) and c["max_ratio"] <= 1 + 1e-6
    assert c["value_max_after"] <= c["value_cap"] * (1 + 1e-6)
    model, _, _ = tr.reference_problem(0)
    assert sum(p.numel() for p in model.parameters()) == tr.N_PARAMETERS


def test_direction_summary_cases():
    assert sm.direction_summary(ex.clip_2d(0.1, 0.1, 0.25), 0.25)["case"] == "none"
    assert sm.direction_summary(ex.clip_2d(0.2, -0.2, 0.25), 0.25)["case"] == "norm_only"
    both = sm.direction_summary(ex.clip_2d(0.9, 0.3, 0.25), 0.25)
    assert both["case"] == "both" and both["t_value"] > 20 and abs(both["t_norm"]) < 1e-9


def test_survival_summary_reads_the_runs():
    s = sm.survival_summary(ex.surviving_runs())
    assert s["none_from"] == s["p"] == s["error_step"] == tr.POISON_STEP
    assert s["skip_skips"] == s["scaler_skips"] == 1 and s["gap"] == 0.0  # a power-of-two scale is exact


def test_saturation_and_clip_summaries():
    sat = sm.saturation_summary(ex.activation_comparison(20, init_gain=3.0))
    assert sat["d_tanh"] <= 1 and sat["d_sigmoid"] <= 0.25 and sat["g_tanh"] < sat["g_linear"]
    clipped = ex.clip_each_layer(20, 0.25, activation="linear", init_gain=1.5)
    idle = ex.clip_each_layer(20, 0.25, activation="sigmoid", init_gain=1.0)
    c = sm.clip_layers_summary(clipped, idle)
    assert c["clipped"] and c["f_min"] == pytest.approx(c["f_max"], rel=1e-12)
    assert c["sig_factor"] == pytest.approx(1.0) and c["sig_before"] == c["sig_after"]  # total below max_norm


# --- House rules -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "valid"), [
    (lambda: ex.layer_gradient_norms(3, activation="gelu"), ex.ACTIVATIONS),
    (lambda: ex.rnn_gradient_norms(5, 1.0, nonlinearity="relu"), ex.NONLINEARITIES),
    (lambda: ex.gated_gradient_norms(5, "rnn"), ex.GATED),
    (lambda: ex.clipped_training("global", 1.0, lr=0.1, steps=2), ex.CLIPS),
])
def test_unknown_names_list_the_valid_ones(call, valid):
    with pytest.raises(ValueError) as info:
        call()
    assert all(name in str(info.value) for name in valid)


def test_same_seed_same_numbers_other_seed_other_numbers():
    runs = [
        lambda s: ex.layer_gradient_norms(10, activation="tanh", init_gain=1.5, seed=s),
        lambda s: ex.gain_sweep(5, seed=s),
        lambda s: ex.clipping_runs(0.25, lr=1.0, steps=20, seed=s),
        lambda s: ex.surviving_runs(steps=25, seed=s).curves,
        lambda s: ex.single_sample_gradients(6, activation="tanh", init_gain=2.0, seed=s),
    ]
    for run in runs:
        a, b, c = run(1), run(1), run(2)
        assert a.equals(b)
        assert not a.equals(c)
    assert ex.rnn_gradient_norms(30, 1.1, nonlinearity="tanh", seed=1) == ex.rnn_gradient_norms(
        30, 1.1, nonlinearity="tanh", seed=1)
    assert ex.gated_gradient_norms(30, "lstm", seed=1) != ex.gated_gradient_norms(30, "lstm", seed=2)


def test_core_does_not_import_streamlit():
    code = ("import sys, core.explosion, core.charts.explosion;"
            "print(any(m.startswith('streamlit') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_a_run_of_fewer_steps_is_the_start_of_a_longer_one_however_it_was_reached():
    # clipped_training shares one run per setting: its rows must not depend on which step counts came before
    fresh = {c: list(itertools.islice(tr.training_steps(c, 0.5, lr=1.3, seed=3), 90)) for c in ex.CLIPS}
    for steps in (40, 90, 25, 60):
        runs = ex.clipping_runs(0.5, lr=1.3, steps=steps, seed=3)
        for c in ex.CLIPS:
            got = runs[runs.clipping == c][["loss", "grad_norm", "clipped_grad_norm"]].itertuples(index=False)
            assert [tuple(r) for r in got] == fresh[c][:steps]
