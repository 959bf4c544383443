"""Loss scaling: what `loss = loss * s` (or `loss / 10`) does to the gradients and to each optimizer's step.

Concept: autograd is linear, so backward() on s * loss gives exactly s times every gradient, and its
direction never changes. What that does to the *update* is the optimizer's business: SGD moves s times
as far; the Adam family divides the gradient by its own running size and barely notices s, until
s * |g| sinks to the size of eps; float32 and float16 rounding have the last word at the extremes.
"""

from __future__ import annotations

import copy
import functools
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

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
    model, x, y = _drawn(seed)
    return copy.deepcopy(model), x.clone(), y.clone()


@functools.lru_cache(maxsize=8)
def _drawn(seed: int) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """reference_problem's draws, made once per seed: the seeded initialisation costs more than a copy of it.
    Shared: never train or change what this returns."""
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


def _moved(optimizer: str, scale: float, steps: int, seed: int, lr: float, eps: float) -> tuple[float, int | None]:
    """||theta_steps - theta_0|| of the run on scale * loss, and its divergence_step."""
    losses, start, end = _trained(optimizer, scale, lr=lr, steps=steps, eps=eps, seed=seed)
    return torch.linalg.vector_norm((end - start).double()).item(), divergence_step(losses)


EPS_OPTIMIZERS = ("adam", "adamw")  # the optimizers make_optimizer hands eps to; the others never read it


def _eps_key(optimizer: str, eps: float) -> float:
    """eps as the optimizer sees it: one fixed value for those that ignore it, so that every eps shares their runs."""
    return eps if optimizer in EPS_OPTIMIZERS else 1e-8


class _Run:
    """One run of train() on the reference problem, kept so that a longer run continues it instead of starting over.

    The run of k steps is the first k steps of every longer run at the same settings, so a new `steps` only
    extends it. thetas[k] is theta after k steps and losses[k] the unscaled loss at thetas[k], as train() records
    them (its last loss, taken without autograd, is the same forward pass and the same number).
    """

    def __init__(self, optimizer: str, scale: float, lr: float, eps: float, weight_decay: float | None, seed: int):
        model, self.x, self.y = _drawn(seed)
        self.params = [p.detach().clone().requires_grad_() for p in model.parameters()]  # w1, b1, w2, b2 as drawn
        self.opt = make_optimizer(optimizer, self.params, lr=lr, eps=eps, weight_decay=weight_decay)
        self.scale = scale
        self.loss = self._loss()  # at the newest theta; the next step backpropagates it
        self.thetas, self.losses = [self._flat()], [self.loss.detach()]
        self.lock = threading.Lock()  # one thread extends the run at a time

    def _loss(self) -> torch.Tensor:
        """nn.MSELoss of reference_problem's model, computed by the same functions its modules call."""
        w1, b1, w2, b2 = self.params
        return F.mse_loss(F.linear(torch.tanh(F.linear(self.x, w1, b1)), w2, b2), self.y)

    def _flat(self) -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in self.params])  # as flat(model)

    def upto(self, steps: int) -> tuple[list[float], torch.Tensor, torch.Tensor]:
        """train()'s losses after `steps` steps, theta_0 and theta_steps (shared tensors: read them, never write)."""
        with self.lock:
            while len(self.thetas) <= steps:
                self.opt.zero_grad()
                (self.scale * self.loss).backward()  # every gradient is exactly scale times the unscaled one
                self.opt.step()
                self.thetas.append(self._flat())
                self.loss = self._loss()
                self.losses.append(self.loss.detach())
            return torch.stack(self.losses[:steps + 1]).tolist(), self.thetas[0], self.thetas[steps]


@functools.lru_cache(maxsize=256)  # tens of kB each: the plain runs (s = 1) and the last settings' runs, kept
def _run(optimizer: str, scale: float, lr: float, eps: float, weight_decay: float | None, seed: int) -> _Run:
    return _Run(optimizer, scale, lr, eps, weight_decay, seed)


def _trained(optimizer: str, scale: float, *, lr: float, steps: int, eps: float = 1e-8,
             weight_decay: float | None = None, seed: int = 0) -> tuple[list[float], torch.Tensor, torch.Tensor]:
    """train() on a fresh reference_problem(seed): its losses, theta_0 and theta_steps, shared between callers."""
    if weight_decay == 0 and optimizer != "adamw":
        weight_decay = None  # torch's default for all but AdamW: the same run
    return _run(optimizer, scale, lr, _eps_key(optimizer, eps), weight_decay, seed).upto(steps)


