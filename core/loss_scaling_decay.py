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

from core.loss_scaling import _Copies, _scaled_backward, _trained, make_optimizer, reference_problem

DECAY_OPTIMIZERS = ("adam", "adamw", "rmsprop", "adagrad")  # each with weight_decay=wd
DECAY_STEPS = 20  # the "20-step ratio": long enough for the decay to pull the weights
DECAY_SCALES = tuple(10.0**k for k in range(-10, 5))  # every s the page's control can take


def decay_sweep(weight_decay: float, *, lr: float = 0.1, eps: float = 1e-8, seed: int = 0,
                steps: int = DECAY_STEPS, scales: tuple[float, ...] = DECAY_SCALES) -> pd.DataFrame:
    """For each optimizer with weight_decay=wd and each s: ||theta_s - theta_0|| / ||theta_1 - theta_0|| after steps.

    Columns: optimizer, scale, update_ratio. All scales train at once as stacked copies (core.loss_scaling._Copies):
    coupled and decoupled decay both act element by element, so each copy is the run at its own scale. The four
    optimizers share each forward and backward pass (core.loss_scaling._scaled_backward).
    """
    scales = tuple(scales)
    scales_t = torch.tensor((1.0, *scales))  # copy 0 is the plain run
    model, x, y = reference_problem(seed)
    parts = [_Copies(model, len(scales_t)) for _ in DECAY_OPTIMIZERS]
    opts = [make_optimizer(name, c.parameters(), lr=lr, eps=eps, weight_decay=weight_decay)
            for name, c in zip(DECAY_OPTIMIZERS, parts)]
    start = parts[0].flat()  # every optimizer starts from the same weights
    for _ in range(steps):
        for opt in opts:
            opt.zero_grad()
        _scaled_backward(parts, x, y, scales_t)
        for opt in opts:
            opt.step()
    columns = {"optimizer": [], "scale": [], "update_ratio": []}
    for name, copies in zip(DECAY_OPTIMIZERS, parts):
        moved = torch.linalg.vector_norm((copies.flat() - start).double(), dim=1)  # (S,)
        columns["optimizer"] += [name] * len(scales)
        columns["scale"] += scales
        columns["update_ratio"] += (moved / moved[0]).tolist()[1:]
    return pd.DataFrame(columns)


def adam_decay_identity(scale: float, weight_decay: float, *, lr: float = 0.1, eps: float = 1e-8, seed: int = 0,
                        steps: int = DECAY_STEPS) -> float:
    """Adam(wd, eps) on scale * loss against Adam(wd / s, eps / s) on the loss: the largest weight gap after steps,
    relative to the largest distance the first run moved a weight (0: the same run)."""
    finals = []
    for s, wd, e in ((scale, weight_decay, eps), (1.0, weight_decay / scale, eps / scale)):
        _, start, end = _trained("adam", s, lr=lr, steps=steps, eps=e, weight_decay=wd, seed=seed)
        finals.append(end)
    moved = (finals[0] - start).abs().max().item()
    return (finals[0] - finals[1]).abs().max().item() / moved if moved else 0.0
