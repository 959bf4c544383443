"""Training through an explosion: clipping, and surviving a step whose gradients are not finite.

Concept: at a learning rate that is too large, SGD's steps feed the growth of the very gradients that
make them, until the loss overflows. `clip_grad_norm_` bounds every step at lr * max_norm by rescaling
all gradients together, keeping their direction; `clip_grad_value_` clamps each entry, which turns the
direction. Neither ever enlarges a gradient. A single non-finite gradient (a corrupt example, an
overflow) poisons the weights for good unless the step is skipped, which is what
`torch.amp.GradScaler` does, or refused loudly with `clip_grad_norm_(..., error_if_nonfinite=True)`.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.data import mlp, regression_data

CLIPS = ("none", "norm", "value")
GUARDS = ("none", "skip", "grad_scaler")
# The clipping problem: a small tanh MLP on 128 regression examples, full batch, plain SGD. At lr = 1
# its unclipped run overflows within a few dozen steps; at lr = 0.3 it trains.
SIZES, N_EXAMPLES = (8, 32, 32, 1), 128
N_PARAMETERS = sum(i * o + o for i, o in zip(SIZES[:-1], SIZES[1:]))  # weights and biases: 1377
SAFE_LR, BATCH, POISON_STEP = 0.3, 32, 20  # the surviving experiment: minibatches, one of them corrupt


def reference_problem(seed: int = 0) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """The model (8 -> 32 -> 32 -> 1, tanh) and its data x (N, 8), y (N, 1), all drawn from seed."""
    x, y = regression_data(N_EXAMPLES, SIZES[0], seed=seed)
    return mlp(SIZES, nn.Tanh, seed=seed), x, y


def check_clip(clip: str) -> str:
    """clip if it is one of CLIPS, else a ValueError that lists the valid ones."""
    if clip not in CLIPS:
        raise ValueError(f"unknown clip {clip!r}; valid: {', '.join(CLIPS)}")
    return clip


def clip_gradients(parameters: list[nn.Parameter], clip: str, threshold: float) -> tuple[float, float]:
    """Clip the gradients in place as `clip` says; return their global L2 norm before and after."""
    before, after = clip_and_measure(parameters, clip, threshold)
    return before.item(), after.item()


def clip_and_measure(parameters: list[nn.Parameter], clip: str,
                     threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """clip_gradients, with the two norms left as 0-d tensors (no clip: the same norm, measured once)."""
    check_clip(clip)
    grads = [p.grad for p in parameters]
    if clip == "norm":
        before = nn.utils.clip_grad_norm_(parameters, max_norm=threshold)  # returns the norm before clipping
    else:
        before = nn.utils.get_total_norm(grads)
        if clip == "none":
            return before, before
        nn.utils.clip_grad_value_(parameters, clip_value=threshold)  # each entry into [-threshold, threshold]
    return before, nn.utils.get_total_norm(grads)


def training_steps(clip: str, threshold: float, *, lr: float, seed: int = 0) -> Iterator[tuple[float, float, float]]:
    """Gradient clipping against a learning rate that blows up: full-batch SGD, clipping between backward and step.

    Yields (loss, grad_norm, clipped_grad_norm) per step, the norms global L2 norms before clipping (what
    clip_grad_norm_ returns) and after. The run ends after the first non-finite loss or norm: a step then
    would write inf or NaN into every weight.
    """
    model, x, y = reference_problem(seed)
    parameters = list(model.parameters())
    opt, mse = torch.optim.SGD(parameters, lr=lr), nn.MSELoss()
    while True:
        opt.zero_grad()
        loss = mse(model(x), y)
        loss.backward()
        before, after = clip_and_measure(parameters, clip, threshold)  # between backward and step
        row = torch.stack((loss.detach(), before, after))
        yield tuple(row.tolist())
        if not row.isfinite().all():
            return
        opt.step()


class TrainingRun:
    """The rows of one training_steps run, computed as far as anyone asked so far (thread-safe).

    A run of n steps is the first n steps of any longer one, so one run serves every step count.
    """

    def __init__(self, clip: str, threshold: float, lr: float, seed: int) -> None:
        self._steps = training_steps(clip, threshold, lr=lr, seed=seed)
        self._rows: list[tuple[float, float, float]] = []
        self._lock = threading.Lock()

    def first(self, steps: int) -> list[tuple[float, float, float]]:
        """The first `steps` rows, fewer if the run went non-finite before."""
        with self._lock:
            self._rows.extend(itertools.islice(self._steps, max(steps - len(self._rows), 0)))
            return self._rows[:steps]


@functools.lru_cache(maxsize=24)  # three clip modes for each of the last few (threshold, lr, seed)
def training_run(clip: str, threshold: float, lr: float, seed: int) -> TrainingRun:
    """The shared TrainingRun of these settings: a longer step count continues it, a shorter one reads its start."""
    check_clip(clip)
    return TrainingRun(clip, threshold, lr, seed)


def clipped_training(clip: str, threshold: float, *, lr: float, steps: int, seed: int = 0) -> pd.DataFrame:
    """training_steps as a frame. Columns: step, loss, grad_norm, clipped_grad_norm; a blow-up's row is the last."""
    rows = training_run(clip, threshold, lr, seed).first(steps)
    loss, before, after = zip(*rows) if rows else ((), (), ())
    return pd.DataFrame({"step": range(len(rows)), "loss": loss, "grad_norm": before, "clipped_grad_norm": after})


