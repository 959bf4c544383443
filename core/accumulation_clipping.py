"""Clipping and the LR scheduler under accumulation: both act once per optimizer step, after the last micro-batch.

Concept: with k micro-batches per step, `.grad` holds the whole batch's gradient only after the k-th backward().
`clip_grad_norm_` must see that sum, and `scheduler.step()` must count optimizer steps, so both go between the
last backward() and `optimizer.step()`. Clipping each micro-batch's gradient before adding it is another
algorithm: the threshold then bounds each of k pieces, not their sum, and a piece that was cut weighs less than
its share. Stepping the scheduler after every micro-batch runs its schedule k times too fast.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from core.accumulation import example_losses, micro_loss, reference_problem

CLIP_RUNS = ("one batch", "clip once per step", "clip each micro-batch", "scheduler per micro-batch")
CLIP_STEPS, CLIP_LR = 20, 0.5  # SGD steps and the schedule's starting lr: LinearLR from lr to 0 over CLIP_STEPS


def clip_accumulation_runs(micro_batches: int, max_norm: float, *, seed: int = 0) -> pd.DataFrame:
    """SGD with clip_grad_norm_(max_norm) and a LinearLR schedule, on one batch and on k accumulated micro-batches.

    Runs (CLIP_RUNS): the one-batch reference; accumulation done right (clip the summed .grad once, then step,
    then scheduler.step()); clipping each micro-batch's gradient before adding it; and one scheduler.step() per
    micro-batch, k per optimizer step (its gradient is the one batch's, which the second run shows accumulation
    reproduces, so it is computed in one backward). Every micro-batch loss is its summed squared error over all
    24 examples (global_count), so the summed .grad is the one batch's gradient. Columns: step, run, loss
    (full-batch MSE before the step), lr (the lr the step used), grad_norm (the norm of the gradient the step
    applied), clipped (whether any clip cut).
    """
    rows = []
    for run in CLIP_RUNS:
        model, x, y = reference_problem(seed=seed)
        params = list(model.parameters())
        optimizer = torch.optim.SGD(params, lr=CLIP_LR)
        scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=CLIP_STEPS)
        k = micro_batches if run in CLIP_RUNS[1:3] else 1  # micro-batches per optimizer step
        for step in range(CLIP_STEPS):
            with torch.no_grad():
                loss = nn.MSELoss()(model(x), y).item()
            lr, cut = optimizer.param_groups[0]["lr"], False
            optimizer.zero_grad()
            applied = [torch.zeros_like(p) for p in params]
            for xb, yb in zip(x.tensor_split(k), y.tensor_split(k)):
                mean, summed = example_losses(model, xb, yb)
                micro_loss(mean, summed, "global_count", k, len(x)).backward()  # adds into .grad
                if run == "clip each micro-batch":  # a different algorithm: clip this micro-batch's piece alone
                    cut |= nn.utils.clip_grad_norm_(params, max_norm).item() > max_norm
                    for a, p in zip(applied, params):
                        a += p.grad
                        p.grad.zero_()
            if run == "clip each micro-batch":
                for a, p in zip(applied, params):
                    p.grad.copy_(a)
            else:
                cut = nn.utils.clip_grad_norm_(params, max_norm).item() > max_norm  # once, on the whole sum
            norm = nn.utils.get_total_norm([p.grad for p in params]).item()
            rows.append({"step": step, "run": run, "loss": loss, "lr": lr, "grad_norm": norm, "clipped": cut})
            optimizer.step()
            for _ in range(micro_batches if run == "scheduler per micro-batch" else 1):
                scheduler.step()  # right: once per optimizer step; the bug: once per micro-batch
    return pd.DataFrame(rows)


def first_step_gradients(micro_batches: int, max_norm: float, *, seed: int = 0) -> dict[str, float]:
    """At the first step: the norm of the gradient applied when clipping once, when clipping each micro-batch, the
    unclipped norm, and the relative difference between the two clipped gradients."""
    model, x, y = reference_problem(seed=seed)
    params = list(model.parameters())
    pieces = []
    for xb, yb in zip(x.tensor_split(micro_batches), y.tensor_split(micro_batches)):
        mean, summed = example_losses(model, xb, yb)
        grads = torch.autograd.grad(micro_loss(mean, summed, "global_count", micro_batches, len(x)), params)
        pieces.append(torch.cat([g.flatten() for g in grads]))
    total = torch.stack(pieces).sum(0)
    once = total * min(1.0, max_norm / (total.norm().item() + 1e-6))  # clip_grad_norm_'s own factor
    each = sum(p * min(1.0, max_norm / (p.norm().item() + 1e-6)) for p in pieces)
    return {"unclipped": total.norm().item(), "once": once.norm().item(), "each": each.norm().item(),
            "difference": ((each - once).norm() / once.norm()).item(),
            "pieces_cut": sum(p.norm().item() > max_norm for p in pieces)}
