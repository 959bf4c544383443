"""Group A's corrected claims on the explosion page, and its residual experiment, each measured live and held
against an independent computation (numpy float64 by hand, or a second PyTorch route), tolerances stated."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import core.explosion as ex
import core.explosion_residual as res
import core.explosion_summary as sm
import core.explosion_training as tr


def numpy_signal(depth: int, activation: str, gain: float, seed: int = 0) -> np.ndarray:
    """||dL/d(input of layer l)|| for every layer, by a hand-written float64 forward and backward in numpy."""
    model, x, y = ex.depth_problem(depth, activation=activation, init_gain=gain, seed=seed)
    weights = [m.weight.detach().numpy() for m in model[0::2]]
    phi = {"linear": lambda z: z, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0),
           "sigmoid": lambda z: 1 / (1 + np.exp(-z))}[activation]
    slope = {"linear": lambda z: np.ones_like(z), "tanh": lambda z: 1 - np.tanh(z) ** 2,
             "relu": lambda z: (z > 0).astype(float), "sigmoid": lambda z: phi(z) * (1 - phi(z))}[activation]
    h, zs = x.numpy(), []
    for w in weights:
        zs.append(h @ w.T)
        h = phi(zs[-1])
    g = 2 * (h - y.numpy()) / h.size  # dL/dh of the mean squared error
    norms = []
    for w, z in zip(reversed(weights), reversed(zs)):
        g = (g * slope(z)) @ w  # back through phi, then through W
        norms.append(np.linalg.norm(g))
    return np.array(norms[::-1])


# --- A.1: saturation lowers the factor; with large weights tanh still explodes --------------------------------------
def test_tanh_at_gain_3_and_depth_50_explodes_about_1_37_per_layer():
    signal = numpy_signal(50, "tanh", 3.0)
    measured = ex.layer_gradient_norms(50, activation="tanh", init_gain=3.0).activation_grad_norm.to_numpy()
    np.testing.assert_allclose(measured, signal, rtol=1e-7)  # float64 both ways; 50 chaotic layers amplify rounding
    growth = signal[0] / signal[-1]
    assert growth > 1e6  # the tanh_saturated preset: ~4.6e6, beside what used to read "vanish"
    assert 1.30 < growth ** (1 / 49) < 1.45  # ~1.37 per layer, the chaotic regime


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
@pytest.mark.parametrize(("depth", "gain"), [(2, 0.25), (10, 1.0), (20, 1.5), (50, 3.0)])
def test_saturation_lowers_the_factor_against_the_same_weights_without_it(depth, gain, seed):
    linear, tanh, sigmoid = (numpy_signal(depth, a, gain, seed) for a in ("linear", "tanh", "sigmoid"))
    assert tanh[0] / tanh[-1] <= linear[0] / linear[-1] * (1 + 1e-9)
    assert sigmoid[0] / sigmoid[-1] <= linear[0] / linear[-1] * (1 + 1e-9)


def test_small_weights_with_saturation_vanish():
    signal = numpy_signal(20, "sigmoid", 1.0)
    assert signal[0] / signal[-1] < 1e-6


# --- A.2: the level gain for tanh is not Xavier's 1 --------------------------------------------------------------
def test_calculate_gain_for_tanh_is_five_thirds():
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3, abs=1e-12)
    assert abs(ex.TANH_GAIN - 5 / 3) < 1e-12


@pytest.mark.parametrize("depth", [20, 50])
def test_tanh_is_level_near_1_2_to_1_3_and_falls_about_tenfold_at_gain_1(depth):
    sweep = ex.gain_sweep(depth)
    cross = sm.level_gain(sweep, "tanh")
    assert 1.15 < cross < 1.35
    # the crossing is bracketed by numpy's own signal on either side of it
    below, above = (numpy_signal(depth, "tanh", g) for g in (math.floor(cross * 4) / 4, math.ceil(cross * 4) / 4))
    assert below[0] / below[-1] < 1 < above[0] / above[-1]
    at_1 = numpy_signal(depth, "tanh", 1.0)
    assert 0.05 < at_1[0] / at_1[-1] < 0.25  # depth 50: 0.118, about 10x down; depth 20: 0.175


# --- A.3: the corrupt batch's loss is finite; only its gradients are NaN ---------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_the_poisoned_batch_has_a_finite_loss_and_nan_gradients(seed):
    p = tr.poisoned_step(seed)
    model, _, _ = tr.reference_problem(seed)
    x, y = tr.poisoned_batches(tr.POISON_STEP + 1, seed)[tr.POISON_STEP]
    # by hand in numpy: tanh(±inf) = ±1, so the loss is an ordinary number
    h = x.numpy().astype(np.float64)
    for layer in model:
        if isinstance(layer, nn.Linear):
            with np.errstate(invalid="ignore"):
                h = h @ layer.weight.detach().numpy().T.astype(np.float64) + layer.bias.detach().numpy()
        else:
            h = np.tanh(h)
    loss = float(np.mean((h - y.numpy()) ** 2))
    assert math.isfinite(loss) and p["loss_finite"]
    assert p["batch_loss"] == pytest.approx(loss, rel=1e-5)  # float32 against float64
    assert bool(torch.isfinite(torch.tensor(p["batch_loss"])))  # a guard on the loss would let it through
    first = model[0]
    nn.MSELoss()(model(x), y).backward()
    nan = ~torch.isfinite(first.weight.grad)
    assert nan[:, 0].all() and not nan[:, 1:].any()  # exactly the weights that read the inf feature: 0 · inf
    assert p["nonfinite_grads"] == first.out_features == 32


# --- A.7: clip_grad_norm_ multiplies by max_norm / (norm + 1e-6), capped at 1 -------------------------------------
@given(st.floats(-2, 2), st.floats(-2, 2), st.floats(0.05, 5))
def test_clip_grad_norm_factor_is_max_norm_over_norm_plus_1e_6(g_x, g_y, threshold):
    v = ex.clip_2d(g_x, g_y, threshold).set_index("vector")
    n0 = math.hypot(g_x, g_y)
    assert v.loc["clip_grad_norm_"].norm == pytest.approx(n0 * min(1.0, threshold / (n0 + 1e-6)), rel=1e-12, abs=1e-15)


def test_at_exactly_max_norm_the_gradient_still_shrinks_by_the_epsilon():
    v = ex.clip_2d(0.6, 0.8, 1.0).set_index("vector")  # norm exactly 1 = max_norm
    assert v.loc["clip_grad_norm_"].norm == pytest.approx(1 / (1 + 1e-6), rel=1e-12)
    assert v.loc["clip_grad_norm_"].norm < 1.0


# --- Residual connections -----------------------------------------------------------------------------------------
def test_residual_block_is_the_closed_form():
    model, x, _ = res.blocks("residual + LayerNorm", 3, "tanh", 1.5, 0)
    block = model[0]
    h = x.numpy()
    normed = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + 1e-5)  # LayerNorm, eps 1e-5
    w, b = block.linear.weight.detach().numpy(), block.linear.bias.detach().numpy()
    np.testing.assert_allclose(block(x).detach().numpy(), h + np.tanh(normed @ w.T + b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("net", res.NETS)
def test_the_hooks_read_the_gradient_autograd_gives_for_every_block_input(net):
    model, x, y = res.blocks(net, 12, "relu", 2.0, 1)
    hooked, _ = res.hooked_norms(model, x, y)
    inputs, h = [], x.detach().requires_grad_()
    for block in model:
        inputs.append(h)
        h = block(h)
    grads = torch.autograd.grad(nn.MSELoss()(h, y), inputs)  # a second route: no hooks
    np.testing.assert_allclose(hooked, [g.norm().item() for g in grads], rtol=1e-12)
    assert not any(block._backward_hooks for block in model)  # the hooks were removed


def test_plain_net_of_the_comparison_is_experiment_1s_net():
    df = res.residual_comparison(20, activation="tanh", init_gain=1.5)
    plain = df[df.net == "plain"].signal.to_numpy()
    np.testing.assert_allclose(plain, numpy_signal(20, "tanh", 1.5), rtol=1e-9)


@pytest.mark.parametrize(("activation", "gain"), [("tanh", 3.0), ("relu", 3.0), ("linear", 0.25), ("sigmoid", 1.0)])
def test_residual_connections_keep_the_signal_far_closer_to_level_than_the_plain_net(activation, gain):
    df = res.residual_comparison(50, activation=activation, init_gain=gain)
    spread = {n: abs(math.log10(d.signal.iloc[0] / d.signal.iloc[-1])) for n, d in df.groupby("net")}
    assert spread["plain"] > 5  # exploded or vanished by five decades or more
    assert spread["residual + LayerNorm"] < 2  # within a factor of 100 over 50 layers
