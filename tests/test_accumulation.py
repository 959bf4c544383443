"""The facts of core.accumulation against independent computations: closed forms, float64, a second route."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

import core.accumulation as acc
from core import accumulation_memory as mem
from core import accumulation_recipe as rec

NEVER = "zero_grad() never"
EVERY = "zero_grad() every step"


# --- 1. Forgetting zero_grad() -------------------------------------------------------------------------------------
def line_gradient(w: float, b: float) -> np.ndarray:
    """d/d(w, b) of mean((w x + b - 2x)^2) on the page's six points, by hand, in float64."""
    x = np.linspace(-1.0, 1.0, 6)
    r = w * x + b - 2 * x
    return np.array([2 * np.mean(r * x), 2 * np.mean(r)])


def test_zeroed_run_is_gradient_descent_by_hand():
    df = acc.zero_grad_runs(0.3, steps=30)
    run = df[df.run == EVERY]
    theta = run[["w", "b"]].to_numpy()
    for t in range(len(theta) - 1):  # float64 recurrence from the recorded point: one float32 step's rounding
        expected = theta[t] - 0.3 * line_gradient(*theta[t])
        np.testing.assert_allclose(theta[t + 1], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(run.applied, [np.linalg.norm(line_gradient(*p)) for p in theta], rtol=1e-5, atol=1e-7)


def test_without_zero_grad_the_applied_gradient_is_the_sum_of_every_gradient_so_far():
    df = acc.zero_grad_runs(0.1, steps=40)
    run = df[df.run == NEVER]
    own = np.array([line_gradient(w, b) for w, b in zip(run.w, run.b)])  # (T, 2), float64 by hand
    np.testing.assert_allclose(run.applied, np.linalg.norm(own.cumsum(axis=0), axis=1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(run.own, np.linalg.norm(own, axis=1), rtol=1e-4, atol=1e-6)
    assert (run.applied - run.own).abs().max() > 0.5 * run.own.max()  # the sum is far from this step's gradient


def test_hessian_eigenvalues_match_the_closed_form():
    x = np.linspace(-1.0, 1.0, 6)  # mean x = 0, so the Hessian 2·[[mean x², mean x], [mean x, 1]] is diagonal
    expected = sorted([2 * np.mean(x**2), 2.0])
    np.testing.assert_allclose(acc.hessian_eigenvalues().numpy(), expected, rtol=1e-6)


def test_without_zero_grad_sgd_never_settles_below_its_limit():
    # accumulated gradients are momentum with no friction: e_{t+1} = (2 - lr λ) e_t - e_{t-1} has roots on the unit
    # circle for lr λ < 4, so the swing does not decay. After 300 steps the loss still climbs back near its start.
    for lr in (0.01, 0.1, 1.9):
        df = acc.zero_grad_runs(lr, steps=400)
        never, every = df[df.run == NEVER].loss, df[df.run == EVERY].loss
        assert never.iloc[300:].max() > 0.5 * never.iloc[0]
        if 0.1 <= lr < 1.0:  # the zeroed run, stable below 2/λ = 1, keeps falling (at 0.01, slowly)
            assert every.iloc[300:].max() < 1e-3 * every.iloc[0]


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_stability_limits_are_two_and_four_over_lambda(factor):
    lam = acc.hessian_eigenvalues().max().item()
    df = acc.zero_grad_runs(factor * 2 / lam, steps=200)
    every = df[df.run == EVERY].loss.to_numpy()
    assert (every[-1] < 1e-3 * every[0]) == (factor < 1)
    df = acc.zero_grad_runs(factor * 4 / lam, steps=200)
    never = df[df.run == NEVER].loss.to_numpy()
    bounded = bool(np.all(np.isfinite(never)) and never.max() < 100 * never[0])
    assert bounded == (factor < 1)


def test_run_states_follow_the_losses():
    assert acc.run_states(acc.zero_grad_runs(0.1)) == {EVERY: "settles", NEVER: "oscillates"}
    assert acc.run_states(acc.zero_grad_runs(3.0)) == {EVERY: "diverged", NEVER: "diverged"}
    assert acc.run_states(acc.zero_grad_runs(1.5)) == {EVERY: "diverged", NEVER: "oscillates"}
    assert acc.run_states(acc.zero_grad_runs(0.01)) == {EVERY: "slow", NEVER: "oscillates"}


def test_sgd_factor_is_the_closed_form():
    x = np.linspace(-1.0, 1.0, 6)
    for lr in (0.01, 0.1, 1.0, 3.0):
        expected = max(abs(1 - lr * 2 * np.mean(x**2)), abs(1 - lr * 2.0))
        assert acc.sgd_factor(lr) == pytest.approx(expected, rel=1e-6)


def test_set_to_none_skips_the_parameter_and_a_zero_grad_does_not():
    df = acc.none_versus_zero(lr=0.1).set_index(["optimizer", "set_to_none"])
    assert (df.xs("True", level=1).moved == 0).all()
    assert (df.xs("True", level=1).grad == "None").all() and (df.xs("False", level=1).grad == "zeros").all()
    zeros = df.xs("False", level=1).moved
    assert zeros["sgd"] == 0.0  # plain SGD moves by lr * 0
    assert zeros["adam"] > 1e-3 and zeros["adamw"] > 1e-3
    # momentum by hand: head B learns -2x for 3 steps, then gets a zero gradient and moves by lr * 0.9 * buffer
    gen = torch.Generator().manual_seed(0)
    heads = [acc.seeded_init_(nn.Linear(1, 1), gen) for _ in range(2)]
    w, b = heads[1].weight.item(), heads[1].bias.item()
    buf = np.zeros(2)
    for _ in range(3):
        g = line_gradient(w, b) + np.array([8 * np.mean(np.linspace(-1, 1, 6) ** 2), 0.0])  # target -2x, not 2x
        buf = 0.9 * buf + g
        w, b = w - 0.1 * buf[0], b - 0.1 * buf[1]
    assert zeros["momentum"] == pytest.approx(np.abs(0.1 * 0.9 * buf).max(), rel=1e-5)


# --- 2. Accumulation done right ------------------------------------------------------------------------------------
def per_example_gradients(seed: int = 0) -> torch.Tensor:
    """(B, P) gradients of each example's squared error, by torch.func in float64: a second route."""
    model, x, y = acc.reference_problem(seed=seed)
    model = model.double()
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, xi, yi):
        return ((functional_call(model, p, (xi[None],)) - yi) ** 2).sum()

    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, x.double(), y.double())
    return torch.cat([grads[k].flatten(1) for k in params], dim=1)


def predicted_error(weights: torch.Tensor, per_item: torch.Tensor) -> float:
    """Relative error of sum_i weights_i g_i against the mean gradient: what the weighting alone predicts."""
    full = per_item.mean(0)
    return ((weights @ per_item - full).norm() / full.norm()).item()


def micro_weights(sizes: list[int], normalization: str) -> torch.Tensor:
    k, total = len(sizes), sum(sizes)
    per = {"none": lambda n: 1 / n, "divide_by_steps": lambda n: 1 / (k * n), "global_count": lambda n: 1 / total}
    return torch.tensor([per[normalization](n) for n in sizes for _ in range(n)], dtype=torch.float64)


@pytest.mark.parametrize("k", [2, 3, 4, 6, 8, 12, 24])
def test_no_normalization_is_k_times_the_gradient(k):
    assert acc.accumulation_error(k, "none") == pytest.approx(k - 1, rel=1e-5)


@pytest.mark.parametrize("k", range(1, 25))
def test_global_count_is_exact_for_every_k(k):
    assert acc.accumulation_error(k, "global_count") < 1e-6


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6, 8, 12, 24])
def test_dividing_by_k_is_exact_when_k_divides_the_batch(k):
    assert acc.accumulation_error(k, "divide_by_steps") < 1e-6


