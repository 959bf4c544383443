"""Accuracy vs loss, part two: what accuracy counts. Class imbalance, and the bookkeeping over batches.

Concept: accuracy is a share of examples, so it inherits the class shares of the data (a constant
predictor scores the majority share), and it must be counted per example, not averaged per batch,
or a short last batch weighs as much as a full one. Experiments only; the page lives in pages/.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from core.data import generator, seeded_init_

# Experiment 5's data: two unit Gaussians in 2-D whose means are 2.5 apart, so even the best
# balanced classifier errs on about 11% (the overlap); 1000 examples to train on, 2000 to test.
N_TRAIN, N_TEST, MEAN_GAP, STEPS, LR = 1000, 2000, 2.5, 200, 0.1
MODELS = ("majority class", "plain loss", "weighted loss")


def imbalanced_data(n: int, majority_share: float, *, seed: int = 0, stream: int = 0) -> tuple[torch.Tensor, ...]:
    """Class imbalance: round(n * majority_share) examples of class 0, the rest of class 1. x (N, 2), y (N,)."""
    if not 0.5 <= majority_share <= 1.0:
        raise ValueError(f"majority_share must lie in [0.5, 1], got {majority_share}")
    n_major = math.floor(n * majority_share + 0.5)
    gen = generator(seed + 50_000 + stream)
    y = torch.cat([torch.zeros(n_major, dtype=torch.long), torch.ones(n - n_major, dtype=torch.long)])  # (N,)
    shift = torch.tensor([MEAN_GAP, 0.0])
    return torch.randn(n, 2, generator=gen) + y[:, None] * shift, y


def class_weights(y: torch.Tensor, classes: int = 2) -> torch.Tensor:
    """Weights for nn.CrossEntropyLoss(weight=...): n / (classes * n_c), 0 for a class with no examples."""
    counts = torch.bincount(y, minlength=classes).double()
    return torch.where(counts > 0, len(y) / (classes * counts.clamp(min=1)), 0.0).float()


def train_linear(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None, *, seed: int = 0) -> nn.Linear:
    """A linear classifier (logistic regression) trained full-batch by Adam on nn.CrossEntropyLoss(weight=weight)."""
    return train_linears(x, y, (weight,), seed=seed)[0]


def train_linears(x: torch.Tensor, y: torch.Tensor, weights: tuple[torch.Tensor | None, ...], *,
                  seed: int = 0) -> list[nn.Linear]:
    """train_linear for each loss weight, side by side: the runs share each step's Python work, never their numbers.

    Each run starts from the same seeded init and takes STEPS steps of torch.optim.Adam(lr=LR)'s update (betas
    0.9 and 0.999, eps 1e-8), spelled out on all the runs' tensors at once; the gradients are autograd's, bit for
    bit (_linear_gradients).
    """
    models = [seeded_init_(nn.Linear(2, 2, device="meta"), generator(seed)) for _ in weights]
    runs = [(model.weight.detach(), model.bias.detach()) for model in models]  # trained in place
    params = [p for run in runs for p in run]
    exp_avg, exp_avg_sq = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, STEPS + 1):
        grads = [g for (w, b), weight in zip(runs, weights) for g in _linear_gradients(w, b, x, y, weight)]
        torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - beta2)
        step_size = LR / (1 - beta1 ** float(step))
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, (1 - beta2 ** float(step)) ** 0.5)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, exp_avg, denom, value=-step_size)
    return models


def _linear_gradients(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                      weight: torch.Tensor | None) -> list[torch.Tensor]:
    """The gradient of nn.CrossEntropyLoss(weight=weight) of x @ w.T + b, for [w, b]: what autograd returns, bit for
    bit (the same backward kernels on the same tensors), without the autograd engine's cost per step."""
    log_p = torch.log_softmax(F.linear(x, w, b), dim=1)  # (N, K)
    _, total = torch.ops.aten.nll_loss_forward(log_p, y, weight, 1, -100)  # the weighted mean's denominator
    d_log_p = torch.ops.aten.nll_loss_backward(torch.tensor(1.0), log_p, y, weight, 1, -100, total)
    dz = torch.ops.aten._log_softmax_backward_data(d_log_p, log_p, 1, log_p.dtype)  # (N, K)
    return [dz.t().mm(x), dz.sum(0)]


