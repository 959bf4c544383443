"""Accuracy vs loss, part three: label smoothing moves the loss floor and the calibration; ECE depends on its bins.

Concept: with label smoothing eps over K classes, nn.CrossEntropyLoss(label_smoothing=eps) compares the
prediction with the target q = (1 - eps) one_hot + eps / K. Cross-entropy against q is smallest at p = q,
where it equals q's entropy, so the training loss can no longer fall to 0: its floor is
    H(eps, K) = -(1 - eps + eps/K) log(1 - eps + eps/K) - (K - 1) (eps/K) log(eps/K).
A model that reaches that floor gives its winner 1 - eps + eps/K at most: smoothing caps confidence, which
moves calibration. ECE, in turn, is a histogram estimate: the same predictions give another ECE for
another number of bins.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from core.accuracy_vs_loss import CLASSES, FEATURES, HIDDEN, N_TEST, calibrate, noisy_mixture, reliability, train_noisy
from core.data import mlp

SMOOTHINGS = tuple(round(0.05 * k, 2) for k in range(11))  # the control's values: 0, 0.05, ..., 0.5
SMOOTH_NOISE, SMOOTH_TRAIN = 0.2, 64  # experiment 3's defaults: few noisy labels, easily memorised
SMOOTH_STEPS, SMOOTH_LR, SMOOTH_MOMENTUM = 100, 0.05, 0.9  # full batch: long enough to sit near the floor
BINS = tuple(range(1, 101))  # ECE's bins, from one bin (|mean confidence - accuracy|) to 100


def smoothing_floor(eps: float, classes: int = CLASSES) -> float:
    """The smallest cross-entropy against the smoothed target: the entropy of q = (1 - eps) one_hot + eps / K."""
    if not 0 <= eps <= 1:
        raise ValueError(f"eps must lie in [0, 1], got {eps}")
    top, rest = 1 - eps + eps / classes, eps / classes
    return -top * math.log(top) - ((classes - 1) * rest * math.log(rest) if rest > 0 else 0.0) + 0.0  # no -0.0


def top_confidence(eps: float, classes: int = CLASSES) -> float:
    """The winner's probability at the floor, 1 - eps + eps / K: the most a model trained to the floor can say."""
    return 1 - eps + eps / classes