def test_dividing_by_k_is_off_for_every_k_that_does_not_divide_the_batch():
    sweep = acc.error_sweep()
    uneven = sweep[(sweep.normalization == "divide_by_steps") & ~sweep.even]
    assert len(uneven) == 16 and (uneven.error > 1e-3).all()


@pytest.mark.parametrize("k", [5, 7, 9, 10, 16, 23])
@pytest.mark.parametrize("normalization", ["none", "divide_by_steps"])
def test_uneven_micro_batches_match_the_weighting_computed_by_hand(k, normalization):
    sizes = [len(part) for part in torch.arange(24).tensor_split(k)]
    expected = predicted_error(micro_weights(sizes, normalization), per_example_gradients())
    assert acc.accumulation_error(k, normalization) == pytest.approx(expected, rel=1e-4)
    if normalization == "divide_by_steps":
        assert expected > 1e-3  # a shorter micro-batch's items weigh more


def token_error_by_hand(k: int, normalization: str, spread: int) -> float:
    """The token model's accumulation error from per-token weights, with per-token gradients in float64."""
    model, tokens, targets = acc.token_problem(spread)
    model = model.double()
    params = {n: p.detach() for n, p in model.named_parameters()}
    real = targets != acc.PAD
    flat_tokens, flat_targets = tokens[real], targets[real]  # (N,)

    def loss(p, t, target):
        return nn.functional.cross_entropy(functional_call(model, p, (t[None],)), target[None])

    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, flat_tokens, flat_targets)
    per_token = torch.cat([grads[n].flatten(1) for n in params], dim=1)  # (N, P)
    sizes = [int(r.sum()) for r in real.tensor_split(k)]  # rows are in order, so tokens stay grouped by micro-batch
    return predicted_error(micro_weights(sizes, normalization), per_token)


