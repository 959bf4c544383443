"""The reduction page's facts, each against an independent computation with a stated tolerance."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from torch import nn

import core.reduction as core
from core.controls import find
from core.data import classification_data
from tests.strategies import SEEDS, values_of

# float32 sums of a few hundred terms: relative rounding well below 1e-5.
RTOL32 = 1e-5


@pytest.mark.parametrize("batch_size", [1, 7, 32, 256])
def test_sum_gradient_is_exactly_b_times_the_mean_gradient(batch_size):
    ratio = core.gradient_norm("sum", batch_size, seed=3) / core.gradient_norm("mean", batch_size, seed=3)
    assert ratio == pytest.approx(batch_size, rel=RTOL32)


def test_gradient_norm_matches_a_float64_recomputation():
    # Second route: per-example gradients by hand-rolled autograd in float64, summed.
    model, x, y = core.reference_problem(5)
    model = model.double()
    model.zero_grad()
    ((model(x[:40].double()) - y[:40].double()) ** 2).sum().backward()
    expected = torch.linalg.vector_norm(core.flat_grad(model)).item()
    assert core.gradient_norm("sum", 40, seed=5) == pytest.approx(expected, rel=RTOL32)


def test_unknown_names_raise_and_list_the_valid_ones():
    with pytest.raises(ValueError, match="mean, sum"):
        core.gradient_norm("none", 8)
    with pytest.raises(ValueError, match="mean_of_batch_means, weighted"):
        core.epoch_loss([1.0, 2.0], 1, "true")
    with pytest.raises(ValueError, match="sgd, adam"):
        core.make_optimizer("lbfgs", [torch.zeros(1, requires_grad=True)], 0.1)
    with pytest.raises(ValueError):
        core.gradient_norm("mean", 0)


def test_per_sample_gradients_match_the_closed_form_of_a_linear_model():
    # y_hat = w.x + b, loss (y_hat - y)^2: d/dw = 2 (y_hat - y) x, d/db = 2 (y_hat - y), in float64.
    gen = torch.Generator().manual_seed(1)
    model = core.mlp((3, 1), seed=1).double()  # one nn.Linear, seeded without the global RNG
    x, y = torch.randn(9, 3, generator=gen, dtype=torch.float64), torch.randn(9, 1, generator=gen, dtype=torch.float64)
    residual = (model(x) - y).detach()  # (B, 1)
    expected = torch.cat([2 * residual * x, 2 * residual], dim=1)  # (B, 4): weight then bias, parameters() order
    got = core.per_sample_gradients(model, nn.MSELoss(), x, y)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_per_sample_gradients_equal_the_loop_and_average_to_the_mean_gradient():
    model, x, y = core.reference_problem(2)
    x, y = x[:50], y[:50]
    fast = core.per_sample_gradients(model, nn.MSELoss(), x, y)
    slow = core.per_sample_gradients_loop(model, nn.MSELoss(), x, y)
    assert fast.shape == (50, sum(p.numel() for p in model.parameters()))
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    model.zero_grad()
    nn.MSELoss()(model(x), y).backward()
    torch.testing.assert_close(fast.mean(dim=0), core.flat_grad(model), rtol=1e-5, atol=1e-6)


def test_per_sample_experiment():
    result = core.per_sample(48, seed=4)
    assert result.loop_gap < 1e-6  # float32 rounding between two routes to the same numbers
    # Accumulating per-example backward() calls gives the 'sum' gradient: B times the mean's, not a new one.
    assert result.accumulated_gap < 1e-5
    assert result.batch_norm == pytest.approx(core.gradient_norm("mean", 48, seed=4), rel=RTOL32)
    model, x, y = core.reference_problem(4)
    loop = core.per_sample_gradients_loop(model, nn.MSELoss(), x[:48], y[:48]).double()
    assert result.mean_norm == pytest.approx(torch.linalg.vector_norm(loop, dim=1).mean().item(), rel=RTOL32)
    np.testing.assert_allclose(result.norms.norm, torch.linalg.vector_norm(loop, dim=1).numpy(), rtol=1e-5)


def test_epoch_loss_on_hand_made_numbers():
    losses = [1.0, 2.0, 3.0, 4.0, 10.0]  # batches of 2: [1, 2], [3, 4], [10] with means 1.5, 3.5, 10
    assert core.epoch_loss(losses, 2, "mean_of_batch_means") == pytest.approx((1.5 + 3.5 + 10) / 3, abs=1e-12)
    assert core.epoch_loss(losses, 2, "weighted") == pytest.approx(20 / 5, abs=1e-12)
    assert core.epoch_loss(losses, 5, "mean_of_batch_means") == pytest.approx(4.0, abs=1e-12)  # one batch
    assert core.epoch_loss(torch.tensor(losses), 99, "weighted") == pytest.approx(4.0, abs=1e-12)


@pytest.mark.parametrize(("n", "b"), [(100, 32), (64, 32), (7, 30), (1, 1), (300, 128)])
def test_short_batch(n, b):
    result = core.short_batch(n, b, seed=1)
    df = result.examples
    losses = df.loss.to_numpy(dtype=np.float64)
    assert result.true_mean == pytest.approx(losses.mean(), rel=1e-6)
    assert result.weighted == pytest.approx(losses.mean(), rel=1e-6)  # float(l) * len(y) summed / N: the true mean
    means = [losses[i : i + b].mean() for i in range(0, n, b)]
    assert result.mean_of_batch_means == pytest.approx(np.mean(means), rel=1e-6)
    assert result.last_len == n - b * (math.ceil(n / b) - 1)
    full = min(n, b)
    np.testing.assert_allclose(df.relative, full / df.batch_len, rtol=1e-12)  # the short batch weighs B / b more
    np.testing.assert_allclose(df.groupby("batch").weight.sum(), 1.0, rtol=1e-12)  # each step averages its batch


def test_d2l_updater_matches_torch_optim_sgd_on_the_mean_loss():
    # One step by hand against torch.optim.SGD from the same start.
    model_a, x, y = core.reference_problem(6)
    model_b, _, _ = core.reference_problem(6)
    nn.MSELoss(reduction="none")(model_a(x[:20]), y[:20]).sum().backward()
    core.d2l_sgd(model_a.parameters(), 0.1, 20)
    opt = torch.optim.SGD(model_b.parameters(), lr=0.1)
    nn.MSELoss()(model_b(x[:20]), y[:20]).backward()
    opt.step()
    torch.testing.assert_close(core.flat_params(model_a), core.flat_params(model_b), rtol=1e-6, atol=1e-7)
    assert all(torch.count_nonzero(p.grad) == 0 for p in model_a.parameters())  # the updater clears the grads


@pytest.mark.parametrize(("n", "b"), [(100, 32), (10, 3), (5, 64)])
def test_d2l_routes_agree_over_epochs_with_a_short_batch(n, b):
    routes = core.d2l_routes(n, b, lr=0.05, seed=2)
    assert routes.gap_d2l < 1e-5
    assert routes.gap_none_mean < 1e-5
    assert routes.loss_gap < 1e-6
    assert not routes.diverged


def test_d2l_routes_flag_a_divergence_instead_of_reporting_a_gap():
    routes = core.d2l_routes(37, 5, lr=0.5, seed=0)  # 24 steps at lr 0.5 on 37 examples: the loss explodes
    assert routes.diverged


def test_training_sum_steps_b_times_further_and_at_lr_over_b_is_the_mean_run():
    b = 16
    runs = core.train_runs(b, lr=0.01, steps=20, seed=1)
    assert runs.step_ratio == pytest.approx(b, rel=1e-4)
    assert runs.sgd_gap < 1e-5
    curves = runs.curves.pivot(index="step", columns="run", values="loss")
    np.testing.assert_allclose(curves["SGD, sum, lr / B"], curves["SGD, mean, lr"], rtol=1e-4)
    assert runs.adam_gap < 1e-4


def test_adam_on_the_sum_is_adam_on_the_mean_with_eps_over_b():
    # A second route: m and sqrt(v) both carry the factor B, eps does not.
    b, lr, steps = 32, 0.05, 30
    runs = core.train_runs(b, lr=lr, steps=steps, seed=0)
    model, x, y = core.reference_problem(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-8 / b)
    losses = [nn.functional.mse_loss(model(x), y).item()]
    for batch in core.batch_indices(steps, b, core.N_POOL, seed=0):
        opt.zero_grad()
        nn.MSELoss()(model(x[batch]), y[batch]).backward()
        opt.step()
        losses.append(nn.functional.mse_loss(model(x), y).item())
    got = runs.curves[runs.curves.run == "Adam, sum, lr"].loss.to_numpy()
    np.testing.assert_allclose(got, losses, rtol=1e-4)


def test_at_batch_size_one_sum_and_mean_are_the_same_run():
    runs = core.train_runs(1, lr=0.05, steps=10, seed=0)
    curves = runs.curves.pivot(index="step", columns="run", values="loss")
    np.testing.assert_array_equal(curves["SGD, sum, lr"], curves["SGD, mean, lr"])
    assert runs.step_ratio == 1.0


def test_a_diverging_run_is_recorded_not_raised():
    runs = core.train_runs(256, lr=0.5, steps=40, seed=0)
    assert "SGD, sum, lr" in runs.diverged
    assert len(runs.curves) == 5 * 41  # every run keeps a row per step, NaN after the break


def test_norm_sweep():
    sweep = core.norm_sweep(seed=0)
    norms = sweep.norms.set_index(["batch_size", "reduction"])
    for b in core.SWEEP_BATCHES:
        assert norms.loc[(b, "mean"), "first"] == pytest.approx(core.gradient_norm("mean", b, seed=0), rel=RTOL32)
        for column in ("lo", "median", "hi"):  # same draws: the sum is B times the mean, quantile by quantile
            assert norms.loc[(b, "sum"), column] == pytest.approx(b * norms.loc[(b, "mean"), column], rel=1e-9)
    # Closed form: with replacement, E||g_B - g||^2 = tr(Sigma) / B; tr(Sigma) recomputed in float64 from the loop.
    model, x, y = core.reference_problem(0)
    g = core.per_sample_gradients_loop(model, nn.MSELoss(), x, y).double()
    trace = ((g - g.mean(dim=0)) ** 2).sum(dim=1).mean().item()
    spread = sweep.spread.set_index("batch_size")
    for b in core.SWEEP_BATCHES:
        assert spread.loc[b, "closed_form"] == pytest.approx(math.sqrt(trace / b), rel=1e-5)
        # 128 draws of a squared norm: its mean is within ~15% of its expectation; the root within ~8%.
        assert spread.loc[b, "spread"] == pytest.approx(math.sqrt(trace / b), rel=0.12)
    assert sweep.full_norm == pytest.approx(torch.linalg.vector_norm(g.mean(dim=0)).item(), rel=1e-5)


def test_class_weights_mean_divides_by_the_sum_of_the_targets_weights():
    result = core.class_weights(5.0, seed=0)
    df = result.examples
    # Independent float64 recomputation: log-softmax by hand.
    x, y = classification_data(12, core.N_FEATURES, 3, seed=0)
    logits = core.mlp((core.N_FEATURES, 3), seed=0).double()(x.double()).detach()
    nll = -(logits - logits.exp().sum(dim=1, keepdim=True).log())[torch.arange(12), y]  # (N,)
    w = torch.ones(3, dtype=torch.float64)
    w[result.rare] = 5.0
    expected = (w[y] * nll).sum() / w[y].sum()
    assert result.library_mean == pytest.approx(expected.item(), rel=1e-12)  # float64 throughout
    assert result.weight_sum == pytest.approx(w[y].sum().item(), rel=1e-12)
    assert result.total / result.weight_sum == pytest.approx(result.library_mean, rel=1e-12)
    assert result.total / len(df) != pytest.approx(result.library_mean, rel=1e-3)  # not the mean over N
    counts = np.bincount(df.target, minlength=3)
    assert counts[result.rare] == counts[counts > 0].min()


def test_class_weight_one_is_the_ordinary_mean():
    result = core.class_weights(1.0, seed=3)
    assert result.weight_sum == len(result.examples)
    assert result.library_mean == pytest.approx(result.total / len(result.examples), rel=1e-6)


def test_same_seed_same_numbers_other_seed_other_numbers():
    a, b, c = (core.train_runs(8, steps=10, seed=s) for s in (7, 7, 8))
    pd.testing.assert_frame_equal(a.curves, b.curves)
    assert not a.curves.equals(c.curves)
    pd.testing.assert_frame_equal(core.norm_sweep(seed=7).norms, core.norm_sweep(seed=7).norms)
    pd.testing.assert_frame_equal(core.short_batch(50, 16, seed=7).examples, core.short_batch(50, 16, seed=7).examples)
    assert core.per_sample(16, seed=7).norms.equals(core.per_sample(16, seed=7).norms)


def test_per_sample_times_both_routes():
    result = core.per_sample(8, seed=0)
    assert all(math.isfinite(v) and v > 0 for v in (result.vmap_ms, result.loop_ms))



@pytest.mark.parametrize("changes", [{}, {"lr": 0.5, "batch_size": 256, "n_examples": 97, "sample_batch": 2}])
def test_every_figure_has_tooltips_and_only_finite_data(changes):
    from core.charts.reduction import FIGURES
    from core.controls import defaults
    from core.figures import render
    from tests.helpers import _numbers, walk_marks

    settings = {**defaults(core.CONTROLS), "seed": 0, **changes}
    for name, figure in FIGURES.items():
        _, chart = render(figure, settings)
        spec = chart.to_dict()
        for unit in walk_marks(spec):
            assert "tooltip" in unit.get("encoding", {}), (name, unit["mark"])
        assert all(math.isfinite(v) for v in _numbers(spec)), name  # inline values
        for rows in spec.get("datasets", {}).values():  # Altair turns NaN and inf into null: none may remain
            assert all(v is not None for row in rows for v in row.values()), name
    if changes:  # the diverging setting really did hand the figure non-finite losses to drop
        curves = FIGURES["training"].data(batch_size=256, lr=0.5, steps=50, seed=0)
        assert not np.isfinite(curves.loss).all()


# --- The figure's fast routes: the same numbers as the plain loop --------------------------------------------------

def _same_runs(ours: core.TrainRuns, theirs: core.TrainRuns) -> None:
    pd.testing.assert_frame_equal(ours.curves, theirs.curves, check_exact=True)
    assert ours.step_ratio == theirs.step_ratio and ours.diverged == theirs.diverged
    np.testing.assert_array_equal([ours.sgd_gap, ours.adam_gap], [theirs.sgd_gap, theirs.adam_gap])
    np.testing.assert_array_equal(ours.sgd_gaps + ours.adam_gaps, theirs.sgd_gaps + theirs.adam_gaps)


@hsettings(max_examples=8)
@given(values_of(find(core.CONTROLS, "batch_size")), values_of(find(core.CONTROLS, "lr")), st.integers(1, 40),
       st.integers(0, 39), st.sampled_from(SEEDS))
def test_a_shorter_training_run_is_read_off_a_longer_one_bit_for_bit(batch_size, lr, steps, fewer, seed):
    # `steps` only lengthens the runs (the batches come from one shuffled stream), so the figure keeps the longest
    # run made at a batch size, lr and seed and reads a shorter one off it: exact, diverged runs included.
    from core.charts.reduction import train_runs

    shorter = max(1, steps - fewer)
    longer = train_runs(batch_size, lr=lr, steps=steps, seed=seed)
    _same_runs(longer, core.train_runs(batch_size, lr=lr, steps=steps, seed=seed))
    _same_runs(train_runs(batch_size, lr=lr, steps=shorter, seed=seed),
               core.train_runs(batch_size, lr=lr, steps=shorter, seed=seed))


def test_the_longest_run_store_keeps_the_newest_runs_and_clear_caches_empties_it():
    from core import clear_caches
    from core.charts.reduction import _Longest, train_runs

    store = _Longest(size=2)
    for batch_size in (1, 2, 4):
        store(batch_size, lr=0.05, steps=3, seed=0)
    store(2, lr=0.05, steps=2, seed=0)  # read off the kept run: batch size 2 is now the newest
    assert [key[0] for key in store._held] == [4, 2]
    assert len(store._held[(2, 0.05, 0)].sgd_gaps) > 3  # the longer run is the one kept
    train_runs(8, lr=0.05, steps=2, seed=0)
    clear_caches()
    assert not train_runs._held


@hsettings(max_examples=6)
@given(values_of(find(core.CONTROLS, "batch_size")), values_of(find(core.CONTROLS, "lr")), st.integers(1, 30),
       st.sampled_from(SEEDS), st.sampled_from(list(core.RUNS)))
def test_train_runs_is_each_run_built_afresh_bit_for_bit(batch_size, lr, steps, seed, run):
    # train_runs copies one start for every run and draws each step's batch once for all five; the plain loop
    # builds each run from its seed. The same operations on the same numbers: exact.
    name, reduction, scaled = core.RUNS[run]
    model, x, y = core.reference_problem(seed)
    opt = core.make_optimizer(name, model.parameters(), lr / batch_size if scaled else lr)
    losses = [nn.functional.mse_loss(model(x), y).item()]
    for batch in core.batch_indices(steps, batch_size, core.N_POOL, seed=seed):
        opt.zero_grad()
        nn.MSELoss(reduction=reduction)(model(x[batch]), y[batch]).backward()
        opt.step()
        with torch.no_grad():
            losses.append(nn.functional.mse_loss(model(x), y).item())
    got = core.train_runs(batch_size, lr=lr, steps=steps, seed=seed).curves.query("run == @run").loss.to_numpy()
    broke = np.flatnonzero(~np.isfinite(losses))
    end = broke[0] + 1 if len(broke) else len(losses)  # after the first non-finite loss the figure holds NaN
    np.testing.assert_array_equal(got[:end], losses[:end])
    assert np.isnan(got[end:]).all()
