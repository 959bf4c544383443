"""The reduction page's corrected claims and new experiments, each against an independent computation."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import core.reduction as core
from core import reduction_elements as elements
from core.data import generator


@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_mean_divides_by_every_element_b_times_d(batch_size):
    ratios = elements.element_ratios(batch_size, seed=2)
    for row in ratios.itertuples():
        assert row.ratio == pytest.approx(batch_size * row.outputs, rel=1e-5)
        assert row.mean_loss == pytest.approx(row.sum_over_bd, rel=1e-6)


def test_mse_mean_is_the_sum_over_b_times_d_by_hand():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.randn(5, 3, generator=gen,
                                                                                       dtype=torch.float64)
    assert nn.MSELoss()(pred, target).item() == pytest.approx(((pred - target) ** 2).sum().item() / 15, rel=1e-12)


@pytest.mark.parametrize("ignored", [0, 3, 11])
def test_ignore_index_leaves_ignored_targets_out_of_the_denominator(ignored):
    result = elements.ignore_index_mean(ignored, seed=1)
    kept = result.examples[~result.examples.ignored]
    # second route: -log softmax by hand, float64, over the kept targets only
    x, y = elements.classification_data(elements.N_CE, elements.N_FEATURES, elements.CLASSES, seed=1)
    logits = elements.mlp((elements.N_FEATURES, elements.CLASSES), seed=1).double()(x.double()).detach()
    nll = -(logits - logits.logsumexp(dim=1, keepdim=True))[torch.arange(elements.N_CE), y]
    by_hand = nll[ignored:].mean().item()
    assert result.library_mean == pytest.approx(by_hand, rel=1e-12)
    assert result.kept == len(kept) == elements.N_CE - ignored
    assert (result.examples[result.examples.ignored].loss == 0).all()
    with pytest.raises(ValueError):
        elements.ignore_index_mean(elements.N_CE)


def test_the_finite_population_correction_by_exact_enumeration():
    """E||mean of B distinct of N - mean||^2 = tr(Sigma) / B * (N - B) / (N - 1), over every subset of a small pool."""
    pool = torch.randn(7, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    full = pool.mean(dim=0)
    trace = ((pool - full) ** 2).sum(dim=1).mean().item()
    for b in (1, 3, 6, 7):
        subsets = list(itertools.combinations(range(7), b))
        exact = sum(((pool[list(s)].mean(dim=0) - full) ** 2).sum().item() for s in subsets) / len(subsets)
        assert exact == pytest.approx(trace / b * (7 - b) / 6, rel=1e-12, abs=1e-15)


def test_norm_sweep_measures_both_samplings_near_their_closed_forms():
    spread = core.norm_sweep(seed=0).spread.set_index("batch_size")
    for b in (4, 32, 256):  # 128 draws: the RMS is within ~15% of its expectation
        assert spread.loc[b, "spread"] == pytest.approx(spread.loc[b, "closed_form"], rel=0.15)
        assert spread.loc[b, "spread_without"] == pytest.approx(spread.loc[b, "closed_form_without"], rel=0.15)
    assert spread.loc[256, "closed_form_without"] / spread.loc[256, "closed_form"] == pytest.approx(
        ((512 - 256) / 511) ** 0.5)


def test_lr_by_batch_copies_are_separate_sgd_runs():
    sweep = elements.lr_by_batch(seed=0).set_index(["batch_size", "lr"]).loss
    b = 256
    for lr in (0.03, 0.3):
        model, x, y = core.reference_problem(0)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        gen = generator(0 + 60_000 + b)
        for _ in range(elements.EPOCHS):
            for batch in torch.randperm(512, generator=gen).split(b):
                opt.zero_grad()
                nn.MSELoss()(model(x[batch]), y[batch]).backward()
                opt.step()
        with torch.no_grad():
            expected = nn.MSELoss()(model(x), y).item()
        assert sweep[(b, lr)] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_with_mean_reduction_the_best_lr_still_moves_with_the_batch_size(seed):
    best = elements.best_lr(elements.lr_by_batch(seed=seed))
    assert best[4] < best[256]
