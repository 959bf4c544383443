"""The facts of core.loss_scaling against independent computations: closed forms, float64, a second route."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

import core.loss_scaling as ls
from core import fp16


def manual_gradient(scale: float, seed: int = 0) -> torch.Tensor:
    """The reference model's gradient of scale * MSE, by hand-written backpropagation in float64."""
    model, x, y = ls.reference_problem(seed)
    w1, b1, w2, b2 = (p.detach().double() for p in model.parameters())
    x, y = x.double(), y.double()
    h = torch.tanh(x @ w1.T + b1)  # (N, H)
    out = h @ w2.T + b2  # (N, 1)
    d_out = scale * 2 * (out - y) / out.numel()  # d(scale * mean((out - y)^2)) / d out
    d_z = (d_out @ w2) * (1 - h**2)  # (N, H)
    return torch.cat([(d_z.T @ x).flatten(), d_z.sum(0), (d_out.T @ h).flatten(), d_out.sum(0)])


@pytest.mark.parametrize("scale", [1e-10, 1e-3, 0.1, 7.0, 1e4])
def test_gradients_are_scale_times_the_hand_derived_gradient(scale):
    ratios = ls.gradient_ratios(scale)
    f64 = ratios[ratios.dtype == "float64"]
    expected = manual_gradient(1.0)
    assert torch.allclose(torch.tensor(f64.grad.to_numpy()), expected, rtol=1e-12, atol=1e-15)
    # float64 ratios are s to ~1e-12 even where gradients cancel; float32 to ~1e-3 at worst (cancellation)
    assert (f64.ratio / scale - 1).abs().max() < 1e-10
    f32 = ratios[ratios.dtype == "float32"]
    assert (f32.ratio / scale - 1).abs().max() < 1e-3


def test_a_power_of_two_scale_is_exact_in_float32():
    ratios = ls.gradient_ratios(2.0**-3)
    assert ((ratios.ratio / 2.0**-3) - 1).abs().max() == 0.0


def test_direction_never_changes():
    for scale in (1e-10, 0.1, 1e4):
        assert ls.gradient_cosine(scale) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("scale", [1e-3, 0.1, 10.0])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_sgd_one_step_ratio_is_the_scale(optimizer, scale):
    # closed form: the first step of SGD (and of momentum, whose buffer starts as the gradient) is -lr * s * g.
    # The step is measured as theta_1 - theta_0 in float32, so it carries up to half an ulp of theta (~1.5e-8
    # here) per weight: a relative error of about 1.5e-8 / |step|, 1e-4 for the smallest scale's ~1e-4 steps.
    assert ls.update_ratio(optimizer, scale, steps=1) == pytest.approx(scale, rel=1e-3 if scale < 0.01 else 1e-5)


@pytest.mark.parametrize("scale", [0.1, 10.0, 1e3])
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "adagrad"])
def test_adam_family_ratio_is_one_for_moderate_scales(optimizer, scale):
    assert ls.update_ratio(optimizer, scale, steps=5) == pytest.approx(1.0, abs=1e-3)
    # RMSprop has no bias correction: its sqrt(v) is 10x smaller early on, so eps bites at 10x larger s
    if optimizer != "rmsprop":
        assert ls.update_ratio(optimizer, scale * 1e-2, steps=5) == pytest.approx(1.0, abs=1e-3)


def test_adam_ratio_falls_once_scaled_gradients_reach_eps():
    assert ls.update_ratio("adam", 1e-10, steps=5) < 0.05
    # a larger eps moves the knee to larger s: at s = 1e-3, eps = 1e-2 already dominates
    assert ls.update_ratio("adam", 1e-3, steps=5, eps=1e-2) < 0.5 < ls.update_ratio("adam", 1e-3, steps=5)


def test_unknown_optimizer_lists_the_valid_ones():
    with pytest.raises(ValueError, match="sgd, momentum, adam, adamw, rmsprop, adagrad"):
        ls.update_ratio("lion", 0.1)


@pytest.mark.parametrize("steps", [1, 5])
def test_batched_sweep_equals_separate_plain_runs(steps):
    """The sweep trains all scales as stacked copies; each copy must be the plain run at its scale."""
    scales = (1e-3, 0.1, 10.0)
    sweep = ls.scaling_sweep(steps=steps, scales=scales).set_index(["optimizer", "scale"]).update_ratio
    for name in ls.OPTIMIZERS:
        for s in scales:
            assert sweep[(name, s)] == pytest.approx(ls.update_ratio(name, s, steps=steps), rel=2e-4), (name, s)


