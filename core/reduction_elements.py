"""What 'mean' divides by, element by element, and what the best learning rate does with the batch size.

Concept: `reduction='mean'` averages over every element of the loss, not over examples: a D-output `MSELoss`
on B examples divides by B * D, so the gradient of the sum is B * D times the mean's. `CrossEntropyLoss` with
`ignore_index` leaves the ignored targets out of the numerator and of the denominator. And the mean does not make
the learning rate mean the same at every batch size: the mean gradient's noise falls with B, so the best lr
moves with B (the linear scaling rule of Goyal et al. scales it with B for SGD).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.data import classification_data, generator, mlp

OUTPUTS = tuple(range(1, 17))  # D, the number of outputs per example
N_FEATURES, N_CE, CLASSES, IGNORE = 4, 12, 3, -100  # the ignore_index experiment: 12 targets, 3 classes


@functools.lru_cache(maxsize=4)
def _output_models(seed: int) -> tuple[nn.Sequential, ...]:
    """The 4 -> 16 -> D MLPs of element_ratios, one per D of OUTPUTS, built once per seed: their gradients are
    taken with torch.autograd.grad, which leaves every parameter (and .grad) as it was, so they are shared."""
    return tuple(mlp((N_FEATURES, 16, d), nn.Tanh, seed=seed) for d in OUTPUTS)


def element_ratios(batch_size: int, *, seed: int = 0) -> pd.DataFrame:
    """For D = 1..16: ||grad of MSELoss(sum)|| / ||grad of MSELoss(mean)|| on B examples of a 4 -> 16 -> D MLP.

    Columns: outputs, ratio (measured), b_times_d (what 'mean' divides by), batch (B, what a per-example mean
    would divide by), mean_loss, sum_over_bd (the summed loss / (B * D): the mean, recomputed).
    """
    rows = []
    gen = generator(seed + 50_000)
    x = torch.randn(batch_size, N_FEATURES, generator=gen)  # (B, 4)
    targets = torch.randn(batch_size, max(OUTPUTS), generator=gen)  # (B, 16): the first D columns are used
    for d, model in zip(OUTPUTS, _output_models(seed)):
        norms, losses = {}, {}
        params = list(model.parameters())
        out = model(x)  # (B, D): one forward pass serves both reductions
        for reduction in ("sum", "mean"):
            loss = nn.MSELoss(reduction=reduction)(out, targets[:, :d])  # (B, D) -> a scalar
            grads = torch.autograd.grad(loss, params, retain_graph=reduction == "sum")
            norms[reduction] = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
            losses[reduction] = loss.item()
        rows.append({"outputs": d, "ratio": (norms["sum"] / norms["mean"]).item(), "b_times_d": batch_size * d,
                     "batch": batch_size, "mean_loss": losses["mean"], "sum_over_bd": losses["sum"] / (batch_size * d)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Ignored:
    examples: pd.DataFrame  # example, target (IGNORE where ignored), ignored, loss (reduction='none': 0 if ignored)
    library_mean: float  # CrossEntropyLoss(ignore_index=-100) with its default reduction='mean'
    total: float  # the per-example losses summed
    kept: int  # targets not ignored: what 'mean' divides by


def ignore_index_mean(ignored: int, *, seed: int = 0) -> Ignored:
    """CrossEntropyLoss(ignore_index=-100) on 12 targets, the first `ignored` of them set to -100 (padding, say)."""
    if not 0 <= ignored < N_CE:
        raise ValueError(f"ignored must be in [0, {N_CE - 1}]: with every target ignored the mean is 0 / 0")
    x, y = classification_data(N_CE, N_FEATURES, CLASSES, seed=seed)  # (N, 4), (N,)
    y = y.clone()
    y[:ignored] = IGNORE
    with torch.no_grad():
        logits = mlp((N_FEATURES, CLASSES), seed=seed).double()(x.double())  # (N, C)
        each = nn.CrossEntropyLoss(ignore_index=IGNORE, reduction="none")(logits, y)  # (N,): 0 where ignored
        mean = nn.CrossEntropyLoss(ignore_index=IGNORE)(logits, y).item()
    df = pd.DataFrame({"example": np.arange(N_CE), "target": y.numpy(), "ignored": (y == IGNORE).numpy(),
                       "loss": each.numpy()})
    return Ignored(df, mean, each.sum().item(), N_CE - ignored)


@dataclass(frozen=True)
class ClassWeights:
    examples: pd.DataFrame  # example, target, weight (of its target class), loss (weighted, reduction='none')
    library_mean: float  # CrossEntropyLoss(weight=w) with its default reduction='mean'
    total: float  # the weighted losses summed
    weight_sum: float  # the sum of the targets' weights: what 'mean' divides by
    rare: int  # the class given the weight


def class_weights(weight: float, *, n: int = 12, classes: int = 3, seed: int = 0) -> ClassWeights:
    """CrossEntropyLoss(weight=...): 'mean' divides the weighted sum by the sum of the targets' weights, not by N."""
    x, y = classification_data(n, N_FEATURES, classes, seed=seed)  # (N, D), (N,)
    counts = torch.bincount(y, minlength=classes).double()
    rare = int(torch.where(counts > 0, counts, torch.inf).argmin())  # the rarest class that occurs
    w = torch.ones(classes, dtype=torch.float64)
    w[rare] = weight
    with torch.no_grad():
        logits = mlp((N_FEATURES, classes), seed=seed).double()(x.double())  # (N, C), float64 so the divisions show
        each = nn.CrossEntropyLoss(weight=w, reduction="none")(logits, y)  # (N,): w[y_i] * -log p_i(y_i)
        mean = nn.CrossEntropyLoss(weight=w)(logits, y).item()
    df = pd.DataFrame({"example": np.arange(n), "target": y.numpy(), "weight": w[y].numpy(), "loss": each.numpy()})
    return ClassWeights(df, mean, each.sum().item(), w[y].sum().item(), rare)