def adam_first_step(scale: float, *, lr: float = 0.1, eps: float = 1e-8, seed: int = 0) -> tuple[float, float]:
    """Adam's first step on scale * loss: its size over the plain first step's, and the share of weights left unchanged.

    Per weight the step is lr * s*g / (s*|g| + eps) (m and v are bias-corrected): about lr while s*|g| >> eps,
    about lr * s*|g| / eps below it, where float32 rounding then swallows it.
    """
    moved, frozen = [], 0.0
    for s in (scale, 1.0):
        _, start, end = _trained("adam", s, lr=lr, steps=1, eps=eps, seed=seed)
        moved.append(torch.linalg.vector_norm((end - start).double()).item())
        if s == scale:
            frozen = (end == start).double().mean().item()
    return moved[0] / moved[1], frozen


def update_ratio(optimizer: str, scale: float, *, steps: int = 1, seed: int = 0, lr: float = 0.1,
                 eps: float = 1e-8) -> float:
    """||theta_scaled - theta_0|| / ||theta_plain - theta_0|| after `steps` steps on scale * loss and on loss."""
    make_optimizer(optimizer, [torch.zeros(1, requires_grad=True)], lr=lr)  # the name check, before any work
    moved = []
    for s in (scale, 1.0):
        _, start, end = _trained(optimizer, s, lr=lr, steps=steps, eps=eps, seed=seed)
        moved.append(torch.linalg.vector_norm(end - start).item())
    return moved[0] / moved[1]


def gradient_ratios(scale: float, *, seed: int = 0) -> pd.DataFrame:
    """grad(scale * loss) / grad(loss), weight by weight, in float32 and again in float64.

    Columns: dtype, parameter, index, grad (of the unscaled loss), ratio. Autograd is linear, so the
    ratio is scale exactly up to rounding; rounding shows most where a gradient is a sum that cancels.
    """
    columns = {"dtype": [], "parameter": [], "index": [], "grad": [], "ratio": []}
    for dtype in (torch.float32, torch.float64):
        plain, scaled = _gradients(1.0, dtype, seed), _gradients(scale, dtype, seed)
        for name, g in plain.items():
            ratio = scaled[name] / g  # an exact zero in g would give NaN; chartable() drops it
            columns["dtype"] += [str(dtype).removeprefix("torch.")] * len(g)
            columns["parameter"] += [name] * len(g)
            columns["index"] += range(len(g))
            columns["grad"] += g.tolist()
            columns["ratio"] += ratio.tolist()
    return pd.DataFrame(columns)


@functools.lru_cache(maxsize=32)  # the plain gradients (s = 1) serve every scale
def _gradients(scale: float, dtype: torch.dtype, seed: int) -> dict[str, torch.Tensor]:
    """Each parameter's flattened gradient of scale * MSELoss on reference_problem(seed), computed in dtype.
    Shared: read them, never change them."""
    model, x, y = reference_problem(seed)
    model, x, y = model.to(dtype), x.to(dtype), y.to(dtype)
    (scale * nn.MSELoss()(model(x), y)).backward()
    return {name: p.grad.flatten() for name, p in model.named_parameters()}


def gradient_cosine(scale: float, *, seed: int = 0) -> float:
    """Cosine between the full gradient of scale * loss and of loss: 1 means the direction is unchanged."""
    a, b = (torch.cat(list(_gradients(s, torch.float32, seed).values())).double() for s in (1.0, scale))
    # not F.cosine_similarity: its eps clamps the norms, and at s = 1e-10 the norm is below it
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
        return self.stacked(x, self.w1, self.b1, self.w2, self.b2)

    @staticmethod
    def stacked(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                b2: torch.Tensor) -> torch.Tensor:
        """The copies' outputs (S, N, 1) for weights stacked as _Copies stacks them."""
        h = torch.tanh(torch.einsum("nd,shd->snh", x, w1) + b1[:, None, :])  # (S, N, H)
        return torch.einsum("snh,soh->sno", h, w2) + b2[:, None, :]  # (S, N, 1)

    def flat(self) -> torch.Tensor:
        return torch.cat([p.detach().flatten(1) for p in self.parameters()], dim=1)  # (S, P)


def _scaled_backward(parts: list[_Copies], x: torch.Tensor, y: torch.Tensor, scales_t: torch.Tensor) -> None:
    """Each part's gradients of sum_i scales_t[i] * MSELoss(copy i), in one forward and backward pass for all parts.

    The parts (one per optimizer) are stacked along the copy dimension for the pass. Every copy's output and
    gradient depend on its own weights only, so each part gets the gradients its own pass would give (bit for
    bit: tests/test_loss_scaling.py), and several optimizers cost about as much as one.
    """
    weights = [torch.cat(group) if len(parts) > 1 else group[0] for group in zip(*(c.parameters() for c in parts))]
    losses = ((_Copies.stacked(x, *weights) - y) ** 2).mean(dim=(1, 2))  # (parts * S,) each copy's MSELoss
    (scales_t.repeat(len(parts)) * losses).sum().backward()  # copy i's gradient is scales_t[i] * its own


