"""Loss scaling: what `loss = loss * s` (or `loss / 10`) does to the gradients and to each optimizer's step.

Concept: autograd is linear, so backward() on s * loss gives exactly s times every gradient, and its
direction never changes. What that does to the *update* is the optimizer's business: SGD moves s times
as far; the Adam family divides the gradient by its own running size and barely notices s, until
s * |g| sinks to the size of eps; float32 and float16 rounding have the last word at the extremes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.controls import Control
from core.data import mlp, regression_data
from core.fp16 import fp16_underflow_fraction  # noqa: F401  (public API: core.loss_scaling.fp16_underflow_fraction)

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad")
NAMES = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
         "adagrad": "Adagrad"}  # the torch.optim names, the same in every language
DIVERGED = 1e6  # a loss past this (or non-finite) is a run that diverged: its numbers say nothing more

# The reference problem: small enough to run live on every control change, non-linear enough that
# every parameter gets a different gradient. 64 examples, 4 features, one tanh layer of 16 units.
N_EXAMPLES, N_FEATURES, HIDDEN = 64, 4, 16
# The sweep's scales: 4 per decade from 1e-12 to 1e6, wider than the slider so its ends show context.
SWEEP_SCALES = tuple(10.0 ** (k / 4) for k in range(-48, 25))

CONTROLS = (
    Control("scale_exp", "log10", default=-1, lo=-10, hi=4),  # s = 10^k; the question's loss / 10 is k = -1
    Control("lr", "float", default=0.1, lo=0.001, hi=1.0, step=0.001),  # SGD's lr on this problem
    Control("steps", "int", default=1, lo=1, hi=50),  # after one step SGD's ratio is s exactly
    Control("eps_exp", "log10", default=-8, lo=-12, hi=-2),  # Adam's eps; torch's default is 1e-8
    Control("weight_decay", "float", default=0.0, lo=0.0, hi=0.5, step=0.01),
    Control("fp16_log2_scale", "int", default=0, lo=-20, hi=24),  # the factor 2^k before the float16 cast
    Control("growth_interval", "int", default=10, lo=1, hi=100),  # GradScaler's; torch's default is 2000
    Control("coupled_wd", "float", default=0.1, lo=0.0, hi=0.5, step=0.01),  # Adam(weight_decay=...) vs AdamW
    Control("max_norm_exp", "log10", default=0, lo=-3, hi=3),  # clip_grad_norm_'s max_norm = 10^k
)

# Teaching moments, each a named setting of the controls above (labels in content/en/loss_scaling.toml).
PRESETS = {
    "loss_div_10": {"scale_exp": -1},  # the question itself: SGD 10x smaller, Adam unchanged
    "adam_eps_dominates": {"scale_exp": -9, "steps": 5},  # s·|g| below eps: Adam's step shrinks too
    "sgd_weight_decay": {"scale_exp": -1, "weight_decay": 0.1},  # the one part of SGD the scale misses
    "fp16_without_scaler": {"fp16_log2_scale": -12},  # a small loss in float16: gradients flush to zero
}


def reference_problem(seed: int = 0) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """The page's model (4 -> 16 -> 1, tanh) and its regression data, all drawn from seed."""
    x, y = regression_data(N_EXAMPLES, N_FEATURES, seed=seed)  # (N, D), (N, 1)
    return mlp((N_FEATURES, HIDDEN, 1), nn.Tanh, seed=seed), x, y


def make_optimizer(name: str, params, *, lr: float, eps: float = 1e-8, weight_decay: float | None = None):
    """torch.optim at its defaults except lr (and eps for the Adam family, weight_decay where given)."""
    wd = {} if weight_decay is None else {"weight_decay": weight_decay}
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, **wd)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, **wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, eps=eps, **wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, eps=eps, **wd)  # default weight_decay=0.01 when not given
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, **wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, **wd)
    raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")


