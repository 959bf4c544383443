"""Forgetting zero_grad(): backward() adds into .grad, so without zeroing, SGD applies the sum of every gradient.

Concept: `.grad` is an accumulator. Zeroed before each backward(), it holds this step's gradient and SGD is
plain gradient descent, stable for lr < 2/λ. Never zeroed, it holds the running sum of all gradients: a
velocity with no friction, which swings around the minimum forever for lr < 4/λ and diverges beyond. And
since PyTorch 2.0, zero_grad() sets .grad to None, which an optimizer treats differently from zeros.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.data import generator, seeded_init_

ZERO_GRAD_RUNS = ("zero_grad() every step", "zero_grad() never")


def flat_grad(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def line_data() -> tuple[torch.Tensor, torch.Tensor]:
    """Six points on y = 2x, x evenly from -1 to 1: the MSE's Hessian in (w, b) is 2·diag(mean x², 1)."""
    x = torch.linspace(-1.0, 1.0, 6).unsqueeze(1)  # (N, 1)
    return x, 2 * x


def zero_grad_runs(lr: float = 0.1, *, steps: int = 40, seed: int = 0) -> pd.DataFrame:
    """Forgetting zero_grad(): SGD on y = 2x with and without zeroing the gradients before each backward().

    Columns: step, run, loss (before the step; may be inf/NaN where a run diverged), applied (the norm of
    .grad that step() used), own (the norm of this step's gradient alone), w, b. Without zeroing, the
    applied gradient is the sum of every gradient so far: a ball with no friction, so SGD oscillates
    around the minimum for lr·λ < 4 and diverges beyond (λ, the Hessian's largest eigenvalue, is 2 here).
    """
    x, y = line_data()
    rows = []
    for run in ZERO_GRAD_RUNS:
        model = seeded_init_(nn.Linear(1, 1, device="meta"), generator(seed))
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        previous = torch.zeros(2)
        for step in range(steps):
            if run == ZERO_GRAD_RUNS[0]:
                opt.zero_grad()
            loss = nn.MSELoss()(model(x), y)
            loss.backward()  # adds this step's gradient into .grad
            applied = flat_grad(model)
            own = applied - previous if run == ZERO_GRAD_RUNS[1] else applied
            rows.append({"step": step, "run": run, "loss": loss.item(), "applied": applied.norm().item(),
                         "own": own.norm().item(), "w": model.weight.item(), "b": model.bias.item()})
            previous = applied.clone()
            opt.step()
    return pd.DataFrame(rows)


def run_states(runs: pd.DataFrame) -> dict[str, str]:
    """What each zero_grad run did, read from its losses: settles, slow, oscillates or diverged.

    The zeroed run diverged if its loss went non-finite or ended above its start, settles if it ended below
    1/1000 of its start. The unzeroed run diverged if its loss went non-finite or past 10 000 times its start;
    otherwise it oscillates (with accumulated gradients it cannot settle: nothing damps the swing).
    """
    states = {}
    for run, loss in runs.groupby("run", sort=False).loss:
        first, last, finite = loss.iloc[0], loss.iloc[-1], bool(np.isfinite(loss).all())
        if run == ZERO_GRAD_RUNS[0]:
            states[run] = "diverged" if not finite or last > first else "settles" if last < 1e-3 * first else "slow"
        else:
            states[run] = "diverged" if not finite or loss.max() > 1e4 * first else "oscillates"
    return states


def hessian_eigenvalues() -> torch.Tensor:
    """The eigenvalues of the line's MSE Hessian in (w, b), by autograd: they set SGD's stability limits."""
    x, y = line_data()

    def loss(params: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(x * params[0] + params[1], y)

    return torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, torch.zeros(2)))


def sgd_factor(lr: float) -> float:
    """max_i |1 - lr·λ_i|: how much one plain SGD step multiplies the error along the worst direction (< 1: stable)."""
    return max(abs(1 - lr * lam) for lam in hessian_eigenvalues().tolist())


def none_versus_zero(*, lr: float = 0.1, warmup: int = 3, seed: int = 0) -> pd.DataFrame:
    """zero_grad(set_to_none=True), PyTorch's default since 2.0, against zeroing in place.

    Two heads share an input; a few steps train both, then one step's loss uses head A only. Head B's
    .grad is then None (the optimizer skips it) or a zero tensor (the optimizer still runs its update:
    momentum and Adam's moments keep moving it, AdamW's weight decay shrinks it). Columns: optimizer,
    set_to_none, grad (what head B's .grad held), moved (max |change| of head B in that step).
    """
    factories = {
        "sgd": lambda p: torch.optim.SGD(p, lr=lr),
        "momentum": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
        "adam": lambda p: torch.optim.Adam(p, lr=lr),
        "adamw": lambda p: torch.optim.AdamW(p, lr=lr),  # weight_decay=0.01, torch's default
    }
    x, y = line_data()
    rows = []
    for name, factory in factories.items():
        for set_to_none in (True, False):
            gen = generator(seed)
            head_a, head_b = (seeded_init_(nn.Linear(1, 1, device="meta"), gen) for _ in range(2))
            opt = factory([*head_a.parameters(), *head_b.parameters()])
            for _ in range(warmup):  # both heads learn: momentum and moment estimates fill up
                opt.zero_grad(set_to_none=set_to_none)
                (nn.MSELoss()(head_a(x), y) + nn.MSELoss()(head_b(x), -y)).backward()
                opt.step()
            opt.zero_grad(set_to_none=set_to_none)
            nn.MSELoss()(head_a(x), y).backward()  # this batch concerns head A only
            before = [p.detach().clone() for p in head_b.parameters()]
            grad = "None" if head_b.weight.grad is None else "zeros"
            opt.step()
            moved = max((p.detach() - b).abs().max().item() for p, b in zip(head_b.parameters(), before))
            rows.append({"optimizer": name, "set_to_none": str(set_to_none), "grad": grad, "moved": moved})
    return pd.DataFrame(rows)