def _by_eps(optimizers: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The optimizers that read eps, and those that do not (whose runs every eps can share)."""
    return tuple(o for o in optimizers if o in EPS_OPTIMIZERS), tuple(o for o in optimizers if o not in EPS_OPTIMIZERS)


@functools.lru_cache(maxsize=8)
def _first_gradients(seed: int, scales: tuple[float, ...]) -> tuple[torch.Tensor, ...]:
    """The sweep's first gradients, one per _Copies parameter: every optimizer starts from the same weights."""
    model, x, y = reference_problem(seed)
    first = _Copies(model, len(scales) + 1)
    _scaled_backward([first], x, y, torch.tensor((1.0, *scales)))
    return tuple(p.grad for p in first.parameters())


class _SweepRun:
    """Some optimizers' part of scaling_sweep, trained side by side and kept so that a longer sweep continues it
    (as _Run does for train()).

    moved[k - 1][j] is ||theta_k - theta_0|| of optimizer j's copies after k steps; frozen[j] is each of its
    copies' share of weights that the first step left unchanged.
    """

    def __init__(self, optimizers: tuple[str, ...], lr: float, eps: float, seed: int, scales: tuple[float, ...]):
        model, self.x, self.y = reference_problem(seed)
        self.scales_t = torch.tensor((1.0, *scales))  # copy 0 is the plain run every ratio divides by
        self.parts = [_Copies(model, len(self.scales_t)) for _ in optimizers]
        self.opts = [make_optimizer(name, c.parameters(), lr=lr, eps=eps) for name, c in zip(optimizers, self.parts)]
        self.start = self.parts[0].flat()  # every part starts from the same weights
        for copies, opt in zip(self.parts, self.opts):
            for p, g in zip(copies.parameters(), _first_gradients(seed, scales)):
                p.grad = g.clone()
            opt.step()
            opt.zero_grad()
        self.frozen = [(c.flat() == self.start).double().mean(dim=1).tolist() for c in self.parts]  # (S,) each
        self.moved = [self._moved()]
        self.lock = threading.Lock()  # one thread extends the run at a time

    def _moved(self) -> list[torch.Tensor]:
        return [torch.linalg.vector_norm((c.flat() - self.start).double(), dim=1) for c in self.parts]  # (S,) each

    def upto(self, steps: int) -> list[tuple[list[float], list[float]]]:
        """Per optimizer: each copy's update ratio after `steps` steps (at least one), and its frozen share."""
        with self.lock:
            while len(self.moved) < steps:
                _scaled_backward(self.parts, self.x, self.y, self.scales_t)
                for opt in self.opts:
                    opt.step()
                    opt.zero_grad()
                self.moved.append(self._moved())
            moved = self.moved[max(steps, 1) - 1]
        return [((m / m[0]).tolist(), frozen) for m, frozen in zip(moved, self.frozen)]


@functools.lru_cache(maxsize=32)  # two per setting of lr and eps (the Adam family, the rest), a few hundred kB each
def _sweep_run(optimizers: tuple[str, ...], lr: float, eps: float, seed: int, scales: tuple[float, ...]) -> _SweepRun:
    return _SweepRun(optimizers, lr, eps, seed, scales)


def scaling_sweep(*, lr: float = 0.1, steps: int = 5, eps: float = 1e-8, seed: int = 0,
                  scales: tuple[float, ...] = SWEEP_SCALES) -> pd.DataFrame:
    """For every optimizer and scale: the update ratio after `steps` steps, and the share of frozen weights.

    Columns: optimizer, scale, update_ratio (as update_ratio() defines it; 0 when rounding froze every
    weight), frozen_fraction (share of parameters with theta_1 == theta_0 exactly after the first step).
    The runs are kept (_SweepRun): another `steps` continues them, and a new eps retrains only Adam and AdamW.
    """
    scales = tuple(scales)
    found = {}
    for group in _by_eps(OPTIMIZERS):
        if group:
            found.update(zip(group, _sweep_run(group, lr, _eps_key(group[0], eps), seed, scales).upto(steps)))
    columns = {"optimizer": [], "scale": [], "update_ratio": [], "frozen_fraction": []}
    for name in OPTIMIZERS:
        ratio, frozen = found[name]
        columns["optimizer"] += [name] * len(scales)
        columns["scale"] += scales
        columns["update_ratio"] += ratio[1:]
        columns["frozen_fraction"] += frozen[1:]
    return pd.DataFrame(columns)


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
    columns, final = {"step": [], "run": [], "optimizer": [], "loss": []}, {}
    for run, (name, s, run_lr, wd) in plans.items():
        losses, _, final[run] = _trained(name, s, lr=run_lr, steps=steps, eps=eps, weight_decay=wd, seed=seed)
        columns["step"] += range(len(losses))
        columns["run"] += [run] * len(losses)
        columns["optimizer"] += [name] * len(losses)
        columns["loss"] += losses

    def gap(a: str, b: str) -> float:
        return (final[a] - final[b]).abs().max().item()

    curves = pd.DataFrame(columns)
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
