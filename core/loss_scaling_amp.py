"""Mixed precision beyond the cast: GradScaler with gradient clipping, and bfloat16 beside float16.

Concept: `scaler.scale(loss).backward()` leaves every .grad multiplied by the scale S (2^16 to start). Clipping
those gradients with `clip_grad_norm_(params, max_norm)` measures S times the true norm, so it clips a gradient
whose true norm is far below max_norm down to max_norm / S. `scaler.unscale_(optimizer)` first divides the
gradients back, and `scaler.step` then knows not to divide again. With accumulation, unscale_, clipping, step and
update come once per optimizer step, after the last micro-batch. bfloat16 keeps float32's 8 exponent bits, so the
gradients here neither flush nor overflow and no scaler is needed; it pays with a 7-bit mantissa.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from core import fp16
from core.data import classification_data, mlp
from core.loss_scaling import flat, reference_problem


def fp16_gradients(seed: int = 0) -> torch.Tensor:
    """A realistic population of gradients: a 32 -> 128 -> 128 -> 10 classifier at init, 22 026 numbers."""
    return _fp16_gradients(seed).clone()


@functools.lru_cache(maxsize=4)
def _fp16_gradients(seed: int) -> torch.Tensor:
    """fp16_gradients, computed once per seed. Shared: read it, never change it."""
    model = mlp((32, 128, 128, 10), nn.ReLU, seed=seed)
    x, y = classification_data(256, 32, 10, seed=seed)
    nn.CrossEntropyLoss()(model(x), y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def fp16_histogram(log2_scale: int, *, seed: int = 0) -> pd.DataFrame:
    """Where 2^k times the classifier's gradients land among float16's limits (see core.fp16)."""
    return fp16.magnitude_histogram(_fp16_gradients(seed), 2.0**log2_scale)


def fp16_fates(*, seed: int = 0, log2_scales: range = range(-24, 41)) -> pd.DataFrame:
    """Share of the classifier's gradients flushed to zero or overflowing, for each loss scale 2^k."""
    return fp16.scale_sweep(_fp16_gradients(seed), log2_scales)


def grad_scaler_run(*, growth_interval: int = 10, steps: int = 200, seed: int = 0) -> pd.DataFrame:
    """The real torch.amp.GradScaler training a 32 -> 64 -> 64 -> 10 classifier under float16 autocast (core.fp16).

    Until the scaler first grows its scale (after growth_interval clean steps in a row), the run is the run whose
    scale never grows (_steady_run); from there it continues from that run's weights with the doubled scale.
    """
    steady = _steady_run(steps, seed)
    if growth_interval < 1 or growth_interval not in steady.streak:  # the scale never grows within the run
        return steady.trace.copy()
    grows = steady.streak.index(growth_interval)  # after this step (counted from 0) the scale doubles
    if grows + 1 == steps:
        return steady.trace.copy()
    model, batches = _classifier(steps, seed)
    with torch.no_grad():
        for p, saved in zip(model.parameters(), steady.weights[grows + 1]):
            p.copy_(saved)
    rest = fp16.grad_scaler_trace(model, batches[grows + 1:], lr=0.1, init_scale=2 * steady.trace.scale[grows],
                                  growth_interval=growth_interval, first_step=grows + 2)
    return pd.concat([steady.trace.iloc[:grows + 1], rest], ignore_index=True)


def _classifier(steps: int, seed: int) -> tuple[nn.Sequential, list[tuple[torch.Tensor, torch.Tensor]]]:
    model = mlp((32, 64, 64, 10), nn.ReLU, seed=seed)
    x, y = classification_data(32 * steps, 32, 10, seed=seed)
    return model, list(zip(x.split(32), y.split(32)))


@dataclass(frozen=True)
class _SteadyRun:
    trace: pd.DataFrame  # grad_scaler_run's columns for the run whose scale never grows
    streak: list[int]  # after each step, the clean steps in a row so far (GradScaler's growth tracker)
    weights: list[tuple[torch.Tensor, ...]]  # the parameters before the first step and after each step


@functools.lru_cache(maxsize=2)  # a few MB each: every growth_interval at one seed shares one
def _steady_run(steps: int, seed: int) -> _SteadyRun:
    """grad_scaler_run with a growth_interval longer than the run: the first steps of the run at every interval."""
    model, batches = _classifier(steps, seed)
    weights = [tuple(p.detach().clone() for p in model.parameters())]
    trace = fp16.grad_scaler_trace(model, batches, lr=0.1, growth_interval=steps + 1,
                                   on_step=lambda m: weights.append(tuple(p.detach().clone() for p in m.parameters())))
    streak, clean = [], 0
    for skipped in trace.skipped:
        clean = 0 if skipped else clean + 1
        streak.append(clean)
    return _SteadyRun(trace, streak, weights)


def scaler_update_gap(*, seed: int = 0) -> float:
    """max |theta_scaler - theta_plain| after one float32 SGD step with and without GradScaler (2^16)."""
    finals = []
    for use_scaler in (False, True):
        model, x, y = reference_problem(seed)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler("cpu", enabled=use_scaler)
        scaler.scale(nn.MSELoss()(model(x), y)).backward()
        scaler.step(opt)  # divides the gradients by the scale before SGD sees them
        finals.append(flat(model))
    return (finals[0] - finals[1]).abs().max().item()