LR_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
LR_BATCHES = (4, 32, 256)
EPOCHS = 4  # a fixed budget of examples: B = 4 takes 64 times as many steps as B = 256


def lr_by_batch(*, seed: int = 0, n_pool: int = 512) -> pd.DataFrame:
    """SGD on the mean loss for a fixed budget of EPOCHS epochs, at every lr of LR_GRID and B of LR_BATCHES.

    Columns: batch_size, lr, loss (MSE over the pool at the end; inf/NaN where a run diverged). Each lr is one
    stacked copy of the model (core.loss_scaling._Copies) trained by SGD(lr=1) on lr_i * loss_i, which is exactly
    SGD(lr=lr_i) on loss_i: the gradient of copy i is lr_i times its own.
    """
    from core.loss_scaling import _Copies
    from core.reduction import reference_problem

    rows = []
    lrs = torch.tensor(LR_GRID)
    for b in LR_BATCHES:
        model, x, y = reference_problem(seed)
        x, y = x[:n_pool], y[:n_pool]
        copies = _Copies(model, len(lrs))
        opt = torch.optim.SGD(copies.parameters(), lr=1.0)
        gen = generator(seed + 60_000 + b)
        for _ in range(EPOCHS):
            for batch in torch.randperm(n_pool, generator=gen).split(b):
                opt.zero_grad()
                losses = ((copies(x[batch]) - y[batch]) ** 2).mean(dim=(1, 2))  # (S,) each copy's MSELoss
                (lrs * losses).sum().backward()
                opt.step()
        with torch.no_grad():
            final = ((copies(x) - y) ** 2).mean(dim=(1, 2))  # (S,)
        rows += [{"batch_size": b, "lr": lr, "loss": v} for lr, v in zip(LR_GRID, final.tolist())]
    return pd.DataFrame(rows)


def best_lr(sweep: pd.DataFrame) -> dict[int, float]:
    """The lr of the grid with the lowest final loss, for each batch size (finite runs only)."""
    finite = sweep[np.isfinite(sweep.loss)]
    return {int(b): float(g.loc[g.loss.idxmin(), "lr"]) for b, g in finite.groupby("batch_size")}
