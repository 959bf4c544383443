"""Clipping and the scheduler under accumulation, and BatchNorm on one example, against independent computations:
closed forms for the schedule, per-micro-batch gradients by torch.autograd.grad (no .grad), BatchNorm by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import core.accumulation_batchnorm as bnorm
import core.accumulation_clipping as cl
from core.accumulation import reference_problem

ONE, ONCE, EACH, SCHED = cl.CLIP_RUNS


def by_run(df, column):
    return df.pivot(index="step", columns="run", values=column)


@pytest.mark.parametrize("k", [2, 4, 5, 24])
@pytest.mark.parametrize("max_norm", [0.05, 0.3, 3.0])
def test_clipping_once_after_the_last_micro_batch_is_the_one_batch_run(k, max_norm):
    loss = by_run(cl.clip_accumulation_runs(k, max_norm), "loss")
    np.testing.assert_allclose(loss[ONCE], loss[ONE], rtol=1e-5)  # float32 rounding of k partial sums


@pytest.mark.parametrize("k", [1, 3, 4, 24])
def test_the_schedule_is_linearlr_per_optimizer_step_and_k_times_faster_per_micro_batch(k):
    lr = by_run(cl.clip_accumulation_runs(k, 0.3), "lr")
    steps = np.arange(cl.CLIP_STEPS)
    right = cl.CLIP_LR * (1 - steps / cl.CLIP_STEPS)  # LinearLR(1 -> 0 over CLIP_STEPS), closed form
    np.testing.assert_allclose(lr[ONE], right, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lr[ONCE], right, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lr[SCHED], cl.CLIP_LR * np.maximum(0, 1 - k * steps / cl.CLIP_STEPS), rtol=1e-9,
                               atol=1e-12)


def pieces(k: int, seed: int = 0) -> list[torch.Tensor]:
    """Each micro-batch's gradient of its summed squared error / 24, by autograd.grad: .grad is never touched."""
    model, x, y = reference_problem(seed=seed)
    params = list(model.parameters())
    out = []
    for xb, yb in zip(x.tensor_split(k), y.tensor_split(k)):
        grads = torch.autograd.grad(((model(xb) - yb) ** 2).sum() / len(x), params)
        out.append(torch.cat([g.flatten() for g in grads]).double())
    return out


@pytest.mark.parametrize(("k", "max_norm"), [(4, 0.3), (5, 0.1), (24, 0.05), (3, 1.0)])
def test_clipping_each_micro_batch_is_the_sum_of_clipped_pieces(k, max_norm):
    parts = pieces(k)
    each = sum(p * min(1.0, max_norm / (p.norm().item() + 1e-6)) for p in parts)
    total = sum(parts)
    once = total * min(1.0, max_norm / (total.norm().item() + 1e-6))
    runs = cl.clip_accumulation_runs(k, max_norm)
    first = runs[runs.step == 0].set_index("run").grad_norm
    assert first[EACH] == pytest.approx(each.norm().item(), rel=1e-5)
    assert first[ONCE] == pytest.approx(once.norm().item(), rel=1e-5)
    g = cl.first_step_gradients(k, max_norm)
    assert g["difference"] == pytest.approx(((each - once).norm() / once.norm()).item(), rel=1e-4)


def test_at_the_defaults_clipping_each_micro_batch_is_far_from_clipping_once():
    assert cl.first_step_gradients(4, 0.3)["difference"] > 1  # 2.47: each piece gets the whole threshold


def test_when_no_clip_acts_clipping_each_micro_batch_changes_nothing():
    loss = by_run(cl.clip_accumulation_runs(4, 3.0), "loss")  # every norm stays below 3
    np.testing.assert_allclose(loss[EACH], loss[ONE], rtol=1e-5)