@pytest.mark.parametrize("k", [2, 4, 5])
def test_token_means_over_micro_batches_are_not_the_token_mean(k):
    bug = acc.accumulation_error(k, "divide_by_steps", variable_lengths=True)
    assert bug == pytest.approx(token_error_by_hand(k, "divide_by_steps", acc.DEFAULT_SPREAD), rel=1e-3)
    assert bug > 1e-3
    assert acc.accumulation_error(k, "global_count", variable_lengths=True) < 1e-5


def test_the_token_bug_needs_unequal_token_counts():
    sweep = acc.token_sweep(4)
    bug = sweep[sweep.normalization == "divide_by_steps"].set_index("spread")
    assert bug.error[0] < 1e-5 and bug.min_tokens[0] == bug.max_tokens[0] == 6 * acc.MEAN_LENGTH
    assert bug.error[15] > 1e-2
    assert (sweep[sweep.normalization == "global_count"].error < 1e-5).all()  # float32 sums over ~400 tokens
    _, _, targets = acc.token_problem(15)
    counts = [(t != acc.PAD).sum().item() for t in targets.tensor_split(4)]
    assert (bug.min_tokens[15], bug.max_tokens[15], bug.tokens[15]) == (min(counts), max(counts), sum(counts))


def test_lengths_stay_in_range_at_every_spread():
    for spread in range(acc.MEAN_LENGTH):
        _, _, targets = acc.token_problem(spread)
        lengths = (targets != acc.PAD).sum(1)
        assert lengths.min() >= max(1, acc.MEAN_LENGTH - spread) and lengths.max() <= acc.MEAN_LENGTH + spread


def test_every_spread_draws_the_same_model_and_tokens():
    model, tokens, _ = acc.token_problem(0)
    for spread in range(1, acc.MEAN_LENGTH):
        other, other_tokens, _ = acc.token_problem(spread)
        assert torch.equal(other_tokens, tokens)
        assert all(torch.equal(p, q) for p, q in zip(other.parameters(), model.parameters()))


