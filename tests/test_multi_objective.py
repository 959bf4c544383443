"""The multi-objective page's facts, each against an independent computation with a stated tolerance."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import core.multi_objective as core
from core import multi_objective_balance as balance
from tests.strategies import SEEDS

# --- 1. The learner's loop ---------------------------------------------------------------------------------------

def test_detached_loss2_changes_nothing_bit_for_bit():
    # Adding a tensor that carries no gradient leaves every gradient, and so every Adam step, unchanged: exact.
    for seed in (0, 3):
        plain = core.seed_example("loss1_only", steps=80, seed=seed)
        detached = core.seed_example("detached", steps=80, seed=seed)
        pd.testing.assert_frame_equal(plain, detached, check_exact=True)


def test_only_the_torch_tensor_route_cuts_the_graph():
    assert core.loss2_requires_grad(0) == {"torch.tensor": False, "torch.stack": True, "sum()": True}


def test_loss2_is_the_sum_of_every_parameter():
    # Recorded loss2 at step 0 against a float64 sum of the freshly built model's parameters (float32 sum: 1e-5).
    model, _ = core.seed_setup(2)
    expected = sum(p.detach().double().sum().item() for p in model.parameters())
    for variant in core.VARIANTS:
        assert core.seed_example(variant, steps=1, seed=2).loss2.iloc[0] == pytest.approx(expected, abs=1e-5)


def test_loss1_is_the_squared_gap_to_five():
    model, features = core.seed_setup(1)
    out = model(features).detach().double().sum().item()
    assert core.seed_example("loss1_only", steps=1, seed=1).loss1.iloc[0] == pytest.approx((5 - out) ** 2, rel=1e-5)


@pytest.mark.parametrize("alpha", [1e-3, 1.0, 1e3])  # the control's ends and its default
def test_maximised_loss2_is_still_climbing_at_the_end(alpha):
    runs = pd.concat([core.seed_example(v, steps=core.SEED_STEPS, alpha=alpha).assign(variant=v)
                      for v in core.VARIANTS])
    facts = core.seed_summary(runs)
    assert facts["slope_maximize"] > 1e-3  # still rising per step over the last tenth of the run
    assert facts["loss2_maximize"] > facts["loss2_start"] + 5
    assert facts["gap"] == 0.0


def test_loss1_pays_at_the_default_alpha_and_the_bounded_term_levels_off():
    runs = pd.concat([core.seed_example(v, steps=core.SEED_STEPS, alpha=1.0).assign(variant=v)
                      for v in core.VARIANTS])
    facts = core.seed_summary(runs)
    assert facts["pays"] and facts["loss1_maximize"] > 10 * facts["loss1_loss1_only"] + 1e-3
    assert abs(facts["slope_bounded"]) < facts["slope_maximize"] / 10
    assert abs(facts["slope_loss1_only"]) < 1e-3  # loss1 alone has converged: its weights stand still


def test_at_a_small_alpha_loss1_does_not_visibly_pay():
    runs = pd.concat([core.seed_example(v, steps=core.SEED_STEPS, alpha=1e-3).assign(variant=v)
                      for v in core.VARIANTS])
    facts = core.seed_summary(runs)
    assert not facts["pays"] and facts["slope_maximize"] > 0  # the page's "seed_free" reading: loss2 still climbs


def test_seed_summary_against_a_hand_computation():
    steps = np.arange(20)
    frames = [pd.DataFrame({"step": steps, "loss1": np.full(20, v + 1.0), "loss2": 0.5 * steps * (v == 2),
                            "variant": name}) for v, name in enumerate(core.VARIANTS)]
    facts = core.seed_summary(pd.concat(frames))
    assert facts["gap"] == 1.0  # loss1_only = 1, detached = 2
    assert facts["slope_maximize"] == pytest.approx(0.5, rel=1e-12)
    assert facts["loss1_bounded"] == 4.0


@pytest.mark.parametrize("alpha", [1.0, 1e3])
def test_maximize_flag_is_the_minus_sign(alpha):
    # Negation is exact in floating point and Adam(maximize=True) negates the gradient: the runs are identical.
    assert core.maximize_flag_gap(steps=30, alpha=alpha, seed=1) == 0.0


def test_unknown_variant_names_the_valid_ones():
    with pytest.raises(ValueError, match="loss1_only, detached, maximize, bounded"):
        core.seed_example("minimise")


def test_seed_example_is_deterministic():
    a, b = core.seed_example("maximize", steps=40, seed=5), core.seed_example("maximize", steps=40, seed=5)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not np.allclose(a.loss1, core.seed_example("maximize", steps=40, seed=6).loss1)


# --- 2. The trade-off curve --------------------------------------------------------------------------------------

def _svd_ridge(alpha: float, seed: int = 0) -> tuple[float, float]:
    """The ridge minimiser through the SVD of X, in numpy float64: a second route to tradeoff_curve."""
    x, y = (t.numpy() for t in core.ridge_problem(seed))
    n = len(x)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    w = vt.T @ (s / (s**2 + n * alpha) * (u.T @ y))
    return float(np.mean((x @ w - y) ** 2)), float(w @ w)


def test_tradeoff_curve_matches_the_svd_closed_form():
    alphas = [0.0, 1e-4, 0.3, 1.0, 17.0, 1e3]
    curve = core.tradeoff_curve(alphas, seed=0)
    for row in curve.itertuples():
        loss1, loss2 = _svd_ridge(row.alpha)
        assert row.loss1 == pytest.approx(loss1, rel=1e-10)
        assert row.loss2 == pytest.approx(loss2, rel=1e-9)


def test_tradeoff_curve_is_monotone_in_alpha():
    # Along the curve no point is better on both objectives: loss1 rises and loss2 falls as alpha grows.
    curve = core.tradeoff_curve(10.0 ** np.arange(-6, 6.01, 0.25), seed=4)
    assert np.all(np.diff(curve.loss1) >= -1e-12) and np.all(np.diff(curve.loss2) <= 1e-12)
    assert curve.loss1.iloc[-1] > 10 * curve.loss1.iloc[0] and curve.loss2.iloc[-1] < 1e-6 * curve.loss2.iloc[0]


def test_tradeoff_curve_rejects_negative_alphas():
    with pytest.raises(ValueError, match=">= 0"):
        core.tradeoff_curve([1.0, -0.5])


def test_knee_halves_loss2_and_moves_with_the_scale():
    knee = core.knee_alpha(1.0)
    base = core.tradeoff_curve([0.0, knee]).loss2.to_numpy()
    assert base[1] == pytest.approx(base[0] / 2, rel=0.01)  # interpolated on 20 points per decade
    for scale in (1e-4, 1e3):
        assert core.knee_alpha(scale) * scale == pytest.approx(knee, rel=1e-12)


def test_sgd_limit_is_where_sgd_starts_to_diverge():
    x, _ = (t.numpy() for t in core.ridge_problem(0))
    lam_max = np.linalg.eigvalsh(x.T @ x / len(x))[-1]
    for scale in (1.0, 100.0):
        limit = core.sgd_alpha_limit(scale)
        assert limit == pytest.approx((1 / core.SGD_LR - lam_max) / scale, rel=1e-12)
        runs = core.train_tradeoff([0.95 * limit, 1.05 * limit], optimizer="sgd", scale=scale)
        start = float(np.mean(core.ridge_problem(0)[1].numpy() ** 2))
        assert runs.loss1.iloc[0] < start  # converging below the limit
        assert not runs.loss1.iloc[1] < 1e6  # past it: huge, inf or NaN
    assert core.sgd_alpha_limit(1.0) / core.knee_alpha(1.0) == pytest.approx(
        core.sgd_alpha_limit(1e4) / core.knee_alpha(1e4), rel=1e-12)


def test_trained_runs_land_on_the_exact_curve_and_follow_the_scale():
    for scale in (1.0, 100.0):
        sweep = core.tradeoff_sweep(scale=scale, alphas=core.SWEEP_ALPHAS[::4])
        exact = sweep[sweep.run == "exact"].set_index("alpha").loss1
        adam = sweep[sweep.run == "adam"].set_index("alpha").loss1
        sgd = sweep[sweep.run == "sgd"].set_index("alpha").loss1
        assert np.allclose(adam, exact, rtol=1e-3)  # Adam follows the optimum of alpha * scale everywhere
        stable = sgd.index < core.sgd_alpha_limit(scale)
        assert np.allclose(sgd[stable], exact[stable], rtol=1e-4)
        # a factor on loss2 is a relabelling of alpha: the exact run is the unscaled curve at alpha * scale
        again = core.tradeoff_curve(exact.index.to_numpy() * scale).loss1.to_numpy()
        assert np.allclose(exact.to_numpy(), again, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 5])
def test_a_factor_on_the_whole_loss_moves_sgd_not_adam(seed):
    big, small = (core.overall_scale_gap(f, seed=seed) for f in core.OVERALL_FACTORS)
    assert big.adam_gap < 1e-4 and small.adam_gap < 1e-4
    assert not math.isfinite(big.sgd_gap)  # lr x 1000: lr * curvature is far past 2 for any data
    start = float(np.mean(core.ridge_problem(seed)[1].numpy() ** 2))  # loss1 at w = 0
    shrunk = core.train_tradeoff([1.0], optimizer="sgd", overall=core.OVERALL_FACTORS[1], steps=core.OVERALL_STEPS,
                                 seed=seed)
    assert shrunk.loss1.iloc[0] > 0.9 * start  # "having barely left its start"
    assert small.sgd_gap > 0.1


def test_for_sgd_a_factor_on_the_loss_is_a_factor_on_the_learning_rate():
    # One torch.optim.SGD step on c * loss at lr against one on loss at c * lr: equal up to float32 rounding.
    x, y = (t.float() for t in core.ridge_problem(0))
    c, finals = 37.0, []
    for factor, lr in ((c, core.SGD_LR), (1.0, c * core.SGD_LR)):
        w = torch.zeros(x.shape[1], requires_grad=True)
        opt = torch.optim.SGD([w], lr=lr)
        (factor * ((x @ w - y) ** 2).mean()).backward()
        opt.step()
        finals.append(w.detach())
    assert torch.allclose(finals[0], finals[1], rtol=1e-5)


def test_tradeoff_sweep_is_deterministic():
    a, b = core.tradeoff_sweep(scale=10.0, seed=3), core.tradeoff_sweep(scale=10.0, seed=3)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_unknown_optimizer_names_the_valid_ones():
    with pytest.raises(ValueError, match="adam, sgd"):
        core.train_tradeoff([1.0], optimizer="lbfgs")


# --- 3 and 4. Two tasks on one shared model ------------------------------------------------------------------------

def _pairs(n: int = 200, p: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    g1 = torch.randn(n, p, generator=gen, dtype=torch.float64)
    g2 = torch.randn(n, p, generator=gen, dtype=torch.float64) * torch.logspace(-3, 3, n, dtype=torch.float64)[:, None]
    return g1, g2


def test_pcgrad_projected_gradients_no_longer_conflict():
    g1, g2 = _pairs()
    p1, p2 = balance.pcgrad(g1, g2)
    dot = (g1 * g2).sum(-1)
    assert (dot < 0).any() and (dot > 0).any()
    scale = g1.norm(dim=-1) * g2.norm(dim=-1)
    assert torch.all((p1 * g2).sum(-1) >= -1e-12 * scale) and torch.all((p2 * g1).sum(-1) >= -1e-12 * scale)
    conflict = dot < 0
    assert torch.allclose((p1 * g2).sum(-1)[conflict], torch.zeros(1, dtype=torch.float64), atol=1e-9)
    assert torch.equal(p1[~conflict], g1[~conflict]) and torch.equal(p2[~conflict], g2[~conflict])
    d = p1 + p2  # the PCGrad update lowers neither task's loss less than nothing: d . g_t >= 0
    assert torch.all((d * g1).sum(-1) >= -1e-12 * scale) and torch.all((d * g2).sum(-1) >= -1e-12 * scale)


def test_pcgrad_matches_the_paper_formula_in_numpy():
    g1, g2 = _pairs(50, seed=1)
    p1, _ = balance.pcgrad(g1.float(), g2.float())
    for a, b, got in zip(g1.numpy(), g2.numpy(), p1.numpy()):
        want = a - min(a @ b, 0.0) / (b @ b) * b  # Yu et al. 2020, Algorithm 1, for two tasks
        assert np.allclose(got, want, rtol=1e-4, atol=1e-6 * np.linalg.norm(a))


def test_mgda_direction_is_the_minimum_norm_point_of_the_segment():
    g1, g2 = _pairs(100, seed=2)
    d, gamma = balance.mgda(g1, g2)
    grid = torch.linspace(0, 1, 20001, dtype=torch.float64)[:, None, None]  # (G, 1, 1)
    best = (grid * g1 + (1 - grid) * g2).norm(dim=-1).min(dim=0).values  # brute force over the segment
    assert torch.all(d.norm(dim=-1) <= best * (1 + 1e-9))
    assert torch.all((gamma >= 0) & (gamma <= 1))
    # the min-norm point d satisfies d . g_t >= |d|^2 for both tasks, with equality inside the segment
    dd = (d * d).sum(-1)
    tol = 1e-9 * g1.norm(dim=-1) * g2.norm(dim=-1)
    assert torch.all((d * g1).sum(-1) >= dd - tol) and torch.all((d * g2).sum(-1) >= dd - tol)
    inside = ((gamma > 0) & (gamma < 1))[:, 0]
    assert torch.allclose((d * g1).sum(-1)[inside], dd[inside], rtol=1e-9, atol=1e-12)


def test_mgda_of_equal_gradients_is_that_gradient():
    g = torch.tensor([[1.0, -2.0, 0.5]])
    assert torch.equal(balance.mgda(g, g)[0], g)


def test_gradient_norms_and_cosine_match_the_closed_form_at_the_start():
    # At w = 0 the gradient of mean((x w - y)^2) is -2 x^T y / n, in float64 with numpy.
    x, y = (t.double().numpy() for t in balance.task_problem(0))
    g1, g2 = -2 * x.T @ y[0] / len(x), -2 * x.T @ y[1] / len(x)
    first = balance.balance_run(mismatch=1e3, steps=1, methods=("fixed",)).iloc[0]
    assert first.norm1 == pytest.approx(np.linalg.norm(g1), rel=1e-5)
    assert first.norm2 == pytest.approx(1e3 * np.linalg.norm(g2), rel=1e-5)
    assert first.cosine == pytest.approx(g1 @ g2 / np.linalg.norm(g1) / np.linalg.norm(g2), abs=1e-5)
    assert first.loss1 == pytest.approx(np.mean(y[0] ** 2), rel=1e-5)


def test_each_method_row_is_an_independent_run():
    everything = balance.balance_run(steps=40)
    for method in ("pcgrad", "uncertainty"):
        alone = balance.balance_run(steps=40, methods=(method,))
        row = everything[everything.method == method].reset_index(drop=True)
        assert np.allclose(row[["loss1", "loss2"]], alone[["loss1", "loss2"]], rtol=1e-5)


def _closed_form_weighted(weight2: float, seed: int = 0) -> tuple[float, float]:
    """Both losses at the minimiser of L1 + weight2 * L2 (float64 least squares on the stacked system)."""
    x, y = (t.double().numpy() for t in balance.task_problem(seed))
    w = np.linalg.solve(x.T @ x * (1 + weight2), x.T @ (y[0] + weight2 * y[1]))
    return float(np.mean((x @ w - y[0]) ** 2)), float(np.mean((x @ w - y[1]) ** 2))


def test_fixed_weighting_settles_where_the_pulls_cancel():
    runs = balance.balance_run(mismatch=1e3, alpha=1.0, methods=("fixed",))
    facts = balance.balance_summary(runs, 1e3, 1.0)
    assert facts["cos_end"] < -0.99 and abs(math.log(facts["pull_end"])) < math.log(1.1)
    assert facts["cos_start"] > 0 and facts["conflict_from"] > 0  # seed 0: they agree first, then conflict
    loss1, loss2 = _closed_form_weighted(1e3)
    assert facts["fixed_loss1"] == pytest.approx(loss1, rel=0.01)
    assert facts["fixed_loss2"] == pytest.approx(loss2, rel=0.01)


def test_the_gradient_ratio_is_the_mismatch_factor():
    ratios = [balance.balance_summary(balance.balance_run(mismatch=m, steps=1, methods=("fixed",)), m, 1.0)
              ["ratio_start"] for m in (1.0, 1e3)]
    assert ratios[1] / ratios[0] == pytest.approx(1e3, rel=1e-5)


@pytest.mark.parametrize("optimizer", balance.OPTIMIZERS)
def test_initial_and_unit_norm_ignore_the_mismatch_fixed_and_pcgrad_do_not(optimizer):
    ends = {}
    for m in (1.0, 1e3):
        runs = balance.balance_run(mismatch=m, optimizer=optimizer)
        ends[m] = balance.balance_summary(runs, m, 1.0)
    for method in ("initial", "unit_norm"):
        for loss in ("loss1", "loss2"):
            assert ends[1e3][f"{method}_{loss}"] == pytest.approx(ends[1.0][f"{method}_{loss}"], rel=1e-3)
    for method in ("fixed", "pcgrad"):  # changed by more than 10%, or diverged
        assert not abs(ends[1e3][f"{method}_loss1"] / ends[1.0][f"{method}_loss1"] - 1) < 0.1


def test_the_runs_end_on_the_true_trade_off():
    front = balance.pareto_front(points=401)
    runs = balance.balance_run(mismatch=1e3)
    last = runs[runs.step == runs.step.max()]
    for row in last[last.method != "uncertainty"].itertuples():  # uncertainty is still travelling at 200 steps
        # distance to the front, in log space: the nearest front point matches both losses within 1%
        gap = np.min(np.hypot(np.log(front.loss1 / row.loss1), np.log(front.loss2 / row.loss2)))
        assert gap < 0.01, row.method


def test_pareto_front_matches_weighted_least_squares():
    front = balance.pareto_front(points=5, seed=2)
    for row in front.itertuples():
        if 0 < row.lam < 1:
            loss1, loss2 = _closed_form_weighted((1 - row.lam) / row.lam, seed=2)
            assert row.loss1 == pytest.approx(loss1, rel=1e-9) and row.loss2 == pytest.approx(loss2, rel=1e-9)
    assert np.all(np.diff(front.loss1) < 0) and np.all(np.diff(front.loss2) > 0)


def test_mgda_leans_to_the_task_with_the_smaller_gradient():
    big2 = balance.balance_summary(balance.balance_run(mismatch=1e3), 1e3, 1.0)  # task 2's gradient is larger
    big1 = balance.balance_summary(balance.balance_run(mismatch=1e-3), 1e-3, 1.0)  # task 1's gradient is larger
    assert big2["mgda_loss1"] < big2["unit_norm_loss1"] and big2["mgda_loss1"] < big2["fixed_loss1"]
    assert big1["mgda_loss2"] < big1["unit_norm_loss2"] and big1["mgda_loss2"] < big1["fixed_loss2"]


def test_uncertainty_weight_settles_at_the_ratio_of_the_losses():
    facts = balance.balance_summary(balance.balance_run(mismatch=1.0), 1.0, 1.0)
    assert facts["uncertainty_weight"] == pytest.approx(facts["uncertainty_target"], rel=0.05)
    assert facts["uncertainty_target"] < 1  # the noisy task 2 gets the smaller weight
    assert facts["uncertainty_loss1"] < facts["fixed_loss1"]  # and the better-fitted task 1 wins
    slow = balance.balance_summary(balance.balance_run(mismatch=1e3), 1e3, 1.0)  # the defaults: not there yet
    assert slow["uncertainty_weight"] > 10 * slow["uncertainty_target"]


def test_uncertainty_weighting_overshoots_with_sgd_at_a_large_mismatch():
    runs = balance.balance_run(mismatch=1e3, optimizer="sgd", steps=1, methods=("uncertainty",))
    assert runs.loss2.iloc[1] > 100 * runs.loss2.iloc[0]  # the first step, at equal weights, is far too long


def test_normalising_the_losses_leaves_the_gradients_unbalanced():
    x, y = (t.double().numpy() for t in balance.task_problem(0))
    norms = [np.linalg.norm(2 * x.T @ y[t] / len(x)) / np.mean(y[t] ** 2) for t in (0, 1)]
    for m in (1.0, 1e3):
        facts = balance.balance_summary(balance.balance_run(mismatch=m, steps=1, methods=("fixed",)), m, 1.0)
        assert facts["normalized_ratio"] == pytest.approx(norms[0] / norms[1], rel=1e-5)
    front = balance.pareto_front()
    assert front.loss2.min() > 0.5 * np.mean(y[1] ** 2)  # most of task 2's starting loss is noise


def test_balance_run_names_valid_methods_and_optimizers():
    with pytest.raises(ValueError, match="fixed, initial, unit_norm, uncertainty, pcgrad, mgda"):
        balance.balance_run(methods=("gradnorm",))
    with pytest.raises(ValueError, match="adam, sgd"):
        balance.balance_run(optimizer="rmsprop")


def test_balance_run_is_deterministic():
    a, b = balance.balance_run(steps=30, seed=7), balance.balance_run(steps=30, seed=7)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_the_words_quote_the_code_s_settings():
    from content import words

    w = words("multi_objective")
    tradeoff, tasks = w["experiments.tradeoff.intro"], w["experiments.conflict.intro"]
    assert f"{core.TRADEOFF_STEPS} steps" in tradeoff and f"lr {core.SGD_LR:g}" in tradeoff
    assert f"lr {core.ADAM_LR:g}" in tradeoff
    assert f"{core.N_FEATURES} weights on {core.N_EXAMPLES} examples" in tradeoff
    assert f"same {balance.N_EXAMPLES} inputs" in tasks and f"({balance.N_FEATURES} weights)" in tasks
    assert f"cosine {balance.OPTIMA_COSINE:g}" in tasks and balance.NOISE[1] > balance.NOISE[0]  # "task 2 is noisier"
    lrs = w["controls.optimizer.help"]
    assert all(f"{name} at lr {lr:g}" in lrs for name, lr in balance.LR.items())


@pytest.mark.parametrize(("mismatch", "optimizer", "conflict", "uncertainty"), [
    (1e3, "adam", "settled", "climbing"),  # the defaults: s_2 has ln(1000) to travel, at most ~lr per step
    (1.0, "adam", "settled", "settled"),  # no mismatch: everything converges within the run
    (1e3, "sgd", "diverged", "blown"),  # lr * curvature of 1000 * loss2 is far past 2, from the first step
])
def test_the_states_the_readings_choose_from(mismatch, optimizer, conflict, uncertainty):
    facts = balance.balance_summary(balance.balance_run(mismatch=mismatch, optimizer=optimizer), mismatch, 1.0)
    assert (facts["conflict_state"], facts["uncertainty_state"]) == (conflict, uncertainty)


@pytest.mark.parametrize(("cos", "norm2", "loss1", "state"), [
    ([0.5, -0.999], 1.0, 1.0, "settled"),
    ([0.5, -0.999], 1.5, 1.0, "pulling"),  # opposite, but the pulls do not cancel yet
    ([0.5, -0.5], 1.0, 1.0, "pulling"),
    ([-0.5, 0.2], 1.0, 1.0, "open"),
    ([0.5, float("nan")], float("nan"), float("nan"), "diverged"),
])
def test_conflict_state_on_hand_made_runs(cos, norm2, loss1, state):
    runs = pd.DataFrame({"method": "fixed", "step": [0, 1], "loss1": [2.0, loss1], "loss2": [2.0, 1.0],
                         "norm1": [1.0, 1.0], "norm2": [3.0, norm2], "cosine": cos, "weight2": 1.0})
    assert balance.balance_summary(runs, 1.0, 1.0)["conflict_state"] == state


# --- The fast routes the figures take: the same numbers as the plain loops, bit for bit ------------------------

@pytest.mark.parametrize("alpha", [1e-3, 1.0, 1e3])
def test_seed_examples_side_by_side_match_seed_example_bit_for_bit(alpha):
    runs = core.seed_examples(core.VARIANTS, steps=120, alpha=alpha, seed=3)
    assert list(runs) == list(core.VARIANTS)
    for variant, run in runs.items():
        pd.testing.assert_frame_equal(run, core.seed_example(variant, steps=120, alpha=alpha, seed=3), check_exact=True)


def test_seed_examples_rejects_unknown_variants():
    with pytest.raises(ValueError, match="loss1_only, detached"):
        core.seed_examples(("maximize", "minimise"))


def test_adam_update_is_torch_optim_adam_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(7, 9, generator=gen)
    grads = [torch.randn(7, 9, generator=gen) * 10.0 ** k for k in range(-3, 4)]
    ours = start.clone()
    exp_avg, exp_avg_sq = torch.zeros_like(ours), torch.zeros_like(ours)
    theirs = start.clone().requires_grad_()
    opt = torch.optim.Adam([theirs], lr=0.05)
    for step, grad in enumerate(grads, 1):
        core.adam_update(ours, grad, exp_avg, exp_avg_sq, step, lr=0.05)
        theirs.grad = grad.clone()
        opt.step()
    assert torch.equal(ours, theirs.detach())


@hsettings(max_examples=6)
@given(st.sampled_from([("loss1_only", "detached"), ("maximize", "bounded", "target"), ("target", "loss1_only"),
                        ("bounded",)]),
       st.integers(-3, 3), st.sampled_from(SEEDS), st.integers(1, 60))
def test_seed_examples_match_seed_example_bit_for_bit_at_any_setting(variants, alpha_exp, seed, steps):
    # The figures run the alpha-free pair and the three alpha variants as two groups; loss2's gradient is added
    # by hand in both (or not at all, when no loss reads it). Exact: every weight sees the same operations.
    runs = core.seed_examples(variants, steps=steps, alpha=10.0**alpha_exp, seed=seed)
    for variant in variants:
        alone = core.seed_example(variant, steps=steps, alpha=10.0**alpha_exp, seed=seed)
        pd.testing.assert_frame_equal(runs[variant], alone, check_exact=True)


@hsettings(max_examples=8)
@given(st.sampled_from(SEEDS), st.integers(-4, 4))
def test_the_tradeoff_figure_s_one_run_for_every_scale_is_tradeoff_sweep_at_each(seed, scale_exp):
    # The figure trains every scale the slider offers as rows of one run per optimizer and takes its scale's rows;
    # the plain route trains that scale alone. Each row is an independent run: the same bits here, and within
    # 1e-6 where a BLAS rounds a row differently in a taller matrix; diverged rows diverge in both.
    from core.charts.multi_objective import FIGURES

    scale = 10.0**scale_exp
    limit = core.sgd_alpha_limit(scale, seed=seed)
    edge = core.tradeoff_curve([limit * scale], seed=seed).assign(alpha=limit, run="sgd limit")
    plain = pd.concat([core.tradeoff_sweep(scale=scale, seed=seed), edge], ignore_index=True)
    figure = FIGURES["tradeoff"].data(scale_exp=scale_exp, seed=seed)
    pd.testing.assert_frame_equal(figure[["run", "alpha"]], plain[["run", "alpha"]], check_exact=True)
    ours, theirs = figure[["loss1", "loss2"]].to_numpy(), plain[["loss1", "loss2"]].to_numpy()
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
    np.testing.assert_allclose(ours[np.isfinite(ours)], theirs[np.isfinite(theirs)], rtol=1e-6, atol=0)