def confusion(pred: torch.Tensor, y: torch.Tensor, classes: int = 2) -> torch.Tensor:
    """The confusion matrix: row = true class, column = predicted class, entries are counts. (K, K)"""
    return torch.bincount(y * classes + pred, minlength=classes * classes).reshape(classes, classes)


def recalls(matrix: torch.Tensor) -> list[float]:
    """Recall of each class: right / present. NaN for a class with no examples."""
    present = matrix.sum(dim=1).double()
    return (matrix.diagonal().double() / present).tolist()


@dataclass(frozen=True)
class Imbalance:
    metrics: pd.DataFrame  # model, accuracy, balanced_accuracy, recall_majority, recall_minority
    confusion: pd.DataFrame  # model, true, predicted, count, row_share (NaN in a class's row with no examples)
    majority_share: float  # the test set's realised share of class 0
    weights: tuple[float, float]  # the weight= given to the weighted loss


@functools.lru_cache(maxsize=8)  # two figures and the page read one run; bounded (DESIGN rule 7)
def imbalance(majority_share: float, *, seed: int = 0) -> Imbalance:
    """Class imbalance: the majority predictor, a plain and a class-weighted linear classifier, on the test set."""
    x, y = imbalanced_data(N_TRAIN, majority_share, seed=seed)
    x_test, y_test = imbalanced_data(N_TEST, majority_share, seed=seed, stream=1)
    weights = class_weights(y)
    preds = {"majority class": torch.zeros_like(y_test)}  # class 0 has round(n * share) >= n / 2 examples
    for name, model in zip(("plain loss", "weighted loss"), train_linears(x, y, (None, weights), seed=seed)):
        with torch.no_grad():
            preds[name] = model(x_test).argmax(dim=1)
    rows, cells = [], []
    labels = ("majority", "minority")
    for name, pred in preds.items():
        matrix = confusion(pred, y_test)
        recall = recalls(matrix)
        present = [r for r in recall if not math.isnan(r)]
        rows.append({"model": name, "accuracy": (pred == y_test).double().mean().item(),
                     "balanced_accuracy": sum(present) / len(present),
                     "recall_majority": recall[0], "recall_minority": recall[1]})
        for t in range(2):
            for p in range(2):
                total = int(matrix[t].sum())
                cells.append({"model": name, "true": labels[t], "predicted": labels[p], "count": int(matrix[t, p]),
                              "row_share": int(matrix[t, p]) / total if total else math.nan})
    share = (y_test == 0).double().mean().item()
    return Imbalance(pd.DataFrame(rows), pd.DataFrame(cells), share, tuple(weights.tolist()))


def batch_counts(logits: torch.Tensor, labels: torch.Tensor, batch_size: int) -> pd.DataFrame:
    """Bookkeeping: one row per batch of a DataLoader (the last batch may be short), as d2l's evaluation loop sees it.

    Columns: batch, size, correct (a count, as d2l's accuracy() returns), accuracy (correct / size), loss (the
    batch mean, as nn.CrossEntropyLoss() returns).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    # drop_last=False; a generator of its own, since iterating a DataLoader draws a base seed from its generator,
    # which is otherwise the global RNG every session of the server shares
    loader = DataLoader(TensorDataset(logits, labels), batch_size=batch_size, generator=torch.Generator())
    loss_fn, rows = nn.CrossEntropyLoss(), []
    for i, (z, y) in enumerate(loader):  # z (B, K), y (B,)
        correct = int((z.argmax(dim=1) == y).sum())
        rows.append({"batch": i, "size": len(y), "correct": correct, "accuracy": correct / len(y),
                     "loss": loss_fn(z.double(), y).item()})
    return pd.DataFrame(rows)


def bookkeeping_summary(batches: pd.DataFrame) -> dict:
    """Counting right (sum of correct / number of examples) against averaging the per-batch means."""
    n = int(batches["size"].sum())
    return {
        "n": n, "batches": len(batches), "last_size": int(batches["size"].iloc[-1]),
        "accuracy_counted": float(batches.correct.sum() / n), "accuracy_averaged": float(batches.accuracy.mean()),
        "loss_counted": float((batches.loss * batches["size"]).sum() / n),  # d2l: float(l) * len(y), summed, / n
        "loss_averaged": float(batches.loss.mean()),
        "last_accuracy": float(batches.accuracy.iloc[-1]),
    }