def train(model: nn.Module, x, y, *, optimizer: str, scale: float, lr: float, steps: int, eps: float = 1e-8,
          weight_decay: float | None = None) -> list[float]:
    """The ordinary loop, with the loss multiplied by scale before backward(). Returns the unscaled loss per step."""
    opt = make_optimizer(optimizer, model.parameters(), lr=lr, eps=eps, weight_decay=weight_decay)
    loss_fn = nn.MSELoss()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        (scale * loss).backward()  # every gradient is exactly scale times the unscaled one
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(loss_fn(model(x), y).item())
    return losses


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def divergence_step(losses) -> int | None:
    """After how many steps a run's loss first went non-finite or past DIVERGED (None: it never did)."""
    for i, value in enumerate(losses):
        if not np.isfinite(value) or value > DIVERGED:
            return i
    return None


@dataclass(frozen=True)
class Outcome:
    ratio: float  # as update_ratio(); NaN when a run went non-finite
    scaled_diverged: int | None  # divergence_step of the run on scale * loss
    plain_diverged: int | None  # and of the run on the loss


def update_outcome(optimizer: str, scale: float, *, steps: int = 1, seed: int = 0, lr: float = 0.1,
                   eps: float = 1e-8) -> Outcome:
    """update_ratio, and whether (and after how many steps) either run diverged: two explosions have no ratio."""
    make_optimizer(optimizer, [torch.zeros(1, requires_grad=True)], lr=lr)
    (scaled, scaled_broke), (plain, plain_broke) = (_moved(optimizer, s, steps, seed, lr, eps) for s in (scale, 1.0))
    return Outcome(scaled / plain if plain else float("nan"), scaled_broke, plain_broke)


@functools.lru_cache(maxsize=64)  # the plain run (s = 1) is the same for every s: a new s trains only its own run
def _moved(optimizer: str, scale: float, steps: int, seed: int, lr: float, eps: float) -> tuple[float, int | None]:
    """||theta_steps - theta_0|| of the run on scale * loss, and its divergence_step."""
    model, x, y = reference_problem(seed)
    start = flat(model)
    broke = divergence_step(train(model, x, y, optimizer=optimizer, scale=scale, lr=lr, steps=steps, eps=eps))
    return torch.linalg.vector_norm((flat(model) - start).double()).item(), broke


def adam_first_step(scale: float, *, lr: float = 0.1, eps: float = 1e-8, seed: int = 0) -> tuple[float, float]:
    """Adam's first step on scale * loss: its size over the plain first step's, and the share of weights left unchanged.

    Per weight the step is lr * s*g / (s*|g| + eps) (m and v are bias-corrected): about lr while s*|g| >> eps,
    about lr * s*|g| / eps below it, where float32 rounding then swallows it.
    """
    moved, frozen = [], 0.0
    for s in (scale, 1.0):
        model, x, y = reference_problem(seed)
        start = flat(model)
        train(model, x, y, optimizer="adam", scale=s, lr=lr, steps=1, eps=eps)
        moved.append(torch.linalg.vector_norm((flat(model) - start).double()).item())
        if s == scale:
            frozen = (flat(model) == start).double().mean().item()
    return moved[0] / moved[1], frozen


def update_ratio(optimizer: str, scale: float, *, steps: int = 1, seed: int = 0, lr: float = 0.1,
                 eps: float = 1e-8) -> float:
    """||theta_scaled - theta_0|| / ||theta_plain - theta_0|| after `steps` steps on scale * loss and on loss."""
    make_optimizer(optimizer, [torch.zeros(1, requires_grad=True)], lr=lr)  # the name check, before any work
    moved = []
    for s in (scale, 1.0):
        model, x, y = reference_problem(seed)
        start = flat(model)
        train(model, x, y, optimizer=optimizer, scale=s, lr=lr, steps=steps, eps=eps)
        moved.append(torch.linalg.vector_norm(flat(model) - start).item())
    return moved[0] / moved[1]