@pytest.mark.parametrize("k,seed", [(1, 0), (5, 0), (24, 0), (4, 3)])
def test_token_sweep_is_one_accumulation_per_spread_exactly(k, seed):
    sweep = acc.token_sweep(k, seed=seed)
    for spread in (0, 7, acc.MEAN_LENGTH - 1):
        model, tokens, targets = acc.token_problem(spread, seed=seed)
        total = int((targets != acc.PAD).sum())
        acc.token_losses(model, tokens, targets)[0].backward()
        full = acc.flat_grad(model).clone()
        for n in acc.NORMALIZATIONS[1:]:
            model.zero_grad()
            g = acc.accumulate(model, tokens, targets, acc.token_losses, k, n, total)
            row = sweep[(sweep.spread == spread) & (sweep.normalization == n)]
            assert row.error.item() == ((g - full).norm() / full.norm()).item()  # the same float32 operations
            assert row.tokens.item() == total


@pytest.mark.parametrize("seed", [0, 2])
def test_error_sweep_is_accumulation_error_exactly(seed):
    sweep = acc.error_sweep(seed=seed).set_index(["normalization", "micro_batches"]).error
    for n in acc.NORMALIZATIONS:
        for k in (1, 4, 5, 17, 24):
            assert sweep[n, k] == acc.accumulation_error(k, n, seed=seed)


def test_bad_arguments_are_value_errors_that_list_the_valid_ones():
    with pytest.raises(ValueError, match="none, divide_by_steps, global_count"):
        acc.accumulation_error(2, "mean")
    with pytest.raises(ValueError, match="1..24"):
        acc.accumulation_error(25, "none")
    with pytest.raises(ValueError, match="as written, corrected"):
        rec.run_recipe("fixed")


@pytest.mark.parametrize("seed", [1, 7])
def test_the_facts_hold_for_other_seeds(seed):
    assert acc.accumulation_error(4, "none", seed=seed) == pytest.approx(3, rel=1e-5)
    assert acc.accumulation_error(5, "global_count", seed=seed) < 1e-6
    assert acc.accumulation_error(5, "divide_by_steps", seed=seed) > 1e-3
    assert acc.accumulation_error(4, "divide_by_steps", variable_lengths=True, seed=seed) > 1e-3
    assert acc.accumulation_error(4, "global_count", variable_lengths=True, seed=seed) < 1e-5


def test_same_seed_same_numbers():
    assert acc.error_sweep(seed=3).equals(acc.error_sweep(seed=3))
    assert acc.zero_grad_runs(0.5, seed=3).equals(acc.zero_grad_runs(0.5, seed=3))
    assert acc.token_sweep(3, seed=3).equals(acc.token_sweep(3, seed=3))
    assert rec.recipe_ledger(seed=3).equals(rec.recipe_ledger(seed=3))
    assert acc.batchnorm_sweep(seed=3).equals(acc.batchnorm_sweep(seed=3))
    assert acc.accumulation_error(5, "divide_by_steps", seed=3) != acc.accumulation_error(5, "divide_by_steps")


def test_accumulated_training_follows_the_big_batch_when_normalized():
    curves = acc.training_curves(4, "divide_by_steps").pivot(index="step", columns="run", values="loss")
    np.testing.assert_allclose(curves["accumulated"], curves["one batch"], rtol=1e-5)


def test_no_normalization_trains_like_k_times_the_learning_rate():
    curves = acc.training_curves(3, "none", lr=0.05).pivot(index="step", columns="run", values="loss")
    model, x, y = acc.reference_problem()  # second route: one batch at lr × k
    opt = torch.optim.SGD(model.parameters(), lr=0.15)
    losses = []
    for _ in range(31):
        opt.zero_grad()
        loss = nn.MSELoss()(model(x), y)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    np.testing.assert_allclose(curves["accumulated"], losses, rtol=1e-4)


# --- 3. The recipe -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_the_fifth_point_never_moves_the_recipe_as_written(seed):
    assert rec.fifth_point_influence("as written", seed=seed) == 0.0
    assert rec.fifth_point_influence("corrected", seed=seed) > 0.1