def clipping_runs(threshold: float, *, lr: float, steps: int, seed: int = 0) -> pd.DataFrame:
    """clipped_training for every clip mode at the same threshold, lr and start, with a clipping column."""
    return pd.concat([clipped_training(c, threshold, lr=lr, steps=steps, seed=seed).assign(clipping=c) for c in CLIPS],
                     ignore_index=True)


def blowups(runs: pd.DataFrame) -> dict[str, int]:
    """For each run that blew up, the first step whose loss or gradient norm was not finite."""
    found: dict[str, int] = {}
    clipping, steps = runs.clipping.to_numpy(), runs.step.to_numpy()
    names = pd.unique(clipping)
    for column in ("loss", "grad_norm"):  # in the order first_nonfinite(runs, column, by="clipping") finds them
        bad = ~np.isfinite(runs[column].to_numpy(dtype=float))
        for run in names:
            at = steps[bad & (clipping == run)]
            if len(at):
                found[run] = int(min(at[0], found.get(run, at[0])))
    return found


def clip_2d(g_x: float, g_y: float, threshold: float) -> pd.DataFrame:
    """Norm versus value clipping on one 2-D gradient, through the real clip_grad_norm_ and clip_grad_value_.

    Columns: vector ("gradient", "clip_grad_norm_", "clip_grad_value_"), x, y, norm, angle (degrees from
    the x axis), turn (degrees between it and the original gradient).
    """
    rows = []
    for name in ("gradient", "clip_grad_norm_", "clip_grad_value_"):
        p = nn.Parameter(torch.zeros(2, dtype=torch.float64))
        p.grad = torch.tensor([g_x, g_y], dtype=torch.float64)
        if name == "clip_grad_norm_":
            nn.utils.clip_grad_norm_([p], max_norm=threshold)
        elif name == "clip_grad_value_":
            nn.utils.clip_grad_value_([p], clip_value=threshold)
        x, y = p.grad.tolist()
        rows.append({"vector": name, "x": x, "y": y, "norm": math.hypot(x, y), "angle": math.degrees(math.atan2(y, x))})
    df = pd.DataFrame(rows)
    turn = (df.angle - df.angle.iloc[0] + 180) % 360 - 180  # signed difference, wrapped into [-180, 180)
    return df.assign(turn=np.where(df.norm > 0, turn.abs(), 0.0))


