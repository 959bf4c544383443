"""Clipping and the LR scheduler under accumulation: both act once per optimizer step, after the last micro-batch.

Concept: with k micro-batches per step, `.grad` holds the whole batch's gradient only after the k-th backward().
`clip_grad_norm_` must see that sum, and `scheduler.step()` must count optimizer steps, so both go between the
last backward() and `optimizer.step()`. Clipping each micro-batch's gradient before adding it is another
algorithm: the threshold then bounds each of k pieces, not their sum, and a piece that was cut weighs less than
its share. Stepping the scheduler after every micro-batch runs its schedule k times too fast.
"""

from __future__ import annotations

import copy

import pandas as pd
import torch
from torch import nn

from core.accumulation import reference_problem

CLIP_RUNS = ("one batch", "clip once per step", "clip each micro-batch", "scheduler per micro-batch")
CLIP_STEPS, CLIP_LR = 20, 0.5  # SGD steps and the schedule's starting lr: LinearLR from lr to 0 over CLIP_STEPS


def micro_batch_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, micro_batches: int):
    """Every micro-batch's own gradient of its global_count loss, from one forward and one backward pass.

    Returns the whole batch's mean squared error and, per parameter, a (k, *shape) tensor whose row j is the
    gradient that micro-batch j's backward() alone would put in .grad. The k micro-batch losses are stacked into
    one vector, and is_grads_batched runs the backward for every row of the identity at once: row j picks loss j.
    """
    squared = (model(x) - y) ** 2  # (B, 1): every example's squared error
    losses = torch.stack([part.sum() for part in squared.tensor_split(micro_batches)]) / len(x)  # (k,)
    grads = torch.autograd.grad(losses, list(model.parameters()), torch.eye(micro_batches), is_grads_batched=True)
    return squared.mean(), grads


def clip_accumulation_runs(micro_batches: int, max_norm: float, *, seed: int = 0) -> pd.DataFrame:
    """SGD with clip_grad_norm_(max_norm) and a LinearLR schedule, on one batch and on k accumulated micro-batches.

    Runs (CLIP_RUNS): the one-batch reference; accumulation done right (clip the summed .grad once, then step,
    then scheduler.step()); clipping each micro-batch's gradient before adding it; and one scheduler.step() per
    micro-batch, k per optimizer step (its gradient is the one batch's, which the second run shows accumulation
    reproduces, so it is computed in one backward). Every micro-batch loss is its summed squared error over all
    24 examples (global_count), so the summed .grad is the one batch's gradient. The pieces that clipping each
    micro-batch needs apart come from one batched backward pass (micro_batch_gradients). Columns: step, run, loss
    (full-batch MSE before the step), lr (the lr the step used), grad_norm (the norm of the gradient the step
    applied), clipped (whether any clip cut).
    """
    start, x, y = reference_problem(seed=seed)
    rows = []
    for run in CLIP_RUNS:
        model = copy.deepcopy(start)  # every run from the same start
        params = list(model.parameters())
        optimizer = torch.optim.SGD(params, lr=CLIP_LR)
        scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=CLIP_STEPS)
        for step in range(CLIP_STEPS):
            lr = optimizer.param_groups[0]["lr"]
            optimizer.zero_grad()
            if run == "clip once per step":  # accumulation done right
                with torch.no_grad():
                    loss = nn.functional.mse_loss(model(x), y).item()
                for xb, yb in zip(x.tensor_split(micro_batches), y.tensor_split(micro_batches)):
                    (nn.functional.mse_loss(model(xb), yb, reduction="sum") / len(x)).backward()  # adds into .grad
                cut = nn.utils.clip_grad_norm_(params, max_norm).item() > max_norm  # once, on the whole sum
            elif run == "clip each micro-batch":  # a different algorithm: clip each micro-batch's piece alone
                mean, pieces = micro_batch_gradients(model, x, y, micro_batches)  # per parameter: (k, *shape)
                loss = mean.item()
                # each piece's norm as clip_grad_norm_ takes it: the norm of its per-parameter norms; (k,)
                norms = torch.stack([g.flatten(1).norm(dim=1) for g in pieces]).norm(dim=0)
                factors = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # clip_grad_norm_'s own factor, one per piece
                for p, g in zip(params, pieces):
                    p.grad = torch.tensordot(factors, g, 1)  # the sum of the clipped pieces
                cut = bool((norms > max_norm).any())
            else:  # one batch; the scheduler run's gradient is the one batch's too
                out = model(x)
                loss = nn.functional.mse_loss(out, y).item()  # the full-batch loss before the step
                (nn.functional.mse_loss(out, y, reduction="sum") / len(x)).backward()
                cut = nn.utils.clip_grad_norm_(params, max_norm).item() > max_norm
            norm = nn.utils.get_total_norm([p.grad for p in params]).item()
            rows.append({"step": step, "run": run, "loss": loss, "lr": lr, "grad_norm": norm, "clipped": cut})
            if lr == 0:  # the schedule has run out: SGD stands still, so every later step repeats this one
                rows += [rows[-1] | {"step": later} for later in range(step + 1, CLIP_STEPS)]
                break
            optimizer.step()
            for _ in range(micro_batches if run == "scheduler per micro-batch" else 1):
                scheduler.step()  # right: once per optimizer step; the bug: once per micro-batch
    return pd.DataFrame(rows)


def first_step_gradients(micro_batches: int, max_norm: float, *, seed: int = 0) -> dict[str, float]:
    """At the first step: the norm of the gradient applied when clipping once, when clipping each micro-batch, the
    unclipped norm, and the relative difference between the two clipped gradients."""
    model, x, y = reference_problem(seed=seed)
    _, grads = micro_batch_gradients(model, x, y, micro_batches)
    pieces = torch.cat([g.flatten(1) for g in grads], 1)  # (k, P): row j is micro-batch j's gradient
    total = pieces.sum(0)
    once = total * min(1.0, max_norm / (total.norm().item() + 1e-6))  # clip_grad_norm_'s own factor
    each = sum(p * min(1.0, max_norm / (p.norm().item() + 1e-6)) for p in pieces)
    return {"unclipped": total.norm().item(), "once": once.norm().item(), "each": each.norm().item(),
            "difference": ((each - once).norm() / once.norm()).item(),
            "pieces_cut": sum(p.norm().item() > max_norm for p in pieces)}