def test_each_recipe_update_is_twice_the_mean_loss_gradient_by_hand():
    model, windows = rec.run_recipe("as written", epochs=1, lr=0.01)
    start = rec.run_recipe("as written", epochs=0)[0]
    w, b = start.weight.item(), start.bias.item()
    x = np.arange(1.0, 5.0)  # the four points that reach the update; y = 2x
    r = w * x + b - 2 * x
    mean_gradient = np.array([2 * np.mean(r * x), 2 * np.mean(r)])
    expected = np.array([w, b]) - 0.01 * 2 * mean_gradient
    np.testing.assert_allclose([model.weight.item(), model.bias.item()], expected, rtol=1e-6)
    assert windows[0]["coefficients"] == {1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5}
    assert windows[1]["coefficients"] == {5: 1.0} and windows[1]["fate"] == rec.NEVER


def test_the_ledger_rebuilds_every_applied_gradient():
    ledger = rec.recipe_ledger()
    applied = ledger[ledger.fate == rec.APPLIED]
    assert (applied.gap < 1e-6).all() and np.allclose(applied.cosine, 1, atol=1e-6)
    by_recipe = applied.groupby("recipe").ratio
    assert np.allclose(by_recipe.get_group("as written"), 2, rtol=1e-6)
    assert np.allclose(by_recipe.get_group("corrected"), 1, rtol=1e-6)
    fifth = ledger[(ledger.example == 5) & (ledger.coefficient > 0)]
    assert set(fifth[fifth.recipe == "as written"].status) == {rec.NEVER}
    assert set(fifth[fifth.recipe == "corrected"].status) == {rec.APPLIED}
    # every example's coefficients over an epoch: 1/2 each for the recipe, 1/count of its window when corrected
    totals = applied.groupby(["recipe", "epoch", "example"]).coefficient.sum()
    assert totals["as written"].unstack().to_numpy().tolist() == [[0.5] * 4 + [0.0]] * 3
    assert totals["corrected"].unstack().to_numpy().tolist() == [[0.25] * 4 + [1.0]] * 3


# --- 5. BatchNorm --------------------------------------------------------------------------------------------------
def test_batchnorm_breaks_the_equivalence_and_nothing_else_does():
    df = acc.batchnorm_sweep()
    without, with_bn = df[df.model == "without BatchNorm"], df[df.model == "with BatchNorm"]
    assert (without.error < 1e-6).all() and len(without) == 8
    split = with_bn[with_bn.micro_batches > 1]
    assert (split.error > 1e-2).all() and 1 not in set(with_bn.micro_batch_size)  # one example: torch refuses
    assert with_bn[with_bn.micro_batches == 1].error.item() == 0.0
    assert (with_bn.updates == with_bn.micro_batches).all()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(16)(torch.ones(1, 16))


def test_running_mean_is_updated_once_per_micro_batch_by_hand():
    x, _ = acc.regression_data(24, 4, seed=0)
    gen = torch.Generator().manual_seed(0)
    first = acc.seeded_init_(nn.Linear(4, 16), gen)
    running = torch.zeros(16, dtype=torch.float64)
    for part in x.tensor_split(4):  # torch's rule: running = (1 - 0.1) running + 0.1 mean of the micro-batch
        running = 0.9 * running + 0.1 * first(part).detach().double().mean(0)
    full = 0.1 * first(x).detach().double().mean(0)
    row = acc.batchnorm_sweep().query("model == 'with BatchNorm' and micro_batches == 4")
    assert row.running_moved.item() == pytest.approx((running.norm() / full.norm()).item(), rel=1e-4)


def test_batchnorm_in_eval_mode_accumulates_exactly():
    # the break is the batch statistics: with fixed (running) statistics, accumulation is exact again
    x, y = acc.regression_data(24, 4, seed=0)
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 1)).eval()
    (nn.MSELoss()(model(x), y)).backward()
    full = acc.flat_grad(model).clone()
    model.zero_grad()
    for xb, yb in zip(x.tensor_split(6), y.tensor_split(6)):
        (nn.MSELoss(reduction="sum")(model(xb), yb) / 24).backward()
    assert ((acc.flat_grad(model) - full).norm() / full.norm()).item() < 1e-6