def test_adam_on_scaled_loss_is_adam_with_eps_over_s():
    """The claim of experiment 3: m and sqrt(v) carry the factor s, eps does not."""
    finals = []
    for scale, eps in ((1e-3, 1e-8), (1.0, 1e-5)):
        model, x, y = ls.reference_problem(0)
        ls.train(model, x, y, optimizer="adam", scale=scale, lr=0.1, steps=20, eps=eps)
        finals.append(ls.flat(model))
    moved = (finals[1] - ls.flat(ls.reference_problem(0)[0])).abs().max().item()
    assert (finals[0] - finals[1]).abs().max().item() < 1e-4 * moved


def test_sgd_loss_times_s_equals_lr_times_s_without_weight_decay_only():
    plain = ls.equivalent_runs(0.1, lr=0.1, weight_decay=0.0)
    assert plain.sgd_gap < 1e-6 and not plain.diverged
    decayed = ls.equivalent_runs(0.1, lr=0.1, weight_decay=0.1)
    assert decayed.sgd_gap > 1e-3


def test_divergence_is_reported_not_hidden():
    runs = ls.equivalent_runs(1e4, lr=1.0)
    assert runs.diverged
    assert not math.isfinite(runs.curves.loss.max()) or runs.curves.loss.max() > 1e6


def test_frozen_weights_are_those_whose_update_is_below_half_an_ulp():
    """Recompute one SGD step's fate per weight from float64 arithmetic and float32 spacing."""
    lr, scale = 0.1, 1e-6
    frozen = ls.scaling_sweep(lr=lr, steps=1, scales=(scale,)).set_index("optimizer").frozen_fraction["sgd"]
    model, x, y = ls.reference_problem(0)
    theta = ls.flat(model)
    g = manual_gradient(scale)
    spacing = torch.nextafter(theta.abs(), torch.tensor(math.inf)) - theta.abs()  # float32 ulp at each weight
    predicted = ((lr * g).abs() < spacing.double() / 2).double().mean().item()
    assert frozen == pytest.approx(predicted, abs=3 / theta.numel())  # a weight or so may sit on the boundary
    assert 0 < frozen < 1


def test_sgd_freezes_entirely_at_tiny_scales_and_never_at_one():
    sweep = ls.scaling_sweep(lr=0.1, steps=1, scales=(1e-10, 1e-9, 1.0)).query("optimizer == 'sgd'")
    assert sweep.set_index("scale").frozen_fraction.to_dict() == {1e-10: 1.0, 1e-9: 1.0, 1.0: 0.0}
    assert (sweep.set_index("scale").update_ratio[1e-9]) == 0.0


def test_float16_limits_are_torch_finfo():
    info = torch.finfo(torch.float16)
    assert info.smallest_normal * 2.0**-10 == fp16.SMALLEST_SUBNORMAL
    assert info.tiny == fp16.SMALLEST_NORMAL
    assert info.max == fp16.LARGEST


def test_underflow_threshold_is_half_the_smallest_subnormal():
    # round to nearest even: 2^-25 is the midpoint between 0 and 2^-24 and goes to 0; just above it rounds up
    values = torch.tensor([2.0**-26, 2.0**-25, 2.0**-25 * 1.01, 2.0**-24, 2.0**-14, 1.0, 0.0])
    assert fp16.fp16_underflow_fraction(values) == pytest.approx(2 / 6)  # the exact zero is not counted
    assert ls.fp16_underflow_fraction(values, scale=2.0**10) == 0.0
    assert ls.fp16_underflow_fraction(torch.zeros(3)) == 0.0


def test_overflow_threshold_is_the_midpoint_above_65504():
    values = torch.tensor([65504.0, 65519.0, 65520.0, 1e6])
    assert fp16.fp16_overflow_fraction(values) == pytest.approx(2 / 4)


def test_histogram_counts_every_nonzero_gradient_once():
    grads = ls.fp16_gradients(0)
    hist = ls.fp16_histogram(0)
    assert hist["count"].sum() == int((grads != 0).sum())
    exponents = torch.floor(torch.log2(grads[grads != 0].double().abs()))
    assert hist.set_index("log2_lo")["count"].to_dict() == {int(k): int(v) for k, v in
                                                           zip(*torch.unique(exponents, return_counts=True))}


def test_fates_match_the_fraction_functions():
    grads = ls.fp16_gradients(0)
    fates = ls.fp16_fates(log2_scales=range(-10, 30, 7)).set_index(["log2_scale", "fate"]).fraction
    for k in range(-10, 30, 7):
        assert fates[(k, "flushed to zero")] == fp16.fp16_underflow_fraction(grads, 2.0**k)
        assert fates[(k, "overflow to inf")] == fp16.fp16_overflow_fraction(grads, 2.0**k)


