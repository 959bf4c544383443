"""Label smoothing's floor and calibration, and ECE over its bins, against closed forms and plain loops."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

import core.accuracy_vs_loss as avl
import core.accuracy_vs_loss_smoothing as sm
from core.controls import defaults, find
from tests.strategies import SEEDS
from tests.test_accuracy_vs_loss import ece_loop, random_logits

DEFAULTS = defaults(avl.CONTROLS)
RUN = {k: DEFAULTS[k] for k in ("label_noise", "epochs", "train_size")}


def entropy(q: list[float]) -> float:
    return -sum(p * math.log(p) for p in q if p > 0)


# --- The floor: closed form, the library at p = q, and a numerical minimum ----------------------------------------

@pytest.mark.parametrize("k", [2, 3, 10])
@pytest.mark.parametrize("eps", [0.0, 0.05, 0.1, 0.3, 0.5, 1.0])
def test_the_floor_is_the_entropy_of_the_smoothed_target(eps, k):
    q = [1 - eps + eps / k] + [eps / k] * (k - 1)
    assert sm.smoothing_floor(eps, k) == pytest.approx(entropy(q), abs=1e-15)
    # nn.functional.cross_entropy(label_smoothing=eps) at the logits log q is that entropy (float64, 1e-12)
    logits = torch.log(torch.tensor([q], dtype=torch.float64).clamp_min(1e-300))
    at_q = F.cross_entropy(logits, torch.tensor([0]), label_smoothing=eps).item()
    assert at_q == pytest.approx(sm.smoothing_floor(eps, k), abs=1e-12)


@pytest.mark.parametrize("eps", [0.05, 0.2, 0.5])
def test_no_logits_beat_the_floor_and_lbfgs_finds_it(eps):
    # Minimise the library's smoothed loss over free logits (float64 LBFGS): it lands on the closed form (1e-9).
    z = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([z], max_iter=200, tolerance_grad=1e-14, tolerance_change=1e-16,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z, torch.tensor([0]), label_smoothing=eps)
        loss.backward()
        return loss

    opt.step(closure)
    assert closure().item() == pytest.approx(sm.smoothing_floor(eps), abs=1e-9)
    assert torch.softmax(z.detach(), 1)[0, 0].item() == pytest.approx(sm.top_confidence(eps), abs=1e-6)


@settings(max_examples=50)
@given(st.floats(0, 1), st.integers(2, 6), st.integers(0, 2**16))
def test_the_smoothed_loss_is_never_below_its_floor(eps, k, seed):
    logits, labels = random_logits(20, k, 4.0, seed)
    loss = F.cross_entropy(logits.double(), labels, label_smoothing=eps, reduction="none")
    assert loss.min().item() >= sm.smoothing_floor(eps, k) - 1e-12


def test_the_control_covers_the_sweep_exactly():
    c = find(avl.CONTROLS, "smoothing")
    values = [round(c.lo + i * c.step, 2) for i in range(round((c.hi - c.lo) / c.step) + 1)]
    assert tuple(values) == sm.SMOOTHINGS


# --- The sweep: training reaches the floor; smoothing moves calibration ------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_training_sits_on_the_floor_at_every_eps(seed):
    df = sm.smoothing_sweep(seed=seed)
    floor = [sm.smoothing_floor(e) for e in df.smoothing]
    assert (df.train_loss >= pd.Series(floor) - 1e-6).all()  # float32 training; the closed form is exact
    assert (df.train_loss - pd.Series(floor)).abs().max() < 1e-3  # within 1e-3 nats of it after 100 steps


@pytest.mark.parametrize("seed", SEEDS)
def test_smoothing_turns_over_confidence_into_under_confidence(seed):
    df = sm.smoothing_sweep(seed=seed).set_index("smoothing")
    assert df.test_confidence[0.0] > df.test_accuracy[0.0] + 0.1  # memorised without smoothing: over-confident
    assert df.test_confidence[0.5] < df.test_accuracy[0.5]  # eps = 0.5: under-confident
    assert df.test_confidence.is_monotonic_decreasing  # each step of eps lowers the mean confidence
    assert df.test_ece.idxmin() > 0  # some smoothing calibrates better than none


def test_each_row_of_the_stacked_sweep_is_its_own_run():
    # The stacked runs against a run trained alone, for two eps: same numbers within float32 summation (1e-4).
    both = sm.smoothing_sweep(seed=7).set_index("smoothing")
    for eps in (0.0, 0.3):
        alone = sm.smoothing_sweep(seed=7, smoothings=(eps,)).set_index("smoothing")
        for col in ("train_loss", "test_nll", "test_confidence"):
            assert alone.at[eps, col] == pytest.approx(both.at[eps, col], abs=1e-4)


def test_the_sweep_touches_no_global_rng():
    state = torch.get_rng_state()
    sm.smoothing_sweep.__wrapped__(seed=3)
    assert torch.equal(state, torch.get_rng_state())


# --- ECE over bins -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 5])
def test_ece_over_bins_matches_the_definition_loop(seed):
    logits, labels = random_logits(300, 3, 3.0, seed)
    bins = (1, 2, 7, 15, 40, 100)
    for n, value in zip(bins, sm.ece_over_bins(logits, labels, bins)):
        assert value == pytest.approx(ece_loop(logits, labels, n), abs=1e-12)


@settings(max_examples=30)
@given(st.integers(0, 2**16), st.integers(1, 50))
def test_one_bin_is_the_smallest_ece_and_splitting_bins_never_lowers_it(seed, n):
    logits, labels = random_logits(200, 3, 3.0, seed)
    one, at_n, at_2n = sm.ece_over_bins(logits, labels, (1, n, 2 * n))
    assert one <= at_n + 1e-12  # |sum of gaps| <= sum of |gaps|, for any partition
    assert at_n <= at_2n + 1e-12  # 2n bins split each of the n bins in two (the edges k/n = 2k/2n exactly)


def test_ece_by_bins_at_15_is_the_calibration_experiment_s_ece():
    df = sm.ece_by_bins(**RUN, seed=0).set_index(["model", "bins"]).ece
    cal = avl.calibrate(**RUN, seed=0)
    assert df["as trained", 15] == pytest.approx(cal.before["ece"], abs=1e-12)
    assert df["temperature-scaled", 15] == pytest.approx(cal.after["ece"], abs=1e-12)


def test_flipped_in_training_counts_the_flips_of_the_training_labels():
    n = 64 + avl.N_VAL + avl.N_TEST
    _, noisy = avl.noisy_mixture(n, 0.2, seed=1)
    _, clean = avl.noisy_mixture(n, 0.0, seed=1)
    expected = sum(int(a != b) for a, b in zip(noisy[:64].tolist(), clean[:64].tolist()))
    assert avl.flipped_in_training(0.2, 64, seed=1) == expected > 0
    assert avl.flipped_in_training(0.0, 64, seed=1) == 0