def gradient_ratios(scale: float, *, seed: int = 0) -> pd.DataFrame:
    """grad(scale * loss) / grad(loss), weight by weight, in float32 and again in float64.

    Columns: dtype, parameter, index, grad (of the unscaled loss), ratio. Autograd is linear, so the
    ratio is scale exactly up to rounding; rounding shows most where a gradient is a sum that cancels.
    """
    rows = []
    for dtype in (torch.float32, torch.float64):
        grads = []
        for s in (1.0, scale):
            model, x, y = reference_problem(seed)
            model, x, y = model.to(dtype), x.to(dtype), y.to(dtype)
            (s * nn.MSELoss()(model(x), y)).backward()
            grads.append({name: p.grad.flatten() for name, p in model.named_parameters()})
        for name, plain in grads[0].items():
            ratio = grads[1][name] / plain  # an exact zero in plain would give NaN; chartable() drops it
            rows += [{"dtype": str(dtype).removeprefix("torch."), "parameter": name, "index": i, "grad": g, "ratio": r}
                     for i, (g, r) in enumerate(zip(plain.tolist(), ratio.tolist()))]
    return pd.DataFrame(rows)


def gradient_cosine(scale: float, *, seed: int = 0) -> float:
    """Cosine between the full gradient of scale * loss and of loss: 1 means the direction is unchanged."""
    flats = []
    for s in (1.0, scale):
        model, x, y = reference_problem(seed)
        (s * nn.MSELoss()(model(x), y)).backward()
        flats.append(torch.cat([p.grad.flatten() for p in model.parameters()]).double())
    a, b = flats  # not F.cosine_similarity: its eps clamps the norms, and at s = 1e-10 the norm is below it
    return (a @ b / (torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b))).item()


class _Copies(nn.Module):
    """S independent copies of the reference model, stacked along a leading dimension.

    Every torch.optim optimizer here updates each element from that element's own gradient history,
    so one optimizer over stacked copies takes exactly the steps S separate optimizers would take.
    That lets the sweep train every scale at once; tests/test_loss_scaling.py checks it against
    update_ratio, which trains one plain nn.Sequential per scale.
    """

    def __init__(self, model: nn.Sequential, copies: int):
        super().__init__()
        first, last = model[0], model[2]
        self.w1 = nn.Parameter(first.weight.detach().repeat(copies, 1, 1))  # (S, H, D)
        self.b1 = nn.Parameter(first.bias.detach().repeat(copies, 1))  # (S, H)
        self.w2 = nn.Parameter(last.weight.detach().repeat(copies, 1, 1))  # (S, 1, H)
        self.b2 = nn.Parameter(last.bias.detach().repeat(copies, 1))  # (S, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(torch.einsum("nd,shd->snh", x, self.w1) + self.b1[:, None, :])  # (S, N, H)
        return torch.einsum("snh,soh->sno", h, self.w2) + self.b2[:, None, :]  # (S, N, 1)

    def flat(self) -> torch.Tensor:
        return torch.cat([p.detach().flatten(1) for p in self.parameters()], dim=1)  # (S, P)


def scaling_sweep(*, lr: float = 0.1, steps: int = 5, eps: float = 1e-8, seed: int = 0,
                  scales: tuple[float, ...] = SWEEP_SCALES) -> pd.DataFrame:
    """For every optimizer and scale: the update ratio after `steps` steps, and the share of frozen weights.

    Columns: optimizer, scale, update_ratio (as update_ratio() defines it; 0 when rounding froze every
    weight), frozen_fraction (share of parameters with theta_1 == theta_0 exactly after the first step).
    """
    scales_t = torch.tensor((1.0, *scales))  # copy 0 is the plain run every ratio divides by
    model, x, y = reference_problem(seed)

    def backward(copies: _Copies) -> None:
        losses = ((copies(x) - y) ** 2).mean(dim=(1, 2))  # (S,) each copy's MSELoss
        (scales_t * losses).sum().backward()  # copy i's gradient is scales_t[i] * its own

    first = _Copies(model, len(scales_t))
    backward(first)  # every optimizer starts from the same weights, so its first gradients are these
    rows = []
    for name in OPTIMIZERS:
        copies = _Copies(model, len(scales_t))
        for p, q in zip(copies.parameters(), first.parameters()):
            p.grad = q.grad.clone()
        opt = make_optimizer(name, copies.parameters(), lr=lr, eps=eps)
        start = copies.flat()
        opt.step()
        frozen = (copies.flat() == start).double().mean(dim=1).tolist()  # (S,)
        for _ in range(steps - 1):
            opt.zero_grad()
            backward(copies)
            opt.step()
        moved = torch.linalg.vector_norm((copies.flat() - start).double(), dim=1)  # (S,)
        ratio = (moved / moved[0]).tolist()
        rows += [{"optimizer": name, "scale": s, "update_ratio": ratio[i + 1], "frozen_fraction": frozen[i + 1]}
                 for i, s in enumerate(scales)]
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class EquivalentRuns:
    curves: pd.DataFrame  # step, run, optimizer, loss (unscaled; may hold inf/NaN where a run diverged)
    sgd_gap: float  # max |theta| difference at the end between the two SGD runs
    adam_gap: float  # the same for Adam at loss * s and at loss
    diverged: bool  # some run's loss went non-finite or past 1e6: the gaps then say nothing


