"""Loss scaling meets weight decay: coupled decay (Adam(weight_decay=...), RMSprop, Adagrad) sees the loss scale.

Concept: Adam, RMSprop and Adagrad with `weight_decay` add wd * theta to the gradient *before* dividing by its
running size. On s * loss the gradient they divide is s * (g + (wd / s) * theta): the data term carries s and the
decay does not, so `loss / 10` is a ten times stronger L2 penalty relative to the data. Adam on s * loss with
weight decay wd and eps is exactly Adam on the loss with wd / s and eps / s. AdamW subtracts lr * wd * theta
from the weights apart from the gradient, so only eps lets the scale reach it.
"""

from __future__ import annotations

import pandas as pd
import torch

from core.loss_scaling import _Copies, flat, make_optimizer, reference_problem, train

DECAY_OPTIMIZERS = ("adam", "adamw", "rmsprop", "adagrad")  # each with weight_decay=wd
DECAY_STEPS = 20  # the "20-step ratio": long enough for the decay to pull the weights
DECAY_SCALES = tuple(10.0**k for k in range(-10, 5))  # every s the page's control can take


def decay_sweep(weight_decay: float, *, lr: float = 0.1, eps: float = 1e-8, seed: int = 0,
                steps: int = DECAY_STEPS, scales: tuple[float, ...] = DECAY_SCALES) -> pd.DataFrame:
    """For each optimizer with weight_decay=wd and each s: ||theta_s - theta_0|| / ||theta_1 - theta_0|| after steps.

    Columns: optimizer, scale, update_ratio. All scales train at once as stacked copies (core.loss_scaling._Copies):
    coupled and decoupled decay both act element by element, so each copy is the run at its own scale.
    """
    scales_t = torch.tensor((1.0, *scales))  # copy 0 is the plain run
    rows = []
    for name in DECAY_OPTIMIZERS:
        model, x, y = reference_problem(seed)
        copies = _Copies(model, len(scales_t))
        opt = make_optimizer(name, copies.parameters(), lr=lr, eps=eps, weight_decay=weight_decay)
        start = copies.flat()
        for _ in range(steps):
            opt.zero_grad()
            losses = ((copies(x) - y) ** 2).mean(dim=(1, 2))  # (S,) each copy's MSELoss
            (scales_t * losses).sum().backward()
            opt.step()
        moved = torch.linalg.vector_norm((copies.flat() - start).double(), dim=1)  # (S,)
        ratio = (moved / moved[0]).tolist()
        rows += [{"optimizer": name, "scale": s, "update_ratio": ratio[i + 1]} for i, s in enumerate(scales)]
    return pd.DataFrame(rows)


def adam_decay_identity(scale: float, weight_decay: float, *, lr: float = 0.1, eps: float = 1e-8, seed: int = 0,
                        steps: int = DECAY_STEPS) -> float:
    """Adam(wd, eps) on scale * loss against Adam(wd / s, eps / s) on the loss: the largest weight gap after steps,
    relative to the largest distance the first run moved a weight (0: the same run)."""
    finals = []
    for s, wd, e in ((scale, weight_decay, eps), (1.0, weight_decay / scale, eps / scale)):
        model, x, y = reference_problem(seed)
        train(model, x, y, optimizer="adam", scale=s, lr=lr, steps=steps, eps=e, weight_decay=wd)
        finals.append(flat(model))
    moved = (finals[0] - flat(reference_problem(seed)[0])).abs().max().item()
    return (finals[0] - finals[1]).abs().max().item() / moved if moved else 0.0
