"""The loss-scaling page's corrected claims and new experiments, each against an independent computation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import core.loss_scaling as ls
from core import loss_scaling_amp as amp
from core import loss_scaling_decay as decay
from core.data import classification_data, mlp
from tests.test_loss_scaling import manual_gradient


# A.4: Adam's first step is lr * s*g / (s*|g| + eps), not lr whatever s is.
@pytest.mark.parametrize(("scale", "eps"), [(1e-9, 1e-8), (3e-8, 1e-8), (1e-3, 1e-2), (0.1, 1e-8)])
def test_adams_first_step_is_the_closed_form(scale, eps):
    lr = 0.1
    g = manual_gradient(1.0)  # float64, by hand-written backpropagation
    step = lr * scale * g / (scale * g.abs() + eps)  # m_hat = s g, sqrt(v_hat) = s |g| after one step
    plain = lr * g / (g.abs() + eps)
    expected = (torch.linalg.vector_norm(step) / torch.linalg.vector_norm(plain)).item()
    ratio, _ = ls.adam_first_step(scale, lr=lr, eps=eps)
    # the measured step is theta_1 - theta_0 in float32: up to half an ulp of theta (~3e-8) per weight
    assert ratio == pytest.approx(expected, rel=1e-3, abs=3e-8 * math.sqrt(g.numel()) / plain.norm().item())


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_at_the_default_eps_and_small_s_adams_step_is_a_fraction_of_its_plain_step(seed):
    """The takeaway: at s <= 3e-8 under a third (17% at seed 0), at s = 1e-9 under 3%."""
    for scale in (3e-8, 1e-8):
        assert ls.adam_first_step(scale, eps=1e-8, seed=seed)[0] < 1 / 3, (seed, scale)
    assert ls.adam_first_step(1e-9, eps=1e-8, seed=seed)[0] < 0.03
    if seed == 0:
        assert ls.adam_first_step(3e-8, eps=1e-8)[0] == pytest.approx(0.17, abs=0.01)


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_at_eps_1e_2_adam_freezes_most_weights_at_small_s(seed):
    ratio, frozen = ls.adam_first_step(1e-9, eps=1e-2, seed=seed)
    assert frozen > 0.5 and ratio < 1e-6


# A.5: coupled weight decay sees the loss scale; AdamW does not.
@pytest.mark.parametrize(("scale", "wd"), [(0.1, 0.1), (1e-3, 0.5), (10.0, 0.01), (1e-8, 0.2)])
def test_adam_on_scaled_loss_with_decay_is_adam_with_wd_over_s_and_eps_over_s(scale, wd):
    assert decay.adam_decay_identity(scale, wd) < 1e-4  # float32 rounding, relative to how far the weights moved


def test_coupled_decay_sees_loss_over_ten_and_adamw_does_not():
    sweep = decay.decay_sweep(0.1, scales=(0.1,)).set_index("optimizer").update_ratio
    assert sweep["adamw"] == pytest.approx(1.0, abs=1e-3)
    assert sweep["adam"] < 0.99 and sweep["rmsprop"] < 0.8


def test_decay_sweep_equals_separate_plain_runs():
    """The sweep trains all scales as stacked copies; each must be the run torch.optim makes at its scale."""
    scales = (1e-3, 0.1, 10.0)
    sweep = decay.decay_sweep(0.2, scales=scales, steps=5).set_index(["optimizer", "scale"]).update_ratio
    for name in decay.DECAY_OPTIMIZERS:
        moved = {}
        for s in (*scales, 1.0):
            model, x, y = ls.reference_problem(0)
            start = ls.flat(model)
            ls.train(model, x, y, optimizer=name, scale=s, lr=0.1, steps=5, weight_decay=0.2)
            moved[s] = torch.linalg.vector_norm((ls.flat(model) - start).double()).item()
        for s in scales:
            assert sweep[(name, s)] == pytest.approx(moved[s] / moved[1.0], rel=2e-4), (name, s)


# A.7: float16's thresholds, exactly.
def test_float16_rounds_just_above_half_the_subnormal_up_and_overflows_only_from_65520():
    values = torch.tensor([2.0**-25, 2.0**-25 * (1 + 2**-10), 65519.0, 65520.0], dtype=torch.float32)
    cast = values.to(torch.float16).double().tolist()
    assert cast == [0.0, 2.0**-24, 65504.0, math.inf]


def test_under_autocast_param_grad_is_float32_and_activation_grads_float16():
    assert amp.autocast_grad_dtypes() == {"param": "float32", "activation": "float16"}
    model = mlp((32, 64, 10), nn.ReLU)
    with torch.autocast("cpu", dtype=torch.float16):
        out = model(classification_data(4, 32, 10)[0])
    assert out.dtype == torch.float16 and model[0].weight.dtype == torch.float32  # a second look at the same fact


# The new experiment: GradScaler with clipping.
@pytest.mark.parametrize("max_norm", [1e-3, 0.1, 1.0, 1e3])
def test_clipping_the_scaled_gradients_clips_to_max_norm_over_the_scale(max_norm):
    trace = amp.clipping_routes(max_norm).set_index(["route", "step"])
    wrong, right = trace.loc["clip the scaled gradients", 1], trace.loc["clip after unscale_", 1]
    assert wrong.measured == pytest.approx(wrong.scale * wrong.true_norm, rel=1e-3)
    coef = min(1.0, max_norm / (wrong.measured + 1e-6))  # clip_grad_norm_'s rule, clamped at 1
    assert wrong.applied == pytest.approx(coef * wrong.measured / wrong.scale, rel=1e-3)
    assert right.applied == pytest.approx(min(1.0, max_norm / (right.true_norm + 1e-6)) * right.true_norm, rel=1e-4)


def test_accumulated_scaled_micro_batches_unscale_to_the_full_batch_gradient():
    trace = amp.clipping_run(1e3, route="no clipping")
    model = mlp((32, 64, 10), nn.ReLU)  # a second route: float32, no autocast, one backward over the 64 examples
    x, y = classification_data(amp.OPT_STEPS * amp.MICRO_BATCHES * amp.MICRO, 32, 10)
    n = amp.MICRO_BATCHES * amp.MICRO
    nn.functional.cross_entropy(model(x[:n]), y[:n]).backward()
    full = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()])).item()
    assert trace.true_norm.iloc[0] == pytest.approx(full, rel=1e-2)  # float16 activations: ~3 digits


def test_unscale_twice_before_update_is_an_error():
    model = mlp((4, 2), seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    scaler.scale(model(torch.ones(1, 4)).sum()).backward()
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="unscale_"):
        scaler.unscale_(opt)


# The new experiment: bfloat16 beside float16.
def bf16_by_hand(x: torch.Tensor) -> torch.Tensor:
    """float32 -> bfloat16 by its definition: keep the top 16 bits, rounding to nearest even (finite inputs)."""
    bits = x.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return torch.where(rounded >= 2**31, rounded - 2**32, rounded).to(torch.int32).view(torch.float32)


def test_bfloat16_has_float32s_range_and_a_7_bit_mantissa():
    bf, f32 = torch.finfo(torch.bfloat16), torch.finfo(torch.float32)
    assert bf.tiny == f32.tiny and bf.max == pytest.approx(f32.max, rel=1e-2) and bf.eps == 2.0**-7
    grads = ls.fp16_gradients(0)
    for k in (-20, 0, 24):
        values = grads * 2.0**k
        torch.testing.assert_close(values.to(torch.bfloat16).float(), bf16_by_hand(values), rtol=0, atol=0)


def test_format_sweep_bfloat16_loses_nothing_and_rounds_within_half_its_spacing():
    sweep = amp.format_sweep(log2_scales=range(-24, 41, 8))
    bf = sweep[sweep.dtype == "bfloat16"]
    assert (bf.lost == 0).all() and (bf.rel_error <= 2.0**-8).all()
    half = sweep[sweep.dtype == "float16"].set_index("log2_scale").lost
    grads = ls.fp16_gradients(0)
    for k in range(-24, 41, 8):
        cast = (grads[grads != 0] * 2.0**k).to(torch.float16)
        assert half[k] == ((cast == 0) | torch.isinf(cast)).double().mean().item()