SGD_SCALED, SGD_LR, ADAM_SCALED, ADAM_PLAIN = "SGD, loss × s, lr", "SGD, loss, lr × s", "Adam, loss × s", "Adam, loss"


def equivalent_runs(scale: float, *, lr: float = 0.1, steps: int = 20, weight_decay: float = 0.0,
                    eps: float = 1e-8, seed: int = 0) -> EquivalentRuns:
    """SGD on loss * s at lr beside SGD on loss at lr * s (equal without weight decay); Adam at loss * s beside loss.

    Adam on loss * s is Adam on loss with eps / s: m and sqrt(v) both carry the factor s, eps does not.
    """
    plans = {  # run -> (optimizer, loss scale, lr, weight decay)
        SGD_SCALED: ("sgd", scale, lr, weight_decay),
        SGD_LR: ("sgd", 1.0, lr * scale, weight_decay),
        ADAM_SCALED: ("adam", scale, lr, None),
        ADAM_PLAIN: ("adam", 1.0, lr, None),
    }
    rows, final = [], {}
    for run, (name, s, run_lr, wd) in plans.items():
        model, x, y = reference_problem(seed)
        losses = train(model, x, y, optimizer=name, scale=s, lr=run_lr, steps=steps, eps=eps, weight_decay=wd)
        rows += [{"step": i, "run": run, "optimizer": name, "loss": v} for i, v in enumerate(losses)]
        final[run] = flat(model)

    def gap(a: str, b: str) -> float:
        return (final[a] - final[b]).abs().max().item()

    curves = pd.DataFrame(rows)
    diverged = not bool(np.all(np.isfinite(curves.loss)) and curves.loss.max() < DIVERGED)
    return EquivalentRuns(curves, gap(SGD_SCALED, SGD_LR), gap(ADAM_SCALED, ADAM_PLAIN), diverged)


def threshold_scale(sweep: pd.DataFrame, optimizer: str, *, column: str = "update_ratio",
                    below: float = 0.5) -> float | None:
    """The largest s such that at every swept scale up to s the optimizer's column is below `below`.

    Counted from the smallest scale up, so that "below half for every s <= knee" is what the number says;
    None when the smallest scale is not below already. A NaN (a run that diverged) ends the stretch.
    """
    rows = sweep[sweep.optimizer == optimizer].sort_values("scale")
    knee = None
    for scale, value in zip(rows.scale, rows[column]):
        if not value < below:
            break
        knee = float(scale)
    return knee


# Mixed precision's experiments live in core/loss_scaling_amp.py, beside GradScaler's clipping; re-exported here.
from core.loss_scaling_amp import (  # noqa: E402,F401
    fp16_fates,
    fp16_gradients,
    fp16_histogram,
    grad_scaler_run,
    scaler_update_gap,
)
from core.loss_scaling_readings import READINGS  # noqa: E402,F401  (readers use the functions above)