def plain_clip_runs(k: int, max_norm: float, seed: int, dtype: torch.dtype = torch.float32) -> pd.DataFrame:
    """The four runs written plainly: a fresh model per run, every step computed, every micro-batch its own forward
    and backward(), every clip by clip_grad_norm_ on .grad, the clipped pieces added one by one."""
    rows = []
    for run in cl.CLIP_RUNS:
        model, x, y = reference_problem(seed=seed)
        model, x, y = model.to(dtype), x.to(dtype), y.to(dtype)
        params = list(model.parameters())
        optimizer = torch.optim.SGD(params, lr=cl.CLIP_LR)
        scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=cl.CLIP_STEPS)
        parts = k if run in (ONCE, EACH) else 1
        for step in range(cl.CLIP_STEPS):
            with torch.no_grad():
                loss = nn.functional.mse_loss(model(x), y).item()
            lr, cut = optimizer.param_groups[0]["lr"], False
            optimizer.zero_grad()
            applied = [torch.zeros_like(p) for p in params]
            for xb, yb in zip(x.tensor_split(parts), y.tensor_split(parts)):
                (nn.functional.mse_loss(model(xb), yb, reduction="sum") / len(x)).backward()
                if run == EACH:
                    cut |= nn.utils.clip_grad_norm_(params, max_norm).item() > max_norm
                    for a, p in zip(applied, params):
                        a += p.grad
                        p.grad.zero_()
            if run == EACH:
                for a, p in zip(applied, params):
                    p.grad.copy_(a)
            else:
                cut = nn.utils.clip_grad_norm_(params, max_norm).item() > max_norm
            norm = nn.utils.get_total_norm([p.grad for p in params]).item()
            rows.append({"step": step, "run": run, "loss": loss, "lr": lr, "grad_norm": norm, "clipped": cut})
            optimizer.step()
            for _ in range(k if run == SCHED else 1):
                scheduler.step()
    return pd.DataFrame(rows)


MAX_NORMS = st.integers(1, 60).map(lambda i: round(i * 0.05, 2))  # the slider: 0.05 to 3.0 in steps of 0.05


@given(st.integers(1, 24), MAX_NORMS, st.integers(0, 2**32 - 1))
def test_the_runs_match_the_plain_loop(k, max_norm, seed):
    """One batch, clip once and the scheduler run: the same float32 operations as the plain loop, so the same bits.
    Clip each micro-batch takes its pieces from one batched backward, which adds in another order: about 1e-7 from
    the plain loop at the first step, and then as close to a float64 recomputation as float32 gets along 20 steps
    (every run, the plain loop's own included, drifts up to about 3e-6 from float64 on a late, small gradient norm:
    measured over 200 random settings), so 5e-5 relative against float64."""
    fast, plain = cl.clip_accumulation_runs(k, max_norm, seed=seed), plain_clip_runs(k, max_norm, seed)
    same = fast.run != EACH
    pd.testing.assert_frame_equal(fast[same], plain[same], check_exact=True)
    each, plain_each = fast[~same].reset_index(drop=True), plain[~same].reset_index(drop=True)
    columns = ["step", "run", "lr", "clipped"]
    pd.testing.assert_frame_equal(each[columns], plain_each[columns], check_exact=True)
    np.testing.assert_allclose(each.grad_norm[0], plain_each.grad_norm[0], rtol=1e-6)
    exact = plain_clip_runs(k, max_norm, seed, torch.float64)
    exact = exact[exact.run == EACH].reset_index(drop=True)
    np.testing.assert_allclose(each.loss, exact.loss, rtol=5e-5)
    np.testing.assert_allclose(each.grad_norm, exact.grad_norm, rtol=5e-5)


@given(st.integers(1, 24), MAX_NORMS, st.integers(0, 2**32 - 1))
def test_first_step_gradients_match_one_autograd_call_per_micro_batch(k, max_norm, seed):
    parts = [p.float() for p in pieces(k, seed)]
    total = sum(parts)
    once = total * min(1.0, max_norm / (total.norm().item() + 1e-6))
    each = sum(p * min(1.0, max_norm / (p.norm().item() + 1e-6)) for p in parts)
    g = cl.first_step_gradients(k, max_norm, seed=seed)
    assert g["unclipped"] == pytest.approx(total.norm().item(), rel=1e-6)
    assert g["once"] == pytest.approx(once.norm().item(), rel=1e-6)
    assert g["each"] == pytest.approx(each.norm().item(), rel=1e-6)
    assert g["difference"] == pytest.approx(((each - once).norm() / once.norm()).item(), rel=1e-5, abs=1e-6)
    assert g["pieces_cut"] == sum(p.norm().item() > max_norm for p in parts)


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_batchnorm_on_one_example_fails_only_for_batchnorm1d_on_n_c(seed):
    assert bnorm.single_example_batchnorm(seed=seed) == dict(zip(bnorm.LAYOUTS, ("raises", "trains", "trains")))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4).train()(torch.ones(1, 4))
    x = torch.randn(1, 4, 8, generator=torch.Generator().manual_seed(seed))
    by_hand = (x - x.mean(dim=(0, 2), keepdim=True)) / torch.sqrt(x.var(dim=(0, 2), unbiased=False, keepdim=True)
                                                                    + 1e-5)
    torch.testing.assert_close(nn.BatchNorm1d(4).train()(x), by_hand, rtol=1e-5, atol=1e-5)  # its own statistics