@functools.lru_cache(maxsize=8)  # two figures and the page read one sweep; bounded (DESIGN rule 7)
def smoothing_sweep(*, seed: int = 0, smoothings: tuple[float, ...] = SMOOTHINGS) -> pd.DataFrame:
    """Label smoothing: the 400 -> 32 -> 3 MLP trained on nn.CrossEntropyLoss(label_smoothing=eps), one run per eps.

    Every run starts from the same weights (core.data.mlp, seeded) on the same 64 noisy training labels and
    takes 150 full-batch steps of SGD with momentum; the runs are stacked along a first dimension (E, ...), and
    each element of the stack sees only its own run's gradient, so each row is an independent run. Columns:
    smoothing, train_loss (the smoothed loss it minimised, at the end), floor (its closed-form minimum),
    test_nll (plain cross-entropy on 1000 test examples), test_accuracy, test_confidence (mean top-label
    probability), test_ece (15 bins).
    """
    x, y = noisy_mixture(SMOOTH_TRAIN + N_TEST, SMOOTH_NOISE, seed=seed)
    x_tr, y_tr, x_te, y_te = x[:SMOOTH_TRAIN], y[:SMOOTH_TRAIN], x[SMOOTH_TRAIN:], y[SMOOTH_TRAIN:]
    first, _, second = mlp((FEATURES, HIDDEN, CLASSES), nn.ReLU, seed=seed)
    e = len(smoothings)
    params = [first.weight.detach().T.expand(e, FEATURES, HIDDEN).clone(),  # (E, D, H)
              first.bias.detach().expand(e, 1, HIDDEN).clone(),  # (E, 1, H)
              second.weight.detach().T.expand(e, HIDDEN, CLASSES).clone(),  # (E, H, K)
              second.bias.detach().expand(e, 1, CLASSES).clone()]  # (E, 1, K)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=SMOOTH_LR, momentum=SMOOTH_MOMENTUM)

    def logits(xs: torch.Tensor) -> torch.Tensor:
        w1, b1, w2, b2 = params
        return torch.relu(xs @ w1 + b1) @ w2 + b2  # (E, N, K)

    def losses(z: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        return torch.stack([F.cross_entropy(z[i], ys, label_smoothing=eps) for i, eps in enumerate(smoothings)])

    for _ in range(SMOOTH_STEPS):
        opt.zero_grad()
        losses(logits(x_tr), y_tr).sum().backward()  # run i's gradient is its own loss's
        opt.step()
    with torch.no_grad():
        train = losses(logits(x_tr), y_tr)  # (E,)
        z = logits(x_te).double()  # (E, N_TEST, K)
    rows = []
    for i, eps in enumerate(smoothings):
        probs = torch.softmax(z[i], dim=1)
        bins = reliability(z[i], y_te)
        filled = bins[bins["count"] > 0]
        rows.append({"smoothing": eps, "train_loss": train[i].item(), "floor": smoothing_floor(eps),
                     "test_nll": F.cross_entropy(z[i], y_te).item(),
                     "test_accuracy": (z[i].argmax(dim=1) == y_te).double().mean().item(),
                     "test_confidence": probs.max(dim=1).values.mean().item(),
                     "test_ece": float((filled["count"] * filled.gap.abs()).sum() / len(y_te))})
    return pd.DataFrame(rows)


def floor_curve(points: int = 51) -> pd.DataFrame:
    """The closed-form floor H(eps, K) and the winner's probability there, for eps in [0, 0.5]."""
    eps = np.linspace(0, 0.5, points)
    return pd.DataFrame({"smoothing": eps, "floor": [smoothing_floor(e) for e in eps],
                         "top": [top_confidence(e) for e in eps]})


def ece_over_bins(logits: torch.Tensor, labels: torch.Tensor, bins: tuple[int, ...] = BINS) -> list[float]:
    """ECE for each number of equal-width bins (lo, hi], from one computation of the confidences.

    The same bins as reliability(): for each bin, |mean confidence - accuracy| weighted by its share of examples.
    """
    conf, pred = torch.softmax(logits.double(), dim=1).max(dim=1)  # (N,), (N,)
    right = (pred == labels).double()
    out = []
    for n in bins:
        edges = torch.tensor([k / n for k in range(n + 1)], dtype=torch.float64)
        index = torch.bucketize(conf, edges[1:-1], right=False)  # (N,), bin b holds edges[b] < conf <= edges[b+1]
        gap = torch.bincount(index, weights=conf, minlength=n) - torch.bincount(index, weights=right, minlength=n)
        out.append(gap.abs().sum().item() / len(labels))  # sum over bins of count * |conf_mean - acc|, / N
    return out


def ece_by_bins(*, label_noise: float, epochs: int, train_size: int, seed: int = 0,
                bins: tuple[int, ...] = BINS) -> pd.DataFrame:
    """ECE of experiment 3's test predictions, as trained and temperature-scaled, for each number of bins.

    Columns: model ("as trained", "temperature-scaled"), bins, ece. One bin gives |mean confidence - accuracy|;
    more bins see more of the gap per confidence, and, with fewer examples in each, more of the sampling noise.
    """
    logits, labels = train_noisy(label_noise, epochs, train_size, seed).test
    t = calibrate(label_noise=label_noise, epochs=epochs, train_size=train_size, seed=seed).temperature
    frames = [pd.DataFrame({"model": model, "bins": list(bins), "ece": ece_over_bins(z, labels, bins)})
              for model, z in (("as trained", logits), ("temperature-scaled", logits / t))]
    return pd.concat(frames, ignore_index=True)