def test_grad_scaler_follows_its_documented_rule():
    """Halve and skip on inf/NaN; double after growth_interval consecutive clean steps; else keep."""
    interval = 10
    trace = ls.grad_scaler_run(growth_interval=interval, steps=200)
    assert trace.scale.iloc[0] == 2.0**16
    assert trace.skipped.any() and (~trace.skipped).any()  # both branches of the rule are exercised
    clean = 0
    for now, nxt, skipped in zip(trace.scale[:-1], trace.scale[1:], trace.skipped[:-1]):
        if skipped:
            clean = 0
            assert nxt == now / 2
        else:
            clean += 1
            if clean == interval:
                clean = 0
                assert nxt == now * 2
            else:
                assert nxt == now


def test_grad_scaler_does_not_change_a_float32_update():
    assert ls.scaler_update_gap() == 0.0


def test_same_seed_same_numbers_other_seed_other_numbers():
    a, b, c = ls.scaling_sweep(seed=3), ls.scaling_sweep(seed=3), ls.scaling_sweep(seed=4)
    assert a.equals(b)
    assert not a.update_ratio.equals(c.update_ratio)


def test_reference_problem_uses_no_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    ls.reference_problem(5)
    assert torch.rand(1) == before


def test_mlp_init_matches_pytorch_default_distribution():
    """seeded_init_ redraws nn.Linear as PyTorch does: weights and biases within ±1/sqrt(fan_in)."""
    model = ls.reference_problem(0)[0]
    for layer in (m for m in model if isinstance(m, nn.Linear)):
        bound = 1 / math.sqrt(layer.in_features)
        assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound


def test_at_the_default_eps_the_adam_family_still_moves_where_sgd_freezes():
    """At eps = 1e-8 and lr = 0.1 the Adam family's much shrunk first step still clears float32's half ulp;
    at eps = 1e-2 it does not (tests/test_loss_scaling_facts.py): its step is not "about lr whatever s is"."""
    sweep = ls.scaling_sweep(lr=0.1, steps=1, scales=(1e-10, 1e-8, 1e-6)).set_index(["optimizer", "scale"])
    for name in ("adam", "adamw", "rmsprop", "adagrad"):
        for s in (1e-10, 1e-8, 1e-6):
            assert sweep.frozen_fraction[(name, s)] == 0.0, (name, s)
    assert sweep.frozen_fraction[("sgd", 1e-8)] == 1.0


def _sweep_one_optimizer_at_a_time(*, lr, steps, eps, seed, scales):
    """The sweep as each optimizer would run it alone: its own first forward and backward pass."""
    scales_t = torch.tensor((1.0, *scales))
    rows = []
    for name in ls.OPTIMIZERS:
        model, x, y = ls.reference_problem(seed)
        copies = ls._Copies(model, len(scales_t))
        opt = ls.make_optimizer(name, copies.parameters(), lr=lr, eps=eps)
        start = copies.flat()
        for step in range(steps):
            opt.zero_grad()
            (scales_t * ((copies(x) - y) ** 2).mean(dim=(1, 2))).sum().backward()
            opt.step()
            if step == 0:
                frozen = (copies.flat() == start).double().mean(dim=1)
        moved = torch.linalg.vector_norm((copies.flat() - start).double(), dim=1)
        ratio = (moved / moved[0]).tolist()
        rows += [{"optimizer": name, "scale": s, "update_ratio": ratio[i + 1], "frozen_fraction": frozen[i + 1].item()}
                 for i, s in enumerate(scales)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("steps", "eps", "seed"), [(1, 1e-8, 0), (3, 1e-6, 2)])
def test_the_shared_first_backward_pass_changes_no_number(steps, eps, seed):
    # Every optimizer starts from the same weights, so the sweep takes the first gradients once: bit for bit the same.
    settings = {"lr": 0.1, "steps": steps, "eps": eps, "seed": seed, "scales": ls.SWEEP_SCALES}
    pd.testing.assert_frame_equal(ls.scaling_sweep(**settings), _sweep_one_optimizer_at_a_time(**settings),
                                  check_exact=True)