ROUTES = ("no clipping", "clip after unscale_", "clip the scaled gradients")
MICRO_BATCHES, MICRO, OPT_STEPS = 4, 16, 6  # 6 optimizer steps of 4 micro-batches of 16 examples
INIT_SCALE = 2.0**16  # GradScaler's default


def clipping_run(max_norm: float, *, route: str, seed: int = 0) -> pd.DataFrame:
    """GradScaler under float16 autocast with accumulation, one route for clip_grad_norm_.

    Columns: step (optimizer step), route, scale (the scaler's S during it), measured (the norm clip_grad_norm_
    returned), true_norm (the accumulated gradient's norm after dividing by S), applied (the norm of the gradient
    the optimizer stepped with), skipped.
    """
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}; valid: {', '.join(ROUTES)}")
    model = mlp((32, 64, 10), nn.ReLU, seed=seed)
    x, y = classification_data(OPT_STEPS * MICRO_BATCHES * MICRO, 32, 10, seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=INIT_SCALE, growth_interval=2000)
    params = list(model.parameters())
    rows = []
    batches = list(zip(x.split(MICRO), y.split(MICRO)))
    for step in range(OPT_STEPS):
        optimizer.zero_grad()
        scale = scaler.get_scale()
        for xb, yb in batches[step * MICRO_BATCHES:(step + 1) * MICRO_BATCHES]:
            with torch.autocast("cpu", dtype=torch.float16):
                logits = model(xb)  # (b, 10) float16
            loss = nn.functional.cross_entropy(logits.float(), yb) / MICRO_BATCHES
            scaler.scale(loss).backward()  # .grad accumulates S * gradient over the micro-batches
        # once per optimizer step, after the last micro-batch:
        measured = float("nan")
        if route == "clip after unscale_":
            scaler.unscale_(optimizer)  # .grad /= S, and step() will not divide again
            true_norm = _norm(params)
            measured = nn.utils.clip_grad_norm_(params, max_norm).item()
            applied = _norm(params)
        elif route == "clip the scaled gradients":
            measured = nn.utils.clip_grad_norm_(params, max_norm).item()  # the bug: it sees S * gradient
            true_norm = measured / scale
            applied = _norm(params) / scale  # what step() will use after it divides by S
        else:
            true_norm = applied = _norm(params) / scale
        skipped = not all(torch.isfinite(p.grad).all() for p in params)
        scaler.step(optimizer)
        scaler.update()
        rows.append({"step": step + 1, "route": route, "scale": scale, "measured": measured, "true_norm": true_norm,
                     "applied": applied, "skipped": skipped})
    return pd.DataFrame(rows)


def _norm(params) -> float:
    return torch.linalg.vector_norm(torch.cat([p.grad.detach().flatten() for p in params]).double()).item()


def clipping_routes(max_norm: float, *, seed: int = 0) -> pd.DataFrame:
    """clipping_run for every route, one frame."""
    return pd.concat([_unclipped(seed) if r == "no clipping" else clipping_run(max_norm, route=r, seed=seed)
                      for r in ROUTES], ignore_index=True)


@functools.lru_cache(maxsize=4)
def _unclipped(seed: int) -> pd.DataFrame:
    """The route that never clips, the same at every max_norm. Shared: read it, never change it."""
    return clipping_run(1.0, route="no clipping", seed=seed)


def autocast_grad_dtypes(seed: int = 0) -> dict[str, str]:
    """Under float16 autocast: the dtype of a parameter's .grad and of the gradient reaching an activation."""
    model = mlp((32, 64, 10), nn.ReLU, seed=seed)
    x, y = classification_data(16, 32, 10, seed=seed)
    seen = {}
    with torch.autocast("cpu", dtype=torch.float16):
        hidden = model[0](x)  # (16, 64) float16: autocast runs the matmul in float16
        hidden.register_hook(lambda g: seen.update(activation=g.dtype))  # returns None: the gradient is unchanged
        logits = model[2](model[1](hidden))
    nn.functional.cross_entropy(logits.float(), y).backward()
    return {"param": str(model[0].weight.grad.dtype).removeprefix("torch."),
            "activation": str(seen["activation"]).removeprefix("torch.")}


FORMATS = (torch.float16, torch.bfloat16)


def format_sweep(*, seed: int = 0, log2_scales: range = range(-24, 41)) -> pd.DataFrame:
    """float16 beside bfloat16: for each loss scale 2^k, the share of the classifier's gradients lost (flushed to
    zero or overflowed to inf) and the median relative rounding error of those that survive.

    Columns: log2_scale, dtype, lost, rel_error.
    """
    grads = _fp16_gradients(seed)
    grads = grads[grads != 0].double()
    rows = []
    for k in log2_scales:
        exact = grads * 2.0**k  # float64: where each value should land
        for dtype in FORMATS:
            cast = exact.to(torch.float32).to(dtype).double()
            lost = (cast == 0) | torch.isinf(cast)
            err = ((cast - exact).abs() / exact.abs())[~lost]
            rows.append({"log2_scale": k, "dtype": str(dtype).removeprefix("torch."),
                         "lost": lost.double().mean().item(),
                         "rel_error": err.median().item() if err.numel() else 1.0})  # 1: every value was lost
    return pd.DataFrame(rows)