# --- 6. Memory -----------------------------------------------------------------------------------------------------
def test_fixed_memory_is_parameters_gradients_and_adams_two_moments():
    df = mem.memory_sweep()
    fixed = df[df.part != mem.PARTS[-1]].pivot(index="micro_batches", columns="part", values="bytes")
    sizes = mem.SIZES
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))  # weights and biases of each Linear
    assert (fixed.parameters == 4 * n_params).all() and (fixed.gradients == 4 * n_params).all()
    assert (fixed["Adam state"] == 2 * 4 * n_params + 4 * 2 * (len(sizes) - 1)).all()  # + a float32 step per tensor


def test_measured_peak_follows_the_activations_kept_for_backward():
    df = mem.memory_sweep()
    peak = df[df.part == mem.PARTS[-1]].set_index("micro_batch_size").bytes.sort_index()
    assert peak.is_monotonic_increasing and peak[1024] > 8 * peak[16]
    model = mem.mlp(mem.SIZES, nn.Tanh, seed=0)
    x, y = mem.classification_data(1024, mem.SIZES[0], mem.SIZES[-1], seed=0)

    def saved(m: int) -> int:  # second route: bytes of the tensors autograd saves for backward
        total = [0]

        def pack(t):
            total[0] += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            nn.CrossEntropyLoss()(model(x[:m]), y[:m])
        return total[0]

    # where activations dominate; at small micro-batches a fixed temporary of backward (a weight's gradient before
    # it is added into .grad) sets the peak instead, which is why the measured peak at 16 is not 1/64 of 1024's
    for big, small in ((1024, 512), (512, 256)):
        assert (peak[big] - peak[small]) == pytest.approx(saved(big) - saved(small), rel=0.15)
    # the 256 x 256 weight's gradient is computed whole before it is added into .grad, whatever the micro-batch
    assert peak[16] >= mem.WEIGHT_GRAD_BYTES == 256 * 256 * 4


def test_memory_at_every_k_is_recorded():
    df = mem.memory_sweep()
    assert sorted(df.micro_batches.unique()) == [int(k) for k in acc.MEMORY_KS]
    assert (df.micro_batches * df.micro_batch_size == mem.EFFECTIVE_BATCH).all()


def test_each_micro_batch_frees_its_activations_before_the_next():
    # two accumulated passes peak no higher than one: nothing of the first is still held when the second runs
    model = mem.mlp(mem.SIZES, nn.Tanh, seed=0)
    x, y = mem.classification_data(256, mem.SIZES[0], mem.SIZES[-1], seed=0)
    nn.CrossEntropyLoss()(model(x[:2]), y[:2]).backward()  # the gradients exist; backward adds into them
    one = mem.backward_peak(model, x[:128], y[:128])
    with mem.StorageWatch() as watch:
        for part in (slice(0, 128), slice(128, 256)):
            nn.CrossEntropyLoss()(model(x[part]), y[part]).backward()
    assert watch.peak == pytest.approx(one, rel=0.05)


def profiler_peak(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Second route, for this test alone (one thread): torch.profiler's memory events, summed in time order."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        nn.CrossEntropyLoss()(model(x), y).backward()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    level = peak = 0
    for _, nbytes in events:
        level += nbytes
        peak = max(peak, level)
    return peak


def test_storage_watch_agrees_with_the_profiler_to_the_byte():
    model = mem.mlp(mem.SIZES, nn.Tanh, seed=0)
    x, y = mem.classification_data(1024, mem.SIZES[0], mem.SIZES[-1], seed=0)
    nn.CrossEntropyLoss()(model(x[:2]), y[:2]).backward()
    profiler_peak(model, x[:2], y[:2])  # the profiler's first run pays its start-up
    for m in (16, 128, 1024):
        assert mem.backward_peak(model, x[:m], y[:m]) == profiler_peak(model, x[:m], y[:m])