@pytest.mark.parametrize("weight_decay", [0.05, 0.0])  # 0.0 shares the run without weight_decay but AdamW's
@pytest.mark.parametrize("optimizer", ls.OPTIMIZERS)
def test_a_run_continued_from_a_shorter_one_is_the_run_trained_from_scratch(optimizer, weight_decay):
    """update_outcome and equivalent_runs keep each run and extend it when `steps` grows: bit for bit train()'s run."""
    settings = {"lr": 0.0123, "eps": 1e-6, "weight_decay": weight_decay}
    for steps in (3, 7, 2):  # the 7-step run continues the 3-step one; the 2-step one is read from it
        losses, start, end = ls._trained(optimizer, 0.01, steps=steps, seed=1, **settings)
        model, x, y = ls.reference_problem(1)
        assert torch.equal(start, ls.flat(model))
        expected = ls.train(model, x, y, optimizer=optimizer, scale=0.01, steps=steps, **settings)
        assert losses == expected, steps
        assert torch.equal(end, ls.flat(model)), steps


def test_a_shorter_sweep_read_from_a_longer_one_changes_no_number():
    settings = {"lr": 0.0456, "eps": 1e-7, "seed": 1, "scales": ls.SWEEP_SCALES}
    ls.scaling_sweep(steps=4, **settings)
    pd.testing.assert_frame_equal(ls.scaling_sweep(steps=2, **settings),
                                  _sweep_one_optimizer_at_a_time(steps=2, **settings), check_exact=True)


def _decay_one_optimizer_at_a_time(weight_decay, *, lr, eps, seed):
    from core import loss_scaling_decay as decay

    scales_t = torch.tensor((1.0, *decay.DECAY_SCALES))
    rows = []
    for name in decay.DECAY_OPTIMIZERS:
        model, x, y = ls.reference_problem(seed)
        copies = ls._Copies(model, len(scales_t))
        opt = ls.make_optimizer(name, copies.parameters(), lr=lr, eps=eps, weight_decay=weight_decay)
        start = copies.flat()
        for _ in range(decay.DECAY_STEPS):
            opt.zero_grad()
            (scales_t * ((copies(x) - y) ** 2).mean(dim=(1, 2))).sum().backward()
            opt.step()
        moved = torch.linalg.vector_norm((copies.flat() - start).double(), dim=1)
        ratio = (moved / moved[0]).tolist()
        rows += [{"optimizer": name, "scale": s, "update_ratio": ratio[i + 1]}
                 for i, s in enumerate(decay.DECAY_SCALES)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("weight_decay", "lr", "eps", "seed"), [(0.1, 0.1, 1e-8, 0), (0.5, 1.0, 1e-3, 2)])
def test_the_decay_sweeps_shared_pass_changes_no_number(weight_decay, lr, eps, seed):
    """The four decay optimizers share each forward and backward pass: bit for bit their separate runs."""
    from core import loss_scaling_decay as decay

    pd.testing.assert_frame_equal(decay.decay_sweep(weight_decay, lr=lr, eps=eps, seed=seed),
                                  _decay_one_optimizer_at_a_time(weight_decay, lr=lr, eps=eps, seed=seed),
                                  check_exact=True)


def _grad_scaler_from_scratch(growth_interval, steps, seed):
    """The GradScaler loop in full, inf/NaN found by looking at every gradient."""
    from core.data import classification_data, mlp

    model = mlp((32, 64, 64, 10), nn.ReLU, seed=seed)
    x, y = classification_data(32 * steps, 32, 10, seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16, growth_interval=growth_interval)
    rows = []
    for step, (xb, yb) in enumerate(zip(x.split(32), y.split(32)), start=1):
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            logits = model(xb)
        loss = nn.CrossEntropyLoss()(logits.float(), yb)
        scale = scaler.get_scale()
        scaler.scale(loss).backward()
        found_inf = not all(torch.isfinite(p.grad).all() for p in model.parameters())
        scaler.step(optimizer)
        scaler.update()
        rows.append({"step": step, "scale": scale, "skipped": found_inf, "loss": loss.item()})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("growth_interval", [1, 3, 17, 39, 40, 100])
def test_grad_scaler_run_continued_from_the_steady_run_is_the_full_run(growth_interval):
    """grad_scaler_run starts from the run whose scale never grows and continues it from the first growth."""
    steps = 40
    pd.testing.assert_frame_equal(ls.grad_scaler_run(growth_interval=growth_interval, steps=steps, seed=1),
                                  _grad_scaler_from_scratch(growth_interval, steps, 1), check_exact=True)


def test_the_unclipped_route_is_the_same_at_every_max_norm():
    from core import loss_scaling_amp as amp

    for max_norm in (1e-3, 1.0, 1e3):
        separate = [amp.clipping_run(max_norm, route=r, seed=1) for r in amp.ROUTES]
        pd.testing.assert_frame_equal(amp.clipping_routes(max_norm, seed=1), pd.concat(separate, ignore_index=True),
                                      check_exact=True)