@dataclass(frozen=True)
class Survival:
    curves: pd.DataFrame  # step, guard, loss (on all 128 clean examples, after the step), skipped
    error_step: int | None  # where clip_grad_norm_(..., error_if_nonfinite=True) raised
    error: str  # the message it raised with


def poisoned_batches(steps: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`steps` minibatches of 32, cycling through the reference data; at POISON_STEP one example of the batch has
    an infinite feature (a corrupt record)."""
    if steps <= POISON_STEP:
        raise ValueError(f"steps must exceed the poisoned step {POISON_STEP}; got {steps}")
    _, x, y = reference_problem(seed)
    batches = list(zip(x.split(BATCH), y.split(BATCH)))  # (B, 8), (B, 1) each
    chosen = [batches[step % len(batches)] for step in range(steps)]
    x_bad = chosen[POISON_STEP][0].clone()
    x_bad[0, 0] = math.inf
    chosen[POISON_STEP] = (x_bad, chosen[POISON_STEP][1])
    return chosen


def surviving_runs(*, steps: int = 60, seed: int = 0) -> Survival:
    """Surviving a non-finite gradient: no guard; skip the step when the norm is not finite; GradScaler skips it.

    Also trains with clip_grad_norm_(..., error_if_nonfinite=True), which raises at the poisoned step.
    """
    batches = poisoned_batches(steps, seed)
    curves = []
    for guard in GUARDS:
        model, x_all, y_all = reference_problem(seed)
        optimizer = torch.optim.SGD(model.parameters(), lr=SAFE_LR)
        scaler = torch.amp.GradScaler("cpu", enabled=guard == "grad_scaler")
        for step, (x, y) in enumerate(batches):
            optimizer.zero_grad()
            scale = scaler.get_scale()  # 1.0 when the scaler is disabled
            scaler.scale(nn.MSELoss()(model(x), y)).backward()  # a plain backward() when the scaler is disabled
            if guard == "none":
                optimizer.step()
                skipped = False
            elif guard == "skip":
                skipped = not torch.isfinite(nn.utils.get_total_norm([p.grad for p in model.parameters()])).item()
                if not skipped:
                    optimizer.step()
            else:
                scaler.step(optimizer)  # unscales, checks for inf/NaN, and skips optimizer.step() if it finds any
                scaler.update()  # halves the scale after a skip
                skipped = scaler.get_scale() < scale
            with torch.no_grad():
                loss = nn.MSELoss()(model(x_all), y_all).item()  # on all 128 clean examples
            curves.append({"step": step, "guard": guard, "loss": loss, "skipped": skipped})
    error_step, error = None, ""
    model, _, _ = reference_problem(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=SAFE_LR)
    for step, (x, y) in enumerate(batches):
        optimizer.zero_grad()
        nn.MSELoss()(model(x), y).backward()
        try:
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0, error_if_nonfinite=True)
        except RuntimeError as exc:
            error_step, error = step, str(exc)
            break
        optimizer.step()
    return Survival(pd.DataFrame(curves), error_step, error)


def poisoned_step(seed: int = 0) -> dict:
    """The corrupt batch itself, from the start weights: its loss is finite, only its gradients are NaN.

    The infinite feature reaches a first-layer unit as ±inf, tanh(±inf) = ±1, so every output and the loss stay
    finite. Backward multiplies tanh'(±inf) = 0 by the infinite input, 0 · inf = NaN: the gradients of the
    first-layer weights that multiply the bad feature are NaN, and one SGD step spreads NaN from there into every
    output. A guard on torch.isfinite(loss) lets this batch through.
    Returns the batch loss, whether it is finite, and how many of the gradient entries are not finite.
    """
    model, _, _ = reference_problem(seed)
    x, y = poisoned_batches(POISON_STEP + 1, seed)[POISON_STEP]
    loss = nn.MSELoss()(model(x), y)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    return {"batch_loss": loss.item(), "loss_finite": bool(torch.isfinite(loss).item()),
            "nonfinite_grads": int((~torch.isfinite(grads)).sum().item()), "n_params": grads.numel()}
